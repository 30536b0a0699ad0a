"""A `launchctl` stand-in that keeps launchd's state, for the launchd manager's tests (no Mac here).

It is a CommandRunner: the manager calls it with the same argv it would give the real tool. It models these
facts of launchd, each from where it is documented or reported:
- Domains: `gui/<uid>` exists only in a GUI login session; `user/<uid>` always. A command on a missing domain
  answers 125, "Domain does not support specified action" (launchctl's error table; issue #24's SSH reports;
  Homebrew's services code falls back to `user/<uid>`).
- `print <service>`: 0 and the job's state when loaded, 113 "Could not find service" when not.
- The disabled overrides: `disable` adds a label, `enable` removes it; they persist across bootout and plist
  deletion, and `bootstrap` of a disabled label fails with 5 "Input/output error" (openclaw/openclaw#849,
  drpedapati/sciclaw#69, nexu-io/nexu#836; DeterminateSystems/nix-installer#530 shows 119 "Service is disabled"
  on a system domain).
- `bootstrap` of a label already loaded fails with 5 (hermes-agent #95758, pirj/noclamshell#25); while the old job
  is still stopping it fails with 37 (EALREADY, "Operation already in progress").
- `bootout`: 3 (ESRCH, "No such process") when not loaded; 36 (EINPROGRESS, "Operation now in progress") when the
  job takes time to stop, after which it stays loaded for a few more queries (`stop_turns`).
- `kickstart -k`: kills and restarts a loaded job; 113 when not loaded.
- KeepAlive (launchd.plist(5)): `true` relaunches after every exit; `{SuccessfulExit: false}` relaunches only
  after a non-zero exit; `{SuccessfulExit: true}` only after exit 0; absent, never. RunAtLoad starts the job at
  bootstrap.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MESSAGES = {
    3: "Boot-out failed: 3: No such process",
    5: "Bootstrap failed: 5: Input/output error",
    36: "Boot-out failed: 36: Operation now in progress",
    37: "Bootstrap failed: 37: Operation already in progress",
    113: 'Could not find service "{label}" in domain for port',
    125: "Domain does not support specified action",
}


@dataclass
class Job:
    """One loaded job: its plist, whether it runs, its last exit code, and how many queries until it is gone."""

    plist: dict[str, Any]
    running: bool = False
    runs: int = 0
    last_exit: int | None = None
    stop_turns: int | None = None


@dataclass
class Launchd:
    """launchd's state for one user, driven through `__call__` as `launchctl` would drive it."""

    uid: int = 501
    gui_session: bool = True
    disabled: set[str] = field(default_factory=set)
    stop_turns: int = 0
    """How many `print` queries a booted-out job stays loaded after bootout answered 36 (0: it stops at once)."""
    jobs: dict[str, Job] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, argv: Sequence[str], /) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        self.calls.append(command)
        assert command[0] == "launchctl", command
        verb, args = command[1], command[2:]
        handler = getattr(self, f"_{verb}", None)
        if handler is None:
            return self._answer(command, 64, f"Unrecognized subcommand: {verb}")  # load/unload are not modelled
        return handler(command, *args)

    # ---- what tests ask -------------------------------------------------------------------------------------

    def job(self, target: str) -> Job:
        """The loaded job at `domain/label` (an AssertionError when it is not loaded)."""
        job = self.jobs.get(target)
        assert job is not None, f"{target} is not loaded"
        return job

    def loaded(self, target: str) -> bool:
        """Whether a job is loaded at `domain/label`."""
        return target in self.jobs

    def exited(self, target: str, code: int) -> bool:
        """The job's process exited with `code`: apply KeepAlive; returns whether launchd relaunched it."""
        job = self.jobs[target]
        job.running, job.last_exit = False, code
        keep_alive = job.plist.get("KeepAlive", False)
        if isinstance(keep_alive, dict):
            relaunch = "SuccessfulExit" in keep_alive and (code == 0) == keep_alive["SuccessfulExit"]
        else:
            relaunch = bool(keep_alive)
        if relaunch:
            self._launch(job)
        return relaunch

    def run_once(self, target: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the job's program for real, as launchd would (its ProgramArguments, EnvironmentVariables and
        WorkingDirectory only), and apply KeepAlive to its exit code."""
        plist = self.jobs[target].plist
        result = subprocess.run(
            plist["ProgramArguments"],
            env=dict(plist.get("EnvironmentVariables", {})),
            cwd=plist.get("WorkingDirectory", "/"),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.exited(target, result.returncode)
        return result

    # ---- launchctl's verbs ----------------------------------------------------------------------------------

    def _print(self, command: list[str], target: str) -> subprocess.CompletedProcess[str]:
        if not self._domain_exists(target):
            return self._answer(command, 125)
        if target.count("/") == 1:
            return self._answer(command, 0, stdout=f"{target} = {{\n\ttype = domain\n}}\n")
        job = self._tick(target)
        if job is None:
            return self._answer(command, 113, label=target.rsplit("/", 1)[-1])
        last = "(never exited)" if job.last_exit is None else str(job.last_exit)
        state = "running" if job.running else "not running"
        pid = f"\tpid = {os.getpid()}\n" if job.running else ""
        text = f"{target} = {{\n\tstate = {state}\n\truns = {job.runs}\n{pid}\tlast exit code = {last}\n}}\n"
        return self._answer(command, 0, stdout=text)

    def _enable(self, command: list[str], target: str) -> subprocess.CompletedProcess[str]:
        if not self._domain_exists(target):
            return self._answer(command, 125)
        self.disabled.discard(target)
        return self._answer(command, 0)

    def _disable(self, command: list[str], target: str) -> subprocess.CompletedProcess[str]:
        if not self._domain_exists(target):
            return self._answer(command, 125)
        self.disabled.add(target)
        return self._answer(command, 0)

    def _bootstrap(self, command: list[str], domain: str, path: str) -> subprocess.CompletedProcess[str]:
        if not self._domain_exists(domain):
            return self._answer(command, 125)
        with open(path, "rb") as f:
            plist = plistlib.load(f)
        target = f"{domain}/{plist['Label']}"
        if target in self.disabled:
            return self._answer(command, 5)
        job = self.jobs.get(target)
        if job is not None:
            return self._answer(command, 37 if job.stop_turns is not None else 5)
        job = self.jobs[target] = Job(plist)
        if plist.get("RunAtLoad"):
            self._launch(job)
        return self._answer(command, 0)

    def _bootout(self, command: list[str], target: str) -> subprocess.CompletedProcess[str]:
        if not self._domain_exists(target):
            return self._answer(command, 125)
        job = self.jobs.get(target)
        if job is None or job.stop_turns is not None:
            return self._answer(command, 3)
        if self.stop_turns:
            job.stop_turns = self.stop_turns
            return self._answer(command, 36)
        del self.jobs[target]
        return self._answer(command, 0)

    def _kickstart(self, command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
        target = args[-1]
        if not self._domain_exists(target):
            return self._answer(command, 125)
        job = self.jobs.get(target)
        if job is None:
            return self._answer(command, 113, label=target.rsplit("/", 1)[-1])
        self._launch(job)
        return self._answer(command, 0)

    # ---- the model ------------------------------------------------------------------------------------------

    def _domain_exists(self, target: str) -> bool:
        kind, uid = target.split("/")[:2]
        return uid == str(self.uid) and (kind == "user" or (kind == "gui" and self.gui_session))

    def _tick(self, target: str) -> Job | None:
        """A job stopping after bootout answered 36 is gone after `stop_turns` queries."""
        job = self.jobs.get(target)
        if job is not None and job.stop_turns is not None:
            if job.stop_turns <= 0:
                del self.jobs[target]
                return None
            job.stop_turns -= 1
        return job

    @staticmethod
    def _launch(job: Job) -> None:
        job.running, job.runs = True, job.runs + 1

    @staticmethod
    def _answer(command: list[str], code: int, stdout: str = "", label: str = "") -> subprocess.CompletedProcess[str]:
        stderr = MESSAGES.get(code, "").format(label=label) if code else ""
        return subprocess.CompletedProcess(command, code, stdout, stderr)
