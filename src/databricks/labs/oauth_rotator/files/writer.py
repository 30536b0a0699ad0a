"""The one writer: replaces a file so that readers see the old or the new version, never a torn one or a wider mode.

The algorithm is `pgpass-and-files.md` section 8: a persistent sidecar lock (`lock.py`), a same-directory temp
file created 0600 with O_EXCL|O_NOFOLLOW, fsync, `os.replace`, then a directory fsync. A symlinked target
(dotfile managers) is written through: the temp and the rename happen next to the resolved file.

What the OS allows comes from a `HostOS` (default: this machine's). On Windows there is no mode to fix (every
writable file reports 0666 and `chmod` sets only the read-only flag), no owner, no O_NOFOLLOW and no directory
fsync: the writer then compares bytes alone, so an update that changes nothing writes nothing there too.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

from databricks.labs.oauth_rotator.deadlines import LOCK_WAIT_SECONDS
from databricks.labs.oauth_rotator.errors import FileWriteError
from databricks.labs.oauth_rotator.files.failures import failure, write_error
from databricks.labs.oauth_rotator.files.lock import FileLock
from databricks.labs.oauth_rotator.hostos import CURRENT, HostOS
from databricks.labs.oauth_rotator.paths import creatable_folder
from databricks.labs.oauth_rotator.trust import check_trusted

logger = logging.getLogger(__name__)

__all__ = ["FileLock", "atomic_write", "make_private_directories", "update_file", "write_public"]

_EDIT_RETRIES = 3


def _flags(host: HostOS) -> int:
    return host.nofollow | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def atomic_write(
    target: Path,
    data: bytes,
    *,
    mode: int = 0o600,
    owner: tuple[int, int] | None = None,
    host: HostOS = CURRENT,
) -> None:
    """Replace `target` with `data` atomically and durably; on any error the old file is untouched.

    `owner` (uid, gid): root writing a file for a service user, in a folder only root controls (the pgbouncer front).
    """
    _check_mode(mode)
    check_trusted(target, for_write=True, delegate=owner[0] if owner is not None else None, host=host)
    real, status = _resolve(target, host)
    _warn_if_shared(real, host)
    final_owner = owner or _owner_for(real, status, host)
    _write_replace(real, data, _final_mode(real, status, mode, host), final_owner, host)


def write_public(target: Path, data: bytes, *, mode: int = 0o644, host: HostOS = CURRENT) -> None:
    """Replace a file that holds no secret (a service definition) the same way: temp, fsync, rename, directory fsync.

    Readable by others when `mode` says so, never writable by them, whatever the umask; missing parent
    directories are created 0700. On any error the old file is untouched.
    """
    if mode & 0o022 or not mode & 0o400:
        raise ValueError(f"mode {mode:04o} must be readable by the owner and writable by nobody else")
    make_private_directories(target.parent)
    check_trusted(target, for_write=True, host=host)
    real, status = _resolve(target, host)
    _write_replace(real, data, mode, _owner_for(real, status, host), host)


def make_private_directories(directory: Path) -> None:
    """Create `directory` and each missing parent 0700 (`mkdir(parents=True)` gives the parents the umask's mode)."""
    missing = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    for each in reversed(missing):
        with failure(each, "creating the directory"):
            each.mkdir(mode=0o700, exist_ok=True)


def update_file(
    target: Path,
    transform: Callable[[bytes], bytes],
    *,
    mode: int = 0o600,
    lock_timeout: float = LOCK_WAIT_SECONDS,
    delegate: int | None = None,
    host: HostOS = CURRENT,
) -> bool:
    """Under the sidecar lock, rewrite `target` with `transform(current bytes)` (b"" when missing).

    Writes only when the bytes change or the mode must (and can: not on Windows) be fixed, and returns whether
    the bytes changed.
    If another program (an editor) replaces the file between our read and our rename, the update is
    redone on its version, so its lines are kept; `transform` must therefore be pure.
    A file or lock that another user could replace (`trust.check_trusted`) is refused before anything is written;
    `delegate` is the uid of a service user whose folder we write into on purpose (`trust.check_trusted`).
    """
    _check_mode(mode)
    check_trusted(target, for_write=True, delegate=delegate, host=host)
    real, _ = _resolve(target, host)
    lock = real.with_name(real.name + ".lock")
    check_trusted(lock, for_write=True, delegate=delegate, host=host)
    _warn_if_shared(real, host)
    with FileLock(lock, timeout=lock_timeout, owner=_owner_for(real, None, host), host=host):
        _remove_stale_temps(real, host)
        for _ in range(_EDIT_RETRIES):
            changed = _update_once(real, transform, mode, host)
            if changed is not None:
                return changed
    raise FileWriteError(f"{real} kept changing while it was being updated; it is unchanged by us")


def _update_once(real: Path, transform: Callable[[bytes], bytes], mode: int, host: HostOS) -> bool | None:
    """Whether the bytes changed; None when someone else replaced the file before our rename."""
    status, old = _read(real, host)
    new = transform(old)
    final_mode = _final_mode(real, status, mode, host)
    # Where modes are not real (Windows reports 0666 for every writable file), only the bytes can differ.
    mode_right = status is None or not host.permission_modes or host.file_mode(status) == final_mode
    if new == old and mode_right:
        return False
    seen = _signature(status)
    owner = _owner_for(real, status, host)
    if _write_replace(real, new, final_mode, owner, host, unchanged=lambda: _signature(_lstat(real)) == seen):
        return new != old
    return None


def _check_mode(mode: int) -> None:
    if mode & 0o077 or not mode & 0o400:
        raise ValueError(f"mode {mode:04o} must be readable by the owner and by nobody else")


def _resolve(target: Path, host: HostOS) -> tuple[Path, os.stat_result | None]:
    """The file to replace (a symlink's resolved target, so the link stays a link) and its status."""
    try:
        status = os.lstat(target)
    except FileNotFoundError:
        _require_directory(target, host)
        return target, None
    except OSError as err:
        raise write_error(target, "inspecting the file", err) from err
    if stat.S_ISLNK(status.st_mode):
        try:
            real = Path(os.path.realpath(target, strict=True))
            status = os.lstat(real)
        except OSError as err:
            raise FileWriteError(f"cannot write {target}: it is a symbolic link to a missing file (or a loop)") from err
        target = real
    _require_regular(target, status, host)
    return target, status


def _require_directory(target: Path, host: HostOS) -> None:
    if not target.parent.is_dir() and host.is_windows and creatable_folder(target.parent, platform="win32"):
        make_private_directories(target.parent)  # libpq reads %APPDATA%\\postgresql but never creates it
    if not target.parent.is_dir():
        raise FileWriteError(
            f"cannot write {target}: the directory {target.parent} does not exist",
            fix=f"create {target.parent} or set PGPASSFILE to a file in an existing directory",
        )


def _warn_if_shared(real: Path, host: HostOS) -> None:
    """Another user who can write the directory can swap the file between our checks and our rename."""
    directory_mode = os.stat(real.parent).st_mode if host.permission_modes else 0
    if directory_mode & (stat.S_IWGRP | stat.S_IWOTH) and not directory_mode & stat.S_ISVTX:
        logger.warning(f"{real.parent} is writable by other users, who could replace {real.name}")


def _require_regular(path: Path, status: os.stat_result, host: HostOS) -> None:
    if stat.S_ISDIR(status.st_mode):
        raise FileWriteError(f"cannot write {path}: it is a directory")
    if not stat.S_ISREG(status.st_mode):
        raise FileWriteError(f"cannot write {path}: it is not a regular file")
    if host.owners and os.geteuid() not in {0, status.st_uid}:
        raise FileWriteError(
            f"cannot write {path}: it belongs to uid {status.st_uid}, not to us (uid {os.geteuid()})",
            fix="run as the file's owner or point PGPASSFILE at your own file",
        )


def _final_mode(path: Path, status: os.stat_result | None, mode: int, host: HostOS) -> int:
    """`mode` for a new file; an existing owner-only readable mode (0400, 0600, 0700) is kept."""
    if status is None or not host.permission_modes:
        return mode
    current = host.file_mode(status)
    if current & 0o077:
        logger.warning(
            f"{path} had mode {current:04o}; libpq ignores a password file that group or others can access, "
            f"so it is rewritten as {mode:04o}"
        )
        return mode
    return current if current & 0o400 else mode


def _owner_for(path: Path, status: os.stat_result | None, host: HostOS) -> tuple[int, int] | None:
    """When root writes a user's file: keep its owner, or give a new file its directory's owner."""
    if host.euid() != 0:
        return None
    source = status or os.stat(path.parent)
    return source.st_uid, source.st_gid


def _signature(status: os.stat_result | None) -> tuple[int, int, int, int] | None:
    if status is None:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns


def _read(path: Path, host: HostOS) -> tuple[os.stat_result | None, bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _flags(host))
    except FileNotFoundError:
        return None, b""
    except OSError as err:
        raise write_error(path, "reading the current file", err) from err
    with failure(path, "reading the current file"), os.fdopen(fd, "rb") as file:
        status = os.fstat(file.fileno())
        _require_regular(path, status, host)
        return status, file.read()


def _write_replace(
    real: Path,
    data: bytes,
    mode: int,
    owner: tuple[int, int] | None,
    host: HostOS,
    *,
    unchanged: Callable[[], bool] = lambda: True,
) -> bool:
    """Temp, fsync, rename, directory fsync. False, and nothing written, when `unchanged()` says the
    file was replaced by someone else since it was read."""
    tmp = real.with_name(f".{real.name}.tmp.{os.urandom(8).hex()}")
    with failure(real, f"creating a temporary file in {real.parent}"):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _flags(host), 0o600)
    try:
        with failure(real, "writing the temporary file"):
            _fill(fd, data, mode, owner, host)
        if not unchanged():
            _discard(tmp)
            return False
        with failure(real, f"renaming the temporary file over {real.name}"):
            _replace(tmp, real)
    except BaseException:
        _discard(tmp)
        raise
    if host.directory_fsync:  # a directory cannot be opened on Windows
        _sync_directory(real.parent)
    return True


def _fill(fd: int, data: bytes, mode: int, owner: tuple[int, int] | None, host: HostOS) -> None:
    try:
        if host.permission_modes:  # no fchmod/fchown on Windows; the temp was created 0600 all the same
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


def _remove_stale_temps(real: Path, host: HostOS) -> int:
    pattern = re.compile(re.escape(f".{real.name}.tmp.") + "[0-9a-f]{16}")
    with failure(real, f"listing {real.parent}"):
        names = [name for name in os.listdir(real.parent) if pattern.fullmatch(name)]
    removed = 0
    for name in names:
        status = _lstat(real.parent / name)
        if status is not None and (not host.owners or os.geteuid() in {0, status.st_uid}):
            _discard(real.parent / name)
            removed += 1
    if removed:
        logger.info(f"removed {removed} temporary file(s) an interrupted update of {real} left behind")
    return removed
