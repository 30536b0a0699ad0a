"""The pgbouncer front's process: the program, its pid, its reload, and the supervisor that runs it.

The scheduler runs pgbouncer as its child, restarts it with backoff when it dies, and stops it with the service.
pgbouncer's own messages (start-up errors above all: a file it cannot open, an address it cannot take) come to our
log through its stderr, and what became of it (`running`, `down` and why, `failed`) goes to `state/pgbouncer.json`
for `status` and `doctor`: a front that keeps dying is shown as down, not running.

Stdlib and our plain modules only (the scheduler imports this).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from databricks.labs.oauth_rotator.errors import ConfigError, RotatorError
from databricks.labs.oauth_rotator.files import pgbouncer_ini
from databricks.labs.oauth_rotator.hostos import process_alive
from databricks.labs.oauth_rotator.rotation.front_folder import FrontFiles, ServiceUser
from databricks.labs.oauth_rotator.secrets import redact, without_secrets
from databricks.labs.oauth_rotator.text import one_line

logger = logging.getLogger(__name__)

FALLBACK_BINARY = "/usr/sbin/pgbouncer"
"""Where Debian's and Ubuntu's package puts it (not on a user's PATH: /usr/sbin)."""
RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Seconds before restarting a pgbouncer that died: the first restarts are quick, a crash loop slows down."""
STEADY_SECONDS = 60.0
"""A pgbouncer that ran this long before dying starts the backoff again from the first delay."""
STOP_SECONDS = 5.0
SAFE_STOP_SECONDS = 10.0
"""How long pgbouncer's safe shutdown (SIGINT: the queries in flight finish) may take before its fast exit (SIGTERM):
well inside Kubernetes' 30 s grace period and launchd's 20 s, with `STOP_SECONDS` more before it is killed."""
_POSIX = sys.platform != "win32"


def find_binary(configured: str | None) -> str | None:
    """The pgbouncer program to run: `configured` when it is an executable file, else `pgbouncer` on PATH, else
    /usr/sbin/pgbouncer; None when there is none."""
    if configured:
        named = os.path.expanduser(configured)
        found = shutil.which(named) if os.sep not in named else named
        return found if found and os.path.isfile(found) and os.access(found, os.X_OK) else None
    found = shutil.which("pgbouncer")
    if found:
        return found
    return FALLBACK_BINARY if os.access(FALLBACK_BINARY, os.X_OK) else None


def binary_version(binary: str) -> tuple[int, int, int] | None:
    """`pgbouncer --version` as numbers (None when it cannot be run or read)."""
    try:
        result = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return pgbouncer_ini.parse_version(result.stdout + result.stderr)


def running_pid(pidfile: Path, owner: int | None = None, *, alive: Callable[[int], bool] = process_alive) -> int | None:
    """The pid in pgbouncer's pidfile when that process is alive, is pgbouncer (where /proc tells) and, under root,
    runs as `owner`: the service user writes that file, and must not make root signal anything else. `alive` asks
    without a signal (`hostos.process_alive`: `os.kill(pid, 0)` terminates the process on Windows)."""
    try:
        pid = int(pidfile.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid <= 0 or not alive(pid):
        return None
    proc = Path(f"/proc/{pid}")
    try:
        if proc.exists():
            if (proc / "comm").read_text(encoding="utf-8").strip() != "pgbouncer":
                return None  # a stale pidfile whose pid was reused, or a lie
            if owner is not None and proc.stat().st_uid != owner:
                return None
    except OSError:
        return None
    return pid


def reload(pidfile: Path, owner: int | None = None) -> int | None:
    """SIGHUP to the pgbouncer of `pidfile` (it re-reads the ini and the auth file); its pid, or None if none runs."""
    hangup = getattr(signal, "SIGHUP", None)
    if hangup is None:  # Windows: pgbouncer there reloads on `RELOAD` at its admin console, or a service restart
        logger.warning("pgbouncer must be reloaded by hand here: its files changed")
        return None
    pid = running_pid(pidfile, owner)
    if pid is None:
        return None
    try:
        os.kill(pid, hangup)
    except OSError as err:
        logger.warning(f"Could not reload pgbouncer (pid {pid}): {err.strerror or err}")
        return None
    return pid


class Supervisor:
    """Runs pgbouncer as a child of the scheduler: started with it, restarted with backoff when it dies, stopped
    with it (SIGINT, pgbouncer's safe shutdown, then its fast exit and a kill, each bounded). `prepare` (re)writes
    its files and checks its addresses before each start (a `RotatorError` is a failed start, retried with the
    same backoff); `record` gets its state."""

    def __init__(
        self,
        argv: list[str],
        files: FrontFiles,
        *,
        prepare: Callable[[], None] | None = None,
        record: Callable[[dict[str, Any]], None] = lambda _state: None,
        delays: tuple[float, ...] = RESTART_DELAYS,
        steady_seconds: float = STEADY_SECONDS,
        safe_stop_seconds: float = SAFE_STOP_SECONDS,
    ) -> None:
        self._argv = argv
        self._files = files
        self._prepare = prepare
        self._record = record
        self._delays = delays
        self._steady = steady_seconds
        self._safe_stop = safe_stop_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self.starts = 0
        self.last_error: str | None = None

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._child.pid if self._child is not None and self._child.poll() is None else None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="oauth-rotator-pgbouncer", daemon=True)
        self._thread.start()

    def adopt(self, other: Supervisor) -> None:
        """Take `other`'s preparation (a reloaded configuration's files), for the next start; the running pgbouncer
        gets the new files from the next cycle, with a SIGHUP."""
        self._prepare = other._prepare  # pylint: disable=protected-access  # the same class

    def stop(self) -> None:
        """pgbouncer's safe shutdown first (SIGINT: what runs finishes, nothing new starts), then its fast exit
        (SIGTERM), then a kill: each bounded, so that a stop ends in time whatever the clients do."""
        self._stop.set()
        with self._lock:
            child = self._child
        if child is not None and child.poll() is None:
            _end_child(child, self._safe_stop)
        if self._thread is not None:
            self._thread.join(STOP_SECONDS * 2)
        self._record({"process": "stopped", "pid": None})
        logger.info("pgbouncer stopped")

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            code = self._run_once()
            if self._stop.is_set():
                return
            failures = 1 if time.monotonic() - started >= self._steady else failures + 1
            delay = self._delays[min(failures, len(self._delays)) - 1]
            why = f"; {self.last_error}" if self.last_error else ""
            logger.warning(f"pgbouncer exited ({describe_exit(code)}){why}; restarting it in {delay:g} s")
            state = "failed" if code is None else "down"
            self._record({"process": state, "pid": None, "error": self.last_error, "failures": failures})
            self._stop.wait(delay)

    def _run_once(self) -> int | None:
        try:
            if self._prepare is not None:
                self._prepare()
            with self._lock:
                if self._stop.is_set():
                    return None
                child = self._child = self._spawn()
        except (RotatorError, OSError) as err:
            self.last_error = one_line(f"could not start pgbouncer: {err}")
            logger.error(f"Could not start pgbouncer: {err}")
            return None
        self.starts += 1
        self.last_error = None
        logger.info(f"pgbouncer started (pid {child.pid}); its log: {self._files.logfile}")
        self._record({"process": "starting", "pid": child.pid})  # the last error stays until it runs
        if child.stderr is not None:
            self._follow(child, child.stderr)
        return child.wait()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # A long-lived child, waited for by `_run_once` and stopped by `stop()`: no `with` block fits its lifetime.
        return subprocess.Popen(  # pylint: disable=consider-using-with
            self._argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,  # its start-up errors come to our log (its log file may be what it cannot open)
            env=without_secrets(os.environ),  # it needs no Databricks login, and gets none
            close_fds=True,
            umask=0o077 if _POSIX else -1,  # its pid and log files 0600
        )

    def _follow(self, child: subprocess.Popen[bytes], stream: IO[bytes]) -> None:
        """pgbouncer's stderr, line by line, into our log until it exits. It listening on one loopback only (the
        other taken by someone since our check) is a failed start: clients of `localhost` would reach the other."""
        for raw in stream:
            line = one_line(redact(raw.decode("utf-8", "replace")))
            level = _level(line)
            logger.log(level, f"pgbouncer: {line}")
            if level >= logging.WARNING:
                self.last_error = line
            if "cannot listen on" in line:
                logger.error("pgbouncer could not take every loopback address of its port: stopping it")
                child.terminate()
            elif "process up" in line:
                self._record({"process": "running", "pid": child.pid, "error": None, "failures": 0})


def _end_child(child: subprocess.Popen[bytes], safe_seconds: float) -> None:
    safe = getattr(signal, "SIGINT", None) if _POSIX else None  # Windows: terminate() is all there is
    steps = ([lambda: child.send_signal(safe)] if safe is not None else []) + [child.terminate]
    waits = ([safe_seconds] if safe is not None else []) + [STOP_SECONDS]
    for step, seconds in zip(steps, waits, strict=True):
        try:
            step()
            child.wait(seconds)
            return
        except subprocess.TimeoutExpired:
            continue
        except OSError:  # it exited between our look and the signal
            return
    child.kill()
    child.wait()


def _level(line: str) -> int:
    for word, level in ((" FATAL ", logging.ERROR), (" ERROR ", logging.ERROR), (" WARNING ", logging.WARNING)):
        if word in f" {line} ":
            return level
    return logging.DEBUG


def argv_for(binary: str, files: FrontFiles, user: ServiceUser | None) -> list[str]:
    """pgbouncer in the foreground, as the service user under root. Not `-q`: its stderr is how a start-up error
    that never reaches its log file (it could not open it) reaches ours."""
    return [binary, *(["-u", user.name] if user else []), str(files.ini)]


def require_binary(configured: str | None) -> str:
    binary = find_binary(configured)
    if binary is None:
        raise ConfigError("pgbouncer: the pgbouncer program is not installed")
    return binary


def describe_exit(code: int | None) -> str:
    if code is None:
        return "it could not be started"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
