"""The long-lived scheduler: wakes at least once a minute, runs a rotation cycle when one is due.

Stdlib only, on purpose. The scheduler lives for weeks on a laptop, so it stays small (no Databricks SDK, which
costs about 80 MB resident): each cycle runs in a short-lived child process (`SubprocessCycleRunner`) that
imports the SDK, rotates, records `status.json`, reports when the next cycle is due, and exits. The child is
also the watchdog boundary: a cycle that hangs (the SDK posts to the OIDC token endpoint without a timeout)
is killed after `timeout` seconds. In-process runners serve the Python API and tests.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from databricks.labs.oauth_rotator.deadlines import CYCLE_TIMEOUT_SECONDS
from databricks.labs.oauth_rotator.hostos import CURRENT, HostOS
from databricks.labs.oauth_rotator.paths import CONFIG_ERROR_EXIT_VARIABLE
from databricks.labs.oauth_rotator.rotation.schedule import MAX_SLEEP_SECONDS, Clock, RefreshPolicy
from databricks.labs.oauth_rotator.rotation.state import StateStore
from databricks.labs.oauth_rotator.text import one_line

logger = logging.getLogger(__name__)

WORKER_MODULE = "databricks.labs.oauth_rotator.commands.worker"
MAX_CYCLE_GAP_SECONDS = 24 * 3600.0
"""The longest the scheduler waits for the next cycle whatever a worker reported (credentials live an hour)."""
CONFIG_ERROR_EXIT = 2


def config_error_exit_code(environ: Mapping[str, str]) -> int:
    """The exit code the scheduler ends with on an unusable configuration: 2, unless the service definition asks
    for another (launchd's `KeepAlive {SuccessfulExit: false}` relaunches on *any* non-zero exit, launchd.plist(5),
    so the launchd agent asks for 0: the error is in the log and `status`, and the agent is not relaunched)."""
    value = environ.get(CONFIG_ERROR_EXIT_VARIABLE, "")
    return int(value) if value.isdigit() and int(value) < 256 else CONFIG_ERROR_EXIT


@dataclass(frozen=True)
class CycleResult:
    """The outcome of one cycle as the scheduler sees it: 0 ok, 1 some target failed, 2 bad configuration."""

    exit_code: int
    next_due: float | None = None
    detail: str = ""

    @property
    def completed(self) -> bool:
        """Whether the cycle ran to its end (and so recorded its own retry times in the status file)."""
        return self.exit_code in {0, 1}


class LoopObserver(Protocol):
    """Told of each turn of the loop and each cycle's end (the sidecar's health endpoints, `rotation/health.py`)."""

    def turned(self) -> None:
        """The loop went round once."""

    def cycle_finished(self) -> None:
        """A cycle ran and recorded its outcome in the status file."""


class CycleRunner(Protocol):
    def run(self, *, force: bool) -> CycleResult:
        """Run one rotation cycle; `force` refreshes every target whether due or not."""


class Readiness(Protocol):
    """Told how the scheduler is doing, for its supervisor (systemd's `sd_notify`: `rotation/readiness.py`)."""

    def cycle_ended(self, result: CycleResult, next_at: float) -> None:
        """A cycle ended (or could not run); the next one is due at `next_at`."""

    def reloading(self) -> None:
        """A reload of the configuration began."""

    def reload_refused(self, reason: str) -> None:
        """The new configuration did not pass the checks: the running one stays."""

    def stopping(self) -> None:
        """The scheduler is stopping."""


Reloader = Callable[[], "str | None"]
"""Reads the configuration anew and puts it in force; None when done, else why not (the running one stays)."""


class SubprocessCycleRunner:
    """Runs each cycle in a child process (`python -m databricks.labs.oauth_rotator.commands.worker`).

    The request (config path and overrides, never a secret) goes to the child's stdin, not its argument
    list; the child inherits our environment, which is where SDK auth variables already are.

    The child's stderr is a pipe of ours, never our own stderr: under `pythonw.exe` we have none (`sys.stderr` is
    None) and a child handed a dead one died in `print` before its report (issue #24); under launchd our stderr is
    a file launchd never rotates, which the worker filled with every line it also wrote to its rotating log. The
    worker logs to its own file; what it said on stderr is relayed to our log only when the cycle could not run
    (exit 2, or no report), which is when it holds the reason.
    """

    def __init__(
        self,
        request: Mapping[str, Any],
        *,
        python: str = sys.executable,
        timeout: float = CYCLE_TIMEOUT_SECONDS,
        env: Mapping[str, str] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self._request = dict(request)
        self._python = python
        self._timeout = timeout
        self._env = dict(env) if env is not None else None
        self._stop = stop

    def use(self, request: Mapping[str, Any]) -> None:
        """The request of the next cycles (a reloaded configuration)."""
        self._request = dict(request)

    def run(self, *, force: bool) -> CycleResult:
        payload = json.dumps({**self._request, "force": force})
        with subprocess.Popen(
            [self._python, "-m", WORKER_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env,
            text=True,
            errors="replace",  # a worker that printed bytes that are not UTF-8 is read, not a crash
        ) as child:
            try:
                out, err = self._communicate(child, payload)
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
                logger.error(f"Rotation cycle did not finish within {self._timeout:.0f} s and was stopped")
                return CycleResult(exit_code=1, detail="timeout")
            except _Stopping:
                _end(child)
                logger.info("The scheduler is stopping: ended the rotation cycle in progress")
                return CycleResult(exit_code=1, detail="stopped")
        result = _parse_report(out, child.returncode)
        if result.exit_code == 2 or result.detail == "no report":
            _relay(err)
        return result

    def _communicate(self, child: subprocess.Popen[str], payload: str) -> tuple[str, str]:
        """`communicate` in slices of a second, so that SIGTERM (the `stop` event) ends a cycle in progress at
        once: launchd SIGKILLs a job ExitTimeOut (20 s) after SIGTERM, and `bootout` answers 36 until then."""
        deadline = time.monotonic() + self._timeout
        data: str | None = payload
        while True:
            remaining = deadline - time.monotonic()
            try:
                return child.communicate(data, timeout=max(0.0, min(remaining, 1.0)))
            except subprocess.TimeoutExpired:
                if remaining <= 1.0:
                    raise
            data = None  # sent once: communicate refuses input on a retry
            if self._stop is not None and self._stop.is_set():
                raise _Stopping


class _Stopping(Exception):
    """The scheduler was asked to stop while a cycle ran."""


def _end(child: subprocess.Popen[str]) -> None:
    child.terminate()  # the writer is atomic: an update cut short leaves the old file
    try:
        child.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()


RELAYED_LINES = 20
"""The most lines of a failed worker's stderr copied into the scheduler's log."""


def _relay(err: str) -> None:
    from databricks.labs.oauth_rotator.secrets import redact

    for line in err.strip().splitlines()[-RELAYED_LINES:]:
        logger.error(f"worker: {redact(line)}")


MAX_REPORT_LINE = 4096
"""The longest stdout line read as a worker's report (the report is about 60 characters)."""


def _parse_report(out: str, returncode: int) -> CycleResult:
    """The worker's last JSON report line; anything else it printed (garbage, a huge line) is ignored."""
    for line in reversed(out.strip().splitlines()):
        if len(line) > MAX_REPORT_LINE:
            continue
        try:
            report = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(report, dict):
            return CycleResult(returncode, _time_or_none(report.get("next_due")))
    return CycleResult(returncode if returncode else 1, detail="no report")


def _time_or_none(value: Any) -> float | None:
    """A finite time (JSON's `Infinity` or `NaN` from a broken worker would never be due, or always)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


class Daemon:
    """Runs cycles when due until stopped. Sleeps at most a minute at a time and compares the wall clock."""

    def __init__(  # pylint: disable=too-many-arguments  # the loop's collaborators, each passed in
        self,
        runner: CycleRunner,
        *,
        clock: Clock,
        state: StateStore | None = None,
        stop: threading.Event | None = None,
        policy: RefreshPolicy | None = None,
        max_sleep: float = MAX_SLEEP_SECONDS,
        watch: Path | None = None,
        observer: LoopObserver | None = None,
        host: HostOS = CURRENT,
        reloader: Reloader | None = None,
        readiness: Readiness | None = None,
    ) -> None:
        self._runner = runner
        self._reloader = reloader
        self._readiness = readiness
        self._reload = threading.Event()
        self._wake = threading.Event()
        self._observer = observer
        self._watch = watch
        self._watched = self._signature()
        self._clock = clock
        self._state = state
        self.stop = stop or threading.Event()
        self._policy = policy or RefreshPolicy()
        self._max_sleep = max_sleep
        self._crashes = 0
        self._host = host

    def request_stop(self) -> None:
        """End the loop (SIGTERM, SIGINT, POST /quitquitquit): the cycle in progress too, then the loop."""
        self.stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        """Read the configuration anew at once (SIGHUP), as an edit of the file does within a minute."""
        self._reload.set()
        self._wake.set()

    def run(self) -> int:
        """Loop until `stop` is set; returns the process exit code (CONFIG_ERROR_EXIT, 2, when the configuration
        is unusable: `config_error_exit_code` says what the service wants the process to exit with then)."""
        logger.info(f"oauth-rotator scheduler started (pid {os.getpid()})")
        next_at = self._clock.time()
        while not self.stop.is_set():
            now = self._clock.time()
            if self._observer is not None:
                self._observer.turned()
            try:
                due = self._reloaded() or now >= next_at or self._lines_lost()
                result = self._runner.run(force=False) if due else None
            except Exception as err:  # pylint: disable=broad-exception-caught  # nothing kills the scheduler
                logger.debug("The scheduler's step failed", exc_info=True)
                logger.error(f"Rotation cycle could not run: {type(err).__name__}: {one_line(str(err))}")
                result = CycleResult(exit_code=1, detail="crashed")
            if result is not None:
                if self._observer is not None:
                    self._observer.cycle_finished()
                if result.exit_code == 2:
                    logger.error("Stopping: the configuration cannot be used (see the error above)")
                    self._stopping()
                    return CONFIG_ERROR_EXIT
                next_at = self._next_cycle_at(result)
                if self._readiness is not None:
                    self._readiness.cycle_ended(result, next_at)
                continue
            # Woken early by a stop or a reload; one that comes after this wait began is seen on the next turn.
            self._clock.wait(self._wake, min(self._max_sleep, next_at - now))
            self._wake.clear()
        self._stopping()
        logger.info("oauth-rotator scheduler stopped")
        return 0

    def _stopping(self) -> None:
        if self._readiness is not None:
            self._readiness.stopping()

    def _reloaded(self) -> bool:
        """SIGHUP or an edited config file, one path: the configuration read anew and, when it passes the checks,
        put in force; True when a cycle should run with it now. Without a reloader (the Python API), an edited
        file runs a cycle, which reads it."""
        asked = self._reload.is_set()
        self._reload.clear()
        changed = self._config_changed()
        if not (asked or changed):
            return False
        if self._reloader is None:
            return changed
        if self._readiness is not None:
            self._readiness.reloading()
        refused = self._reloader()
        if refused is not None and self._readiness is not None:
            self._readiness.reload_refused(refused)
        return refused is None

    def _next_cycle_at(self, result: CycleResult) -> float:
        now = self._clock.time()
        if result.completed and result.next_due is not None:
            self._crashes = 0
            # Never sooner than a second from now, never later than a day: a report naming a time in 2100 (or one
            # long past) must not stop the rotation, nor spin it.
            return min(max(result.next_due, now + 1.0), now + MAX_CYCLE_GAP_SECONDS)
        # The cycle died or hung before recording its own retry time: back off here.
        self._crashes += 1
        return now + self._policy.retry_delay(self._crashes, needs_person=False)

    def _signature(self) -> tuple[int, int] | None:
        try:
            stat = self._watch.stat() if self._watch is not None else None
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size) if stat is not None else None

    def _config_changed(self) -> bool:
        """An edited config (a new target, another profile) is picked up within a minute, without a restart."""
        signature = self._signature()
        if signature == self._watched:
            return False
        self._watched = signature
        logger.info(f"{self._watch} changed: reading the configuration anew")
        return True

    def _lines_lost(self) -> bool:
        """A user who deletes our line, or the whole file, gets it back within a minute."""
        if self._state is None:
            return False
        status = self._state.load()
        if not status.pgpass_file:
            return False
        path = Path(status.pgpass_file)
        try:
            current = path.read_bytes()
            shared = self._host.shared_mode(path.stat())
        except OSError:
            current, shared = b"", False
        if shared:
            # libpq ignores a .pgpass others can read (every line in it, the user's too): the cycle makes it
            # private now, not at the next refresh. Never on Windows: every writable file reports 0666 there and
            # no chmod changes it, so this would run a cycle on every turn, for ever (issue #24).
            logger.info(f"{path} is readable by others: running a cycle to make it private")
            return True
        lost = status.lines_lost(current)
        if lost:
            logger.info(f"Credential lines missing from {status.pgpass_file} for {', '.join(lost)}: restoring")
        return bool(lost)


def install_stop_handlers(
    stop: threading.Event | Callable[[], None],
    *,
    signal_module: Any = None,
    reload: Callable[[], None] | None = None,
) -> Callable[[], None]:
    """SIGTERM and SIGINT set `stop` (or call it), so the loop ends between steps; SIGHUP calls `reload` where the
    system has it; returns a function restoring the old handlers."""
    signals = signal_module or signal
    request_stop = stop.set if isinstance(stop, threading.Event) else stop
    previous = {}
    for signum in (signals.SIGTERM, signals.SIGINT):
        previous[signum] = signals.signal(signum, lambda *_: request_stop())
    hangup = getattr(signals, "SIGHUP", None)
    if reload is not None and hangup is not None:  # Windows has no SIGHUP: an edit of the file reloads there
        previous[hangup] = signals.signal(hangup, lambda *_: reload())

    def restore() -> None:
        for signum, handler in previous.items():
            signals.signal(signum, handler)

    return restore
