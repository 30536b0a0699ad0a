"""The one writer: replaces a file so that readers see the old or the new version, never a torn one or a wider mode.

The algorithm is `pgpass-and-files.md` section 8: a persistent sidecar lock, a same-directory temp file
created 0600 with O_EXCL|O_NOFOLLOW, fsync, `os.replace`, then a directory fsync. A symlinked target
(dotfile managers) is written through: the temp and the rename happen next to the resolved file.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from databricks.labs.oauth_rotator.deadlines import LOCK_WAIT_SECONDS
from databricks.labs.oauth_rotator.errors import FileWriteError, LockTimeoutError
from databricks.labs.oauth_rotator.trust import check_trusted

logger = logging.getLogger(__name__)

_POSIX = sys.platform != "win32"
_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_WINDOWS_LOCK_OFFSET = 1 << 30  # msvcrt locks are mandatory: lock a byte past the PID we write
_EDIT_RETRIES = 3
_FIXES = {
    errno.EACCES: "make the directory writable by you, or set PGPASSFILE to a file in one that is",
    errno.EROFS: "set PGPASSFILE to a file on a writable file system",
    errno.ENOSPC: "free some space on that disk",
}


class FileLock:
    """An exclusive lock on a persistent sidecar file (never deleted), which holds the holder's PID.

    `flock` on POSIX, `msvcrt.locking` on Windows; both are released by the OS when the holder dies.
    """

    def __init__(self, path: Path, *, timeout: float = LOCK_WAIT_SECONDS, owner: tuple[int, int] | None = None) -> None:
        self.path = path
        self._timeout = timeout
        self._owner = owner
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = _open_lock(self.path, self._owner)
        try:
            self._wait(fd)
            # A full disk fails here first (the temp file comes later): a FileWriteError, not a traceback.
            with _failure(self.path, "writing our process ID into the lock file"):
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor drops the flock / msvcrt lock

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


def atomic_write(target: Path, data: bytes, *, mode: int = 0o600, owner: tuple[int, int] | None = None) -> None:
    """Replace `target` with `data` atomically and durably; on any error the old file is untouched.

    `owner` (uid, gid): root writing a file for a service user, in a folder only root controls (the pgbouncer front).
    """
    _check_mode(mode)
    check_trusted(target, for_write=True, delegate=owner[0] if owner is not None else None)
    real, status = _resolve(target)
    _warn_if_shared(real)
    _write_replace(real, data, _final_mode(real, status, mode), owner or _owner_for(real, status))


def write_public(target: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace a file that holds no secret (a service definition) the same way: temp, fsync, rename, directory fsync.

    Readable by others when `mode` says so, never writable by them, whatever the umask; missing parent
    directories are created 0700. On any error the old file is untouched.
    """
    if mode & 0o022 or not mode & 0o400:
        raise ValueError(f"mode {mode:04o} must be readable by the owner and writable by nobody else")
    make_private_directories(target.parent)
    check_trusted(target, for_write=True)
    real, status = _resolve(target)
    _write_replace(real, data, mode, _owner_for(real, status))


def make_private_directories(directory: Path) -> None:
    """Create `directory` and each missing parent 0700 (`mkdir(parents=True)` gives the parents the umask's mode)."""
    missing = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    for each in reversed(missing):
        with _failure(each, "creating the directory"):
            each.mkdir(mode=0o700, exist_ok=True)


def update_file(
    target: Path,
    transform: Callable[[bytes], bytes],
    *,
    mode: int = 0o600,
    lock_timeout: float = LOCK_WAIT_SECONDS,
    delegate: int | None = None,
) -> bool:
    """Under the sidecar lock, rewrite `target` with `transform(current bytes)` (b"" when missing).

    Writes only when the bytes change or the mode must be fixed, and returns whether the bytes changed.
    If another program (an editor) replaces the file between our read and our rename, the update is
    redone on its version, so its lines are kept; `transform` must therefore be pure.
    A file or lock that another user could replace (`trust.check_trusted`) is refused before anything is written;
    `delegate` is the uid of a service user whose folder we write into on purpose (`trust.check_trusted`).
    """
    _check_mode(mode)
    check_trusted(target, for_write=True, delegate=delegate)
    real, _ = _resolve(target)
    check_trusted(real.with_name(real.name + ".lock"), for_write=True, delegate=delegate)
    _warn_if_shared(real)
    with FileLock(real.with_name(real.name + ".lock"), timeout=lock_timeout, owner=_owner_for(real, None)):
        _remove_stale_temps(real)
        for _ in range(_EDIT_RETRIES):
            changed = _update_once(real, transform, mode)
            if changed is not None:
                return changed
    raise FileWriteError(f"{real} kept changing while it was being updated; it is unchanged by us")


def _update_once(real: Path, transform: Callable[[bytes], bytes], mode: int) -> bool | None:
    """Whether the bytes changed; None when someone else replaced the file before our rename."""
    status, old = _read(real)
    new = transform(old)
    final_mode = _final_mode(real, status, mode)
    if new == old and (status is None or stat.S_IMODE(status.st_mode) == final_mode):
        return False
    seen = _signature(status)
    if _write_replace(
        real, new, final_mode, _owner_for(real, status), unchanged=lambda: _signature(_lstat(real)) == seen
    ):
        return new != old
    return None


def _check_mode(mode: int) -> None:
    if mode & 0o077 or not mode & 0o400:
        raise ValueError(f"mode {mode:04o} must be readable by the owner and by nobody else")


def _error(path: Path, action: str, err: OSError) -> FileWriteError:
    code = errno.errorcode.get(err.errno or 0, "")
    reason = f"{err.strerror or err} ({code})" if code else f"{err.strerror or err}"
    return FileWriteError(f"cannot write {path}: {action} failed: {reason}", fix=_FIXES.get(err.errno or 0))


@contextmanager
def _failure(path: Path, action: str) -> Iterator[None]:
    try:
        yield
    except FileWriteError:
        raise
    except OSError as err:
        raise _error(path, action, err) from err


def _resolve(target: Path) -> tuple[Path, os.stat_result | None]:
    """The file to replace (a symlink's resolved target, so the link stays a link) and its status."""
    try:
        status = os.lstat(target)
    except FileNotFoundError:
        _require_directory(target)
        return target, None
    except OSError as err:
        raise _error(target, "inspecting the file", err) from err
    if stat.S_ISLNK(status.st_mode):
        try:
            real = Path(os.path.realpath(target, strict=True))
            status = os.lstat(real)
        except OSError as err:
            raise FileWriteError(f"cannot write {target}: it is a symbolic link to a missing file (or a loop)") from err
        target = real
    _require_regular(target, status)
    return target, status


def _require_directory(target: Path) -> None:
    if not target.parent.is_dir():
        raise FileWriteError(
            f"cannot write {target}: the directory {target.parent} does not exist",
            fix=f"create {target.parent} or set PGPASSFILE to a file in an existing directory",
        )


def _warn_if_shared(real: Path) -> None:
    """Another user who can write the directory can swap the file between our checks and our rename."""
    directory_mode = os.stat(real.parent).st_mode if _POSIX else 0
    if directory_mode & (stat.S_IWGRP | stat.S_IWOTH) and not directory_mode & stat.S_ISVTX:
        logger.warning(f"{real.parent} is writable by other users, who could replace {real.name}")


def _require_regular(path: Path, status: os.stat_result) -> None:
    if stat.S_ISDIR(status.st_mode):
        raise FileWriteError(f"cannot write {path}: it is a directory")
    if not stat.S_ISREG(status.st_mode):
        raise FileWriteError(f"cannot write {path}: it is not a regular file")
    if _POSIX and os.geteuid() not in {0, status.st_uid}:
        raise FileWriteError(
            f"cannot write {path}: it belongs to uid {status.st_uid}, not to us (uid {os.geteuid()})",
            fix="run as the file's owner or point PGPASSFILE at your own file",
        )


def _final_mode(path: Path, status: os.stat_result | None, mode: int) -> int:
    """`mode` for a new file; an existing owner-only readable mode (0400, 0600, 0700) is kept."""
    if status is None or not _POSIX:
        return mode
    current = stat.S_IMODE(status.st_mode)
    if current & 0o077:
        logger.warning(
            f"{path} had mode {current:04o}; libpq ignores a password file that group or others can access, "
            f"so it is rewritten as {mode:04o}"
        )
        return mode
    return current if current & 0o400 else mode


def _owner_for(path: Path, status: os.stat_result | None) -> tuple[int, int] | None:
    """When root writes a user's file: keep its owner, or give a new file its directory's owner."""
    if not _POSIX or os.geteuid() != 0:
        return None
    source = status or os.stat(path.parent)
    return source.st_uid, source.st_gid


def _signature(status: os.stat_result | None) -> tuple[int, int, int, int] | None:
    if status is None:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns


def _read(path: Path) -> tuple[os.stat_result | None, bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _FLAGS)
    except FileNotFoundError:
        return None, b""
    except OSError as err:
        raise _error(path, "reading the current file", err) from err
    with _failure(path, "reading the current file"), os.fdopen(fd, "rb") as file:
        status = os.fstat(file.fileno())
        _require_regular(path, status)
        return status, file.read()


def _write_replace(
    real: Path,
    data: bytes,
    mode: int,
    owner: tuple[int, int] | None,
    *,
    unchanged: Callable[[], bool] = lambda: True,
) -> bool:
    """Temp, fsync, rename, directory fsync. False, and nothing written, when `unchanged()` says the
    file was replaced by someone else since it was read."""
    tmp = real.with_name(f".{real.name}.tmp.{os.urandom(8).hex()}")
    with _failure(real, f"creating a temporary file in {real.parent}"):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _FLAGS, 0o600)
    try:
        with _failure(real, "writing the temporary file"):
            _fill(fd, data, mode, owner)
        if not unchanged():
            _discard(tmp)
            return False
        with _failure(real, f"renaming the temporary file over {real.name}"):
            _replace(tmp, real)
    except BaseException:
        _discard(tmp)
        raise
    _sync_directory(real.parent)
    return True


def _fill(fd: int, data: bytes, mode: int, owner: tuple[int, int] | None) -> None:
    try:
        if _POSIX:
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, *owner)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        _fsync(fd)
    finally:
        os.close(fd)


def _fsync(fd: int) -> None:
    if sys.platform == "darwin":
        import fcntl

        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)  # plain fsync does not flush the drive cache on macOS
            return
        except OSError:
            pass
    os.fsync(fd)


def _replace(tmp: Path, real: Path) -> None:
    if sys.platform != "win32":
        os.replace(tmp, real)
        return
    for attempt in range(10):  # a reader without FILE_SHARE_DELETE blocks the rename for a while
        try:
            os.replace(tmp, real)
            return
        except PermissionError as err:
            if getattr(err, "winerror", None) not in {5, 32} or attempt == 9:
                raise
            time.sleep(0.5)


def _sync_directory(directory: Path) -> None:
    if not _POSIX:
        return
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as err:
        logger.warning(f"renamed, but could not fsync {directory} ({err.strerror}); a power loss may undo it")


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _discard(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    except OSError as err:
        logger.warning(f"could not remove the temporary file {tmp}: {err.strerror}")


def _remove_stale_temps(real: Path) -> int:
    pattern = re.compile(re.escape(f".{real.name}.tmp.") + "[0-9a-f]{16}")
    with _failure(real, f"listing {real.parent}"):
        names = [name for name in os.listdir(real.parent) if pattern.fullmatch(name)]
    removed = 0
    for name in names:
        status = _lstat(real.parent / name)
        if status is not None and (not _POSIX or os.geteuid() in {0, status.st_uid}):
            _discard(real.parent / name)
            removed += 1
    if removed:
        logger.info(f"removed {removed} temporary file(s) an interrupted update of {real} left behind")
    return removed


def _open_lock(path: Path, owner: tuple[int, int] | None) -> int:
    with _failure(path, "opening the lock file"):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | _FLAGS, 0o600)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise FileWriteError(f"cannot lock {path}: it is not a regular file")
        if owner is not None and status.st_uid != owner[0]:
            os.fchown(fd, *owner)  # root creating a user's lock: leave it usable by that user
    except BaseException:
        os.close(fd)
        raise
    return fd


def _try_lock(fd: int, path: Path) -> bool:
    try:
        if sys.platform == "win32":
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
        raise _error(path, "locking", err) from err


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"
