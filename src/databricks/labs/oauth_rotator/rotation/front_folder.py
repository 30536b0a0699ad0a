"""The pgbouncer front's folder, and the one way root writes into it.

Under root, pgbouncer runs as a service user (`run_as`), who must read its ini and auth file and write its pid and
log. The service user must never be able to redirect what root writes, nor choose the text root copies (#23,
findings 1-3), so the folder is root's (`root:<its group> 0710`): only root creates, replaces or removes entries
in it. pgbouncer's ini and auth file are replaced there atomically and handed to the service user (0600, its
own), and the generated local password stays root's (0600). The service user owns only `run/` inside, where
pgbouncer writes its pid and log. Run as a plain user, the same layout has one owner: the folder 0700, all ours.

The folder is checked before anything is made or handed to anyone: the trust rules of `.pgpass` (`trust.py`),
and no creation in a directory others can write (a sticky `/tmp`: anyone may plant a link at the name first)
unless `DATABRICKS_OAUTH_ROTATOR_ALLOW_SHARED_DIR` says it is shared on purpose.

Stdlib and our plain modules only (the scheduler imports this).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from databricks.labs.oauth_rotator.errors import ConfigError, FileWriteError
from databricks.labs.oauth_rotator.files import writer
from databricks.labs.oauth_rotator.trust import (
    SHARED_DIRECTORY_VARIABLE,
    UntrustedPathError,
    check_trusted,
    shared_directories_allowed,
)

_POSIX = sys.platform != "win32"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


@dataclass(frozen=True)
class ServiceUser:
    """The OS user pgbouncer runs as when we run as root."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class FrontFiles:
    """The front's files: root's (or the user's) folder, and the service user's `run/` inside it."""

    folder: Path

    @property
    def ini(self) -> Path:
        return self.folder / "pgbouncer.ini"

    @property
    def auth_file(self) -> Path:
        return self.folder / "userlist.txt"

    @property
    def password_file(self) -> Path:
        return self.folder / "password"

    @property
    def run_dir(self) -> Path:
        return self.folder / "run"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "pgbouncer.pid"

    @property
    def logfile(self) -> Path:
        return self.run_dir / "pgbouncer.log"


def location_problem(
    folder: Path, user: ServiceUser | None, environ: Mapping[str, str] | None = None
) -> ConfigError | None:
    """Why the front's folder cannot be used, checked without writing anything, or None."""
    if not _POSIX:
        return None
    try:
        # The folder's parents by the rules of `.pgpass`; the folder itself may be the service user's (0.2 gave it
        # away), as nobody else can swap it in such a parent: it is taken back before anything is written.
        check_trusted(folder.parent / ".front", for_write=True, environ=environ)
    except UntrustedPathError as err:
        return err
    status = _lstat(folder)
    owners = {os.geteuid(), *([user.uid] if user is not None else [])}
    if status is not None and (not stat.S_ISDIR(status.st_mode) or status.st_uid not in owners):
        return UntrustedPathError(
            f"unsafe permissions: {folder} is not a directory of yours (uid {status.st_uid})",
            fix=f"remove {folder}, or set pgbouncer.dir to a folder of your own",
        )
    base = _existing_ancestor(folder.parent)
    if os.stat(base).st_mode & _OTHERS_WRITE and not shared_directories_allowed(environ):
        return ConfigError(
            f"pgbouncer.dir: {folder} is in {base}, which other users can write "
            "(one could plant a link or a folder at that name first)",
            fix=f"set pgbouncer.dir to a folder of your own, or {SHARED_DIRECTORY_VARIABLE}=1 if shared on purpose",
        )
    blocked = _unreachable(folder, user) if user is not None else None
    if blocked is not None:
        return ConfigError(
            f"pgbouncer.dir: the service user {user.name if user else ''} (pgbouncer.run_as) cannot reach {folder}: "
            f"{blocked} lets only its owner in",
            fix="set pgbouncer.dir to a folder outside root's home, e.g. /var/lib/databricks-oauth-rotator/pgbouncer",
        )
    return None


def socket_dir_problem(
    directory: Path, user: ServiceUser | None, environ: Mapping[str, str] | None = None
) -> ConfigError | None:
    """Why pgbouncer's unix socket must not go in `directory`, or None. pgbouncer makes its socket 0777, and a
    directory others can write (`/tmp`, its own default) lets them put a socket of theirs at its name first."""
    if not _POSIX:
        return None
    try:
        check_trusted(directory / ".s.PGSQL", for_write=True, environ=environ, delegate=_uid_of(user))
    except UntrustedPathError as err:
        return err
    status = _lstat(directory)
    if status is not None and status.st_mode & _OTHERS_WRITE and not shared_directories_allowed(environ):
        return ConfigError(
            f"pgbouncer.unix_socket_dir: other users can write {directory}, and could put a socket of theirs at "
            "pgbouncer's socket name",
            fix=f"use a folder of your own (`mkdir -m 755`), or {SHARED_DIRECTORY_VARIABLE}=1 if shared on purpose",
        )
    return None


def _uid_of(user: ServiceUser | None) -> int | None:
    return user.uid if user is not None else None


def prepare(files: FrontFiles, user: ServiceUser | None) -> None:
    """Make (or take back) the folder and `run/`, checked after each step: entries we did not make are removed
    before anything is written or handed over. Raises `ConfigError` or `FileWriteError`."""
    problem = location_problem(files.folder, user)
    if problem is not None:
        raise problem
    _make_parents(files.folder.parent, shared=user is not None)
    uid = os.geteuid() if _POSIX else 0
    group = user.gid if user is not None else (os.getegid() if _POSIX else 0)
    _own_directory(files.folder, uid, group, 0o710 if user is not None else 0o700)
    _remove_foreign_entries(files, uid)
    run_owner = (user.uid, user.gid) if user is not None else (uid, group)
    _own_directory(files.run_dir, *run_owner, 0o700)


def write(path: Path, data: bytes, owner: ServiceUser | None = None) -> bool:
    """Replace `path` in the prepared folder with `data` (0600; the service user's when `owner` is given, so that
    pgbouncer can read it); whether the bytes changed. Nothing is written when they did not."""
    if read_own(path, owner.uid if owner is not None else None) == data:
        return False
    writer.atomic_write(path, data, owner=(owner.uid, owner.gid) if owner is not None else None)
    return True


def read_own(path: Path, owner: int | None = None) -> bytes | None:
    """The bytes of a regular file of ours (or of `owner`) with one link, opened without following a link; None
    for anything else (missing, a link, a device, someone else's)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        status = os.fstat(file.fileno())
        expected = {os.geteuid() if _POSIX else 0, owner}
        if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1 or (_POSIX and status.st_uid not in expected):
            return None
        return file.read()


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _existing_ancestor(folder: Path) -> Path:
    path = Path(os.path.abspath(folder))
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _unreachable(folder: Path, user: ServiceUser) -> Path | None:
    """The first existing directory on the way to `folder` that `user` cannot pass (search permission)."""
    import grp

    try:
        groups = {user.gid, *(g.gr_gid for g in grp.getgrall() if user.name in g.gr_mem)}
    except OSError:  # pragma: no cover - no group database
        groups = {user.gid}
    path = Path(os.path.abspath(folder))
    for directory in reversed([path, *path.parents]):
        try:
            status = os.stat(directory)
        except FileNotFoundError:
            return None  # the rest we create, passable
        if directory == path:
            return None  # ours to set
        if status.st_uid == user.uid:
            allowed = status.st_mode & stat.S_IXUSR
        elif status.st_gid in groups:
            allowed = status.st_mode & stat.S_IXGRP
        else:
            allowed = status.st_mode & stat.S_IXOTH
        if not allowed:
            return directory
    return None


def _make_parents(directory: Path, *, shared: bool) -> None:
    """Missing parents: 0700 for ourselves; 0755 (root's, nothing in them but the front) when a service user must
    pass through them."""
    missing = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    for each in reversed(missing):
        try:
            each.mkdir(mode=0o700, exist_ok=True)
            if shared:
                # The service user must pass through; nothing but the front's folder is in them, and only root writes.
                os.chmod(each, 0o755, follow_symlinks=False)  # noqa: S103
        except OSError as err:
            raise FileWriteError(f"cannot create {each}: {err.strerror or err}") from err


def _own_directory(path: Path, uid: int, gid: int, mode: int) -> None:
    """`path` a real directory of `uid:gid` with `mode`, whoever made it: its parent is ours alone (checked), so
    nobody can swap the entry between our checks and our changes."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as err:
        raise FileWriteError(f"cannot create {path}: {err.strerror or err}") from err
    status = os.lstat(path)
    if not stat.S_ISDIR(status.st_mode):
        if path.name != "run":
            raise FileWriteError(f"cannot use {path}: it is not a directory")
        os.unlink(path)  # a link or file planted in a folder 0.2 gave away: removed, never followed
        os.mkdir(path, 0o700)
        status = os.lstat(path)
    if not _POSIX:
        return
    if (status.st_uid, status.st_gid) != (uid, gid):
        os.chown(path, uid, gid, follow_symlinks=False)
    if stat.S_IMODE(status.st_mode) != mode:
        os.chmod(path, mode, follow_symlinks=False)
    if os.lstat(path).st_uid != uid:  # pragma: no cover - a file system that ignores chown
        raise UntrustedPathError(f"unsafe permissions: {path} could not be given to uid {uid}")


def _remove_foreign_entries(files: FrontFiles, uid: int) -> None:
    """What the service user left in a folder 0.2 gave it (links, hard links, its own `password`): removed, so
    that no write of ours follows them and no text of theirs is read as ours."""
    for path in (files.ini, files.auth_file, files.password_file):
        try:
            status = os.lstat(path)
        except FileNotFoundError:
            continue
        foreign = path == files.password_file and _POSIX and status.st_uid != uid
        if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1 or foreign:
            os.unlink(path)
