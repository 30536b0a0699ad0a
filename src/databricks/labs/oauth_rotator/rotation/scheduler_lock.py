"""Which scheduler serves a config: the one holding its lock, a file in the state folder named after the config.

The scheduler takes the lock when it starts and holds it until it exits (the OS drops it when the process dies,
however it dies), with its process ID written in the file. `shutdown` finds the scheduler there, asks it to stop
(SIGTERM: the clean stop that records the status and stops the pgbouncer front) and waits until the lock is free,
which is when the process has really gone. Only a process of the same user is ever signalled.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from databricks.labs.oauth_rotator.errors import LockTimeoutError, RotatorError
from databricks.labs.oauth_rotator.files.lock import FileLock
from databricks.labs.oauth_rotator.pgpass_fields import sha256  # not hashlib: no OpenSSL in the scheduler

LOCK_PREFIX = "scheduler-"


def scheduler_lock_path(state_dir: Path, config_path: Path | None) -> Path:
    """`<state>/scheduler-<12 hex>.lock`, named after the config's real path (`flags` for a flags-only scheduler):
    two schedulers of two configs hold two locks, two of one config the same one."""
    key = str(config_path.resolve()) if config_path is not None else "flags"
    return state_dir / f"{LOCK_PREFIX}{sha256(key.encode()).hexdigest()[:12]}.lock"


def hold(path: Path) -> FileLock | None:
    """The lock, held from now until `release()` or the process's end; None when a running scheduler has it."""
    lock = FileLock(path, timeout=0.0)
    try:
        lock.acquire()
    except LockTimeoutError:
        return None
    return lock


def holder(path: Path) -> int | None:
    """The process ID of the scheduler holding the lock; None when none does (no file, or a free lock)."""
    if not path.exists():
        return None
    free = hold(path)
    if free is not None:
        free.release()
        return None
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class ShutdownError(RotatorError):
    """The scheduler could not be stopped: another user's, or still running at the timeout (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class Stopped:
    """What `stop_scheduler` did: the process it stopped, or None when no scheduler was running."""

    pid: int | None


def stop_scheduler(
    path: Path,
    *,
    timeout: float,
    kill: Callable[[int, int], None] = os.kill,
    owner_of: Callable[[int], int | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Stopped:
    """Ask the scheduler holding `path` to stop and wait until it has exited; `Stopped(None)` when none runs."""
    pid = holder(path)
    if pid is None:
        return Stopped(None)
    owner = (owner_of or process_owner)(pid)
    if owner is not None and owner != _our_uid():
        raise ShutdownError(f"the scheduler (process {pid}) belongs to another user: not stopped")
    try:
        kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it exited between our look and the signal: the wait below sees the lock free
    except PermissionError as err:  # where no /proc shows the owner, the kernel refuses another user's process
        raise ShutdownError(f"the scheduler (process {pid}) belongs to another user: not stopped") from err
    deadline = monotonic() + timeout
    while holder(path) is not None:
        if monotonic() >= deadline:
            raise ShutdownError(f"the scheduler (process {pid}) is still running after {timeout:g} s")
        sleep(0.05)
    return Stopped(pid)


def process_owner(pid: int) -> int | None:
    """The user ID a process runs as, where the system shows it (`/proc` on Linux); None where it does not."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _our_uid() -> int | None:
    return os.geteuid() if sys.platform != "win32" else None
