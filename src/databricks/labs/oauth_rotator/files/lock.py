"""The sidecar lock the writer holds while it reads, merges and replaces a file: one job, apart from the writer.

`flock` on POSIX; on Windows `msvcrt.locking`, which is mandatory and byte-ranged, so it locks one byte far past
the PID we write and unlocks it explicitly before closing (the CRT documents `LK_UNLCK`; closing alone leaves
the release to the OS "at some point", Microsoft's `_locking` page). Both are dropped by the OS when the
holder dies, so a crashed rotator never leaves the file locked.
"""

from __future__ import annotations

import errno
import importlib
import os
import stat
import sys
import time
from pathlib import Path
from types import TracebackType

from databricks.labs.oauth_rotator.deadlines import LOCK_WAIT_SECONDS
from databricks.labs.oauth_rotator.errors import FileWriteError, LockTimeoutError
from databricks.labs.oauth_rotator.files.failures import failure, write_error
from databricks.labs.oauth_rotator.hostos import CURRENT, HostOS

_WINDOWS = sys.platform == "win32"
_WINDOWS_LOCK_OFFSET = 1 << 30  # msvcrt locks are mandatory: lock a byte past the PID we write


class FileLock:
    """An exclusive lock on a persistent sidecar file (never deleted), which holds the holder's PID.

    Waits up to `timeout` seconds (deadlines.LOCK_WAIT_SECONDS by default), then raises LockTimeoutError naming
    the holder. `owner` (uid, gid) is given to a lock file root creates for a user.
    """

    def __init__(
        self,
        path: Path,
        *,
        timeout: float = LOCK_WAIT_SECONDS,
        owner: tuple[int, int] | None = None,
        host: HostOS = CURRENT,
    ) -> None:
        self.path = path
        self._timeout = timeout
        self._owner = owner
        self._host = host
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, waiting for it; writes our PID into the file."""
        fd = _open_lock(self.path, self._owner, self._host)
        try:
            self._wait(fd)
            # A full disk fails here first (the temp file comes later): a FileWriteError, not a traceback.
            with failure(self.path, "writing our process ID into the lock file"):
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (a no-op when not held)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                _unlock(fd)
            finally:
                os.close(fd)  # on POSIX, closing the only descriptor drops the flock

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def _wait(self, fd: int) -> None:
        deadline, delay = time.monotonic() + self._timeout, 0.001
        while not _try_lock(fd, self.path):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                guarded = self.path.name.removesuffix(".lock")
                raise LockTimeoutError(
                    f"`{guarded}` is locked by process {_holder(fd)} (lock file {self.path}); "
                    f"waited {self._timeout:g} s",
                    fix="try again once it is done, or stop that process if it is stuck",
                )
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.02)


def _open_lock(path: Path, owner: tuple[int, int] | None, host: HostOS) -> int:
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0) | host.nofollow
    with failure(path, "opening the lock file"):
        fd = os.open(path, flags, 0o600)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise FileWriteError(f"cannot lock {path}: it is not a regular file")
        if host.owners and owner is not None and status.st_uid != owner[0]:
            os.fchown(fd, *owner)  # root creating a user's lock: leave it usable by that user
    except BaseException:
        os.close(fd)
        raise
    return fd


def _try_lock(fd: int, path: Path) -> bool:
    try:
        if _WINDOWS:
            msvcrt = importlib.import_module("msvcrt")
            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as err:
        if isinstance(err, BlockingIOError) or err.errno in {errno.EACCES, errno.EAGAIN, errno.EDEADLK}:
            return False
        raise write_error(path, "locking", err) from err


def _unlock(fd: int) -> None:
    if not _WINDOWS:
        return
    msvcrt = importlib.import_module("msvcrt")
    try:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    except OSError:
        pass  # closing the descriptor releases it too, later


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"
