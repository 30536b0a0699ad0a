"""`exec`'s child: run a program with a connection in its environment, keep its credential fresh while it lives,
pass it our signals, and end with its exit code.

The model is Vault Agent's process supervisor: the secret is there before the program starts, the program gets it in
its environment, signals sent to us reach it, and our exit code is its own (128 + N when signal N ended it, as a
shell reports it). The program runs without a shell: its argument list is passed as given.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group, the child included; forwarding it as well
would deliver it twice (some programs stop hard on a second one), so SIGINT is forwarded only when we are not the
terminal's foreground group. SIGTERM and SIGHUP come from a supervisor (a service manager, `kill`, a closed
terminal session) and are always forwarded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP")
REFRESH_EVERY_SECONDS = 60.0
"""How often the credential on file is checked (and renewed within the margin) while the program runs: the same
step as the scheduler's, so a laptop that slept through the expiry is caught within a minute of waking."""
NOT_FOUND = 127
NOT_EXECUTABLE = 126
"""The shell's codes for a command it cannot find or cannot run."""


@dataclass
class ProgramRun:
    """One program run: what it runs, with which environment, and how its credential is kept fresh.

    `refresh` makes sure the credential on file outlives the margin (minting when needed) and returns its expiry
    (Unix time); it is called every `refresh_every` seconds while the program runs. `handed_expiry`: the expiry
    of a credential handed over in the environment (`PGPASSWORD`), which cannot be renewed: one note on stderr
    when the program outlives it.
    """

    argv: Sequence[str]
    env: Mapping[str, str]
    refresh: Callable[[], float]
    handed_expiry: float | None = None
    refresh_every: float = REFRESH_EVERY_SECONDS
    clock: Callable[[], float] = time.time
    err: TextIO | None = None
    signals: Any = signal
    _noted: set[str] = field(default_factory=set)

    def run(self) -> int:
        """Start the program, supervise it until it exits, and return its exit code (never raises for its fault)."""
        path = self._resolve()
        if isinstance(path, int):
            return path
        # Our handlers go in before the program starts: a signal sent as soon as it is up is never lost (nor kills
        # us with the program left behind); one that comes before it exists is passed on once it does.
        children: list[subprocess.Popen[bytes]] = []
        pending: list[int] = []
        restore = self._forward_signals(children, pending)
        try:
            # argv[0] as the user typed it (what the program sees as its name), run from the path found.
            with subprocess.Popen(list(self.argv), executable=path, env=dict(self.env)) as child:
                children.append(child)
                for signum in pending:
                    child.send_signal(signum)
                return self._supervise(child)
        finally:
            restore()

    def _resolve(self) -> str | int:
        """The program's path by the child's `PATH`, else the shell's 127 or 126 with one line."""
        name = self.argv[0]
        found = shutil.which(name, path=self.env.get("PATH", os.defpath))
        if found is not None:
            return found
        if os.path.sep in name and os.path.exists(name):
            self._say(f"{name}: not executable")
            return NOT_EXECUTABLE
        self._say(f"{name}: command not found")
        return NOT_FOUND

    def _supervise(self, child: subprocess.Popen[bytes]) -> int:
        while True:
            try:
                code = child.wait(timeout=self.refresh_every)
            except subprocess.TimeoutExpired:
                self._keep_fresh()
                continue
            return exit_code_of(code)

    def _keep_fresh(self) -> None:
        try:
            self.refresh()
        except Exception as err:  # pylint: disable=broad-exception-caught  # the program runs on; we say why once
            self._note("refresh", f"could not refresh the credential: {_one_line(err)}; retrying")
        else:
            self._noted.discard("refresh")
        if self.handed_expiry is not None and self.clock() >= self.handed_expiry:
            self._note(
                "handed",
                "note: the PGPASSWORD handed to the program has expired; its new connections need PGPASSFILE, "
                "which stays fresh",
            )

    def _note(self, key: str, message: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self._say(message)

    def _say(self, message: str) -> None:
        print(f"databricks-oauth-rotator exec: {message}", file=self.err if self.err is not None else sys.stderr)

    def _forward_signals(self, children: list[subprocess.Popen[bytes]], pending: list[int]) -> Callable[[], None]:
        previous: dict[int, Any] = {}
        for name in FORWARDED:
            signum = getattr(self.signals, name, None)
            if signum is None:  # Windows has no SIGHUP
                continue

            def forward(received: int, _frame: object) -> None:
                if received == self.signals.SIGINT and _terminal_delivered():
                    return
                if not children:
                    pending.append(received)
                elif children[0].poll() is None:
                    children[0].send_signal(received)

            previous[signum] = self.signals.signal(signum, forward)

        def restore() -> None:
            for signum, handler in previous.items():
                self.signals.signal(signum, handler)

        return restore


def exit_code_of(returncode: int) -> int:
    """A child's return code as a shell reports it: 128 + N for a child ended by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _terminal_delivered() -> bool:
    """Whether a SIGINT came from our terminal to our whole process group (so the child, in the group, has it)."""
    try:
        with open("/dev/tty", "rb") as tty:
            return os.tcgetpgrp(tty.fileno()) == os.getpgrp()
    except (OSError, AttributeError):  # no controlling terminal (a service, a pipeline), or Windows
        return False


def _one_line(err: BaseException) -> str:
    from databricks.labs.oauth_rotator.text import one_line

    return one_line(str(err)) or type(err).__name__
