"""The background service as a launchd LaunchAgent, driven with `launchctl enable/bootstrap/bootout/kickstart/print`.

The plist is generated with `plistlib`, which escapes XML; the deprecated `launchctl load/unload` is never used.
What launchd does, and where each choice comes from:
- A label in launchd's disabled overrides (after `launchctl disable`, some bootout/uninstall cycles, or
  `unload -w`) makes every `bootstrap` fail with "5: Input/output error", even for a valid plist; `enable` first
  clears it. Homebrew's `brew services` enables before it bootstraps; openclaw/openclaw#849,
  drpedapati/sciclaw#69 and DeterminateSystems/nix-installer#530 fixed this exact failure the same way.
- `KeepAlive {SuccessfulExit: false}` relaunches the job after *any* non-zero exit (launchd.plist(5)), so the
  agent asks the scheduler to exit 0 on an unusable configuration (`CONFIG_ERROR_EXIT_VARIABLE`): reported once
  in the log and `status`, not relaunched every ThrottleInterval.
- launchd gives a job the bare PATH `/usr/bin:/bin:/usr/sbin:/sbin` (launchd.plist(5), EnvironmentVariables);
  Homebrew installs into `/opt/homebrew/bin` (Apple silicon) and `/usr/local/bin` (Intel), where pgbouncer and
  `az` are, so the agent's PATH names both first.
- `bootout` can answer 36 (EINPROGRESS, "Operation now in progress") while the old job is still stopping (it gets
  SIGTERM, then SIGKILL after ExitTimeOut, 20 s by default); `bootstrap` then answers 5 or 37 (EALREADY) for a
  moment. We wait until `print` says the job is gone (3 ESRCH / 113 "Could not find service").
- The `gui/<uid>` domain exists only in a GUI login session; over SSH or under `sudo -u` it is missing and
  launchctl answers 125 ("Domain does not support specified action"). Homebrew's services code falls back to
  `user/<uid>` there (and uses `gui/<uid>` whenever it exists: Homebrew/homebrew-services#499 reverted a change
  that used `user/` in GUI sessions, which broke start and stop). So do we.
"""

from __future__ import annotations

import logging
import os
import plistlib
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from databricks.labs.oauth_rotator.files.writer import write_public
from databricks.labs.oauth_rotator.paths import CONFIG_ERROR_EXIT_VARIABLE, ENV_FILE_VARIABLE
from databricks.labs.oauth_rotator.service.base import (
    CommandRunner,
    ServiceError,
    ServiceManager,
    ServiceSpec,
    ServiceStatus,
    default_runner,
    prepare_log_files,
)

logger = logging.getLogger(__name__)

LABEL = "com.databricks.labs.oauth-rotator"
LAUNCHD_PATH = "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
"""The agent's PATH: Homebrew's two prefixes, then launchd's default."""
# launchctl's exit codes: 3 (ESRCH, "No such process") and 113 ("Could not find service") mean "not loaded";
# 5 (EIO) and 37 (EALREADY) right after a bootout mean the old job is still being torn down; 36 (EINPROGRESS)
# from bootout means it is stopping; 125 means the domain does not exist in this session.
_NOT_LOADED = frozenset({3, 113})
_BUSY = frozenset({5, 37})
_STOPPING = 36
_BOOTSTRAP_ATTEMPTS = 4
_RETRY_SECONDS = 0.5
_STOP_WAIT_SECONDS = 30.0  # launchd's default ExitTimeOut (20 s) and a margin: then it has SIGKILLed the job


def plist_document(spec: ServiceSpec) -> dict[str, Any]:
    """The LaunchAgent as a plist dictionary; it holds paths and a profile name, never a secret."""
    environment = spec.service_environment
    environment.setdefault("PATH", LAUNCHD_PATH)
    environment[CONFIG_ERROR_EXIT_VARIABLE] = "0"  # KeepAlive would relaunch an exit 2 every ThrottleInterval
    if spec.env_file is not None:
        # launchd cannot load an environment file; the daemon reads the 0600 file named here at start-up.
        environment[ENV_FILE_VARIABLE] = str(spec.env_file)
    return {
        "Label": LABEL,
        "ProgramArguments": spec.argv,
        "EnvironmentVariables": environment,
        "WorkingDirectory": str(spec.home),  # launchd starts jobs in /
        "RunAtLoad": True,
        # Relaunch after a crash only: a configuration error exits 0 here (CONFIG_ERROR_EXIT_VARIABLE) and stays down.
        "KeepAlive": {"SuccessfulExit": False},
        "ProcessType": "Background",
        "ThrottleInterval": 30,
        "StandardOutPath": str(spec.stdout_log),
        "StandardErrorPath": str(spec.stderr_log),
        "Umask": 0o077,
    }


def render_plist(spec: ServiceSpec) -> bytes:
    """The plist file for `spec` (XML, keys sorted)."""
    return plistlib.dumps(plist_document(spec), fmt=plistlib.PlistFormat.FMT_XML)


def extract_argv(plist: bytes) -> list[str]:
    """The argv launchd runs for a plist: its ProgramArguments."""
    return list(plistlib.loads(plist)["ProgramArguments"])


def parse_print(text: str) -> ServiceStatus:
    """The state, pid and last exit code from `launchctl print gui/<uid>/<label>` output."""
    state = _first(r"^\s*state = (.+)$", text) or "unknown"
    pid = _first(r"^\s*pid = (\d+)$", text)
    exit_code = _first(r"^\s*last exit code = (-?\d+)", text)
    return ServiceStatus(
        installed=True,
        running=state == "running",
        pid=int(pid) if pid else None,
        last_exit_code=int(exit_code) if exit_code else None,
        detail=f"state = {state}",
    )


def _first(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, flags=re.MULTILINE)
    return match.group(1).strip() if match else None


class LaunchdServiceManager(ServiceManager):
    """The service as `~/Library/LaunchAgents/com.databricks.labs.oauth-rotator.plist` in the `gui/<uid>` domain, or
    `user/<uid>` where there is no GUI session (SSH)."""

    def __init__(
        self,
        runner: CommandRunner = default_runner,
        *,
        home: Path | None = None,
        uid: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(runner, home=home)
        self._uid = uid
        self._sleep = sleep
        self._domain: str | None = None

    @property
    def definition_path(self) -> Path:
        return self._home / "Library" / "LaunchAgents" / f"{LABEL}.plist"

    @property
    def domain(self) -> str:
        """The user's launchd domain: `gui/<uid>` in a GUI login session, else `user/<uid>` (asked once)."""
        if self._domain is None:
            uid = self._uid if self._uid is not None else os.getuid()
            gui = self._runner(["launchctl", "print", f"gui/{uid}"]).returncode == 0
            self._domain = f"gui/{uid}" if gui else f"user/{uid}"
            if not gui:
                logger.info(f"No GUI login session (gui/{uid}): using the {self._domain} domain, as over SSH")
        return self._domain

    @property
    def target(self) -> str:
        """The service target, `gui/<uid>/<label>`."""
        return f"{self.domain}/{LABEL}"

    def render(self, spec: ServiceSpec) -> bytes:
        return render_plist(spec)

    def install(self, spec: ServiceSpec) -> str:
        data = self.render(spec)
        existed = self.definition_path.exists()
        write_public(self.definition_path, data, mode=0o644)
        prepare_log_files(spec)
        # bootstrap refuses a label that is already loaded, so an update unloads the old job first.
        self._bootout()
        self._enable()
        self._bootstrap()
        verb = "Updated" if existed else "Installed"
        return f"{verb} {self.definition_path} and started {self.target}."

    def uninstall(self) -> str:
        if not self.definition_path.exists():
            # A job loaded from a plist that was deleted by hand still runs: unload it, quietly if that fails.
            if self._runner(["launchctl", "bootout", self.target]).returncode == 0:
                return f"Stopped {self.target}; {self.definition_path} did not exist."
            message = f"{LABEL} is not installed ({self.definition_path} does not exist); nothing to do."
            logger.info(message)
            return message
        self._bootout()
        self.definition_path.unlink(missing_ok=True)
        return f"Stopped {self.target} and removed {self.definition_path}."

    def restart(self) -> None:
        if self._is_loaded():
            self._launchctl("kickstart", "-k", self.target)
        else:
            self._enable()
            self._bootstrap()

    def status(self) -> ServiceStatus:
        installed = self.definition_path.exists()
        result = self._runner(["launchctl", "print", self.target])
        if result.returncode in _NOT_LOADED:
            return ServiceStatus(installed=installed, running=False, detail="not loaded")
        if result.returncode != 0:
            raise ServiceError.from_result(["launchctl", "print", self.target], result)
        parsed = parse_print(result.stdout)
        return ServiceStatus(installed, parsed.running, parsed.pid, parsed.last_exit_code, parsed.detail)

    def _is_loaded(self) -> bool:
        return self._runner(["launchctl", "print", self.target]).returncode == 0

    def _bootout(self) -> bool:
        """Unload the job and wait until it is gone; False when it was not loaded (not an error here)."""
        argv = ["launchctl", "bootout", self.target]
        result = self._runner(argv)
        if result.returncode in _NOT_LOADED:
            return False
        if result.returncode == _STOPPING:
            self._wait_until_unloaded(argv, result)
        elif result.returncode != 0:
            raise ServiceError.from_result(argv, result)
        return True

    def _wait_until_unloaded(self, argv: list[str], result: subprocess.CompletedProcess[str]) -> None:
        """bootout answered 36: the job got SIGTERM and is finishing its cycle; launchd SIGKILLs it at ExitTimeOut."""
        waited = 0.0
        while self._is_loaded():
            if waited >= _STOP_WAIT_SECONDS:
                raise ServiceError.from_result(
                    argv, result, fix=f"wait for the old job to stop (`launchctl print {self.target}`), then retry"
                )
            self._sleep(_RETRY_SECONDS)
            waited += _RETRY_SECONDS

    def _enable(self) -> None:
        """Clear the label from launchd's disabled overrides, where bootstrap fails with 5 (see the module)."""
        self._launchctl("enable", self.target)

    def _bootstrap(self) -> None:
        argv = ["launchctl", "bootstrap", self.domain, str(self.definition_path)]
        fix = f"check the plist with `plutil -lint {self.definition_path}` and `launchctl print {self.target}`"
        for attempt in range(1, _BOOTSTRAP_ATTEMPTS + 1):
            result = self._runner(argv)
            if result.returncode == 0:
                return
            if result.returncode not in _BUSY or attempt == _BOOTSTRAP_ATTEMPTS:
                raise ServiceError.from_result(argv, result, fix=fix)
            # bootout returns before the old job is gone; bootstrap then fails with EIO for a short while.
            self._sleep(_RETRY_SECONDS * attempt)

    def _launchctl(self, *args: str) -> None:
        self._run(["launchctl", *args], fix=f"reinstall with `databricks labs oauth-rotator install` ({self.target})")
