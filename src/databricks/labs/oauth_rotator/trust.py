"""Whether only the user controls a file: the rule of OpenSSH's `StrictModes`, applied before we read or write one.

A config names a hook command that the scheduler runs, an env file sets the scheduler's variables, `.pgpass`
receives a token: if another local user could replace the file, or any directory on its way (a directory they can
write lets them rename a file or a whole folder away and put their own in its place), they could run commands as
the user or read the token. So the file and every directory of its real path, from the user's home (or `/`) down,
must belong to the user or root and be writable by nobody else, unless the directory is sticky (`/tmp`) and the
entry in it is the user's (or root's) own. Symbolic links are followed under the same rule: each link must belong
to the user or root, in a directory that passes. Run as root, the user is root: a file of another user is refused.

A directory writable by others on purpose (a Kubernetes `emptyDir` is created 0777) is accepted only when
`DATABRICKS_OAUTH_ROTATOR_ALLOW_SHARED_DIR=1` says so; the files in it must still be the user's own.
Part of the light tier: `os`, `stat` and `sys` only (no `pathlib`, whose `re` costs more than Python's start-up), so
`password` runs the same check as every other command.

On Windows (`HostOS.windows()`) none of this can be checked: `os.stat` there reports no owner (`st_uid` is 0) and a
mode made from the read-only flag alone, while who may replace a file is decided by NTFS ACLs, which the standard
library cannot read. The check then says so once (`WINDOWS_SCOPE`) instead of passing in silence; the writer's own
checks (a regular file, never a directory) still run.
"""

from __future__ import annotations

import os
import stat
import sys

from databricks.labs.oauth_rotator.errors import ConfigError

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs a fifth of Python's start-up
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from databricks.labs.oauth_rotator.hostos import HostOS

SHARED_DIRECTORY_VARIABLE = "DATABRICKS_OAUTH_ROTATOR_ALLOW_SHARED_DIR"
"""Set to 1 to accept directories that others can write (a Kubernetes `emptyDir`); the files stay 0600 and ours."""

_POSIX = sys.platform != "win32"
WINDOWS_SCOPE = (
    "On Windows, oauth-rotator cannot check who may replace its files (NTFS ACLs, not owners and modes): "
    "it checks that each is a regular file, and relies on your profile folder's ACL, private by default. "
    "Keep the config, .pgpass and logs under your profile."
)
"""What the trust checks do and do not cover on Windows, said once per process (and by `doctor`)."""
_said: set[str] = set()
_MAX_LINKS = 40  # as Linux's MAXSYMLINKS: a loop is an error, not a hang
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


class UntrustedPathError(ConfigError):
    """A file, or a directory on its way, that another user could replace: nothing was read or written."""


def check_trusted(
    path: str | os.PathLike[str],
    *,
    for_write: bool,
    environ: Mapping[str, str] | None = None,
    delegate: int | None = None,
    host: HostOS | None = None,
) -> Path:
    """Refuse `path` unless only the user (or root) controls it and every directory to it; returns its real path.

    `for_write`: the file (when it exists) must be the user's own, and a group- or world-writable mode is allowed
    because the writer makes it 0600; to be read, it may also be root's but must be writable by nobody else.
    A missing file, or missing directories, are fine: we create them, 0700. Raises `UntrustedPathError`.
    `delegate`: the uid of a service user that we hand a folder to on purpose (pgbouncer, run as that user by
    root), who may own the file and its folders as we may. `host`: the OS's semantics (`hostos`; this machine's
    when None): where there are no owners (Windows), nothing is checked and WINDOWS_SCOPE is said once.
    """
    from pathlib import Path

    return Path(trusted_path(os.fspath(path), for_write=for_write, environ=environ, delegate=delegate, host=host))


def trusted_path(
    path: str,
    *,
    for_write: bool,
    environ: Mapping[str, str] | None = None,
    delegate: int | None = None,
    host: HostOS | None = None,
) -> str:
    """`check_trusted` on a path as text, its real path as text: the same rule, without importing `pathlib`."""
    if not (host.owners if host is not None else _POSIX):  # hostos is imported only where a caller passes one
        _say_scope("windows" if host is None else host.name)
        return path
    environ = os.environ if environ is None else environ
    checker = _Checker(os.geteuid(), _home(environ), shared_directories_allowed(environ), delegate)
    return checker.check(os.path.abspath(path), for_write=for_write)


def _say_scope(name: str) -> None:
    if name not in _said:
        _said.add(name)
        import logging  # here: the POSIX path of `password` never needs it

        logging.getLogger(__name__).info(WINDOWS_SCOPE)


def shared_directories_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the user said that directories writable by others are shared on purpose."""
    environ = os.environ if environ is None else environ
    return environ.get(SHARED_DIRECTORY_VARIABLE, "") in {"1", "true", "yes"}


class _Checker:
    def __init__(self, uid: int, home: str | None, shared_ok: bool, delegate: int | None = None) -> None:
        self.uid = uid
        self.home = home
        self.shared_ok = shared_ok
        self.ours = {uid} if delegate is None else {uid, delegate}
        """Who may own what we write: the user, and the service user the user hands a folder to."""
        self.trusted = {*self.ours, 0}

    def check(self, path: str, *, for_write: bool) -> str:
        real, links = self._resolve(path)
        for link, link_status in links:
            self._check_directories(os.path.dirname(link), link_status.st_uid, path)
            if link_status.st_uid not in self.trusted:
                raise self._refuse(
                    f"{link} is a symbolic link of uid {_who(link_status.st_uid)}, who can point it anywhere",
                    f"remove {link}, or use a path without links of other users",
                )
        status = _lstat(real)
        self._check_directories(os.path.dirname(real), status.st_uid if status is not None else self.uid, path)
        if status is not None:
            self._check_file(real, status, for_write=for_write)
        return real

    def _check_file(self, real: str, status: os.stat_result, *, for_write: bool) -> None:
        owners = self.ours if for_write else self.trusted
        if status.st_uid not in owners:
            fix = (
                "remove it and let oauth-rotator create its own, or point the setting at a file of yours"
                if for_write
                else f"remove it, or check what it says and `chown {_name(self.uid)} {real}`"
            )
            raise self._refuse(f"{real} belongs to uid {_who(status.st_uid)}, not to you (uid {_who(self.uid)})", fix)
        if not for_write and status.st_mode & _WRITABLE_BY_OTHERS:
            raise self._refuse(
                f"{real} is writable by {_others(status.st_mode)}, who could change what it says", f"chmod go-w {real}"
            )

    def _check_directories(self, directory: str, child_owner: int, wanted: str) -> None:
        """Each existing directory from the home directory (when under it) or `/` down to `directory`: the outermost
        problem is named first, as it is the one to fix."""
        stop = self.home if self.home is not None and _is_within(directory, self.home) else "/"
        chain: list[tuple[str, os.stat_result]] = []
        while True:
            status = _lstat(directory)
            if status is not None:
                chain.append((directory, status))
            parent = os.path.dirname(directory)
            if directory in {stop, parent}:
                break
            directory = parent
        below = [child_owner] + [status.st_uid for _, status in chain[:-1]]  # who owns the entry inside each
        for (folder, status), owner_below in reversed(list(zip(chain, below, strict=True))):
            self._check_directory(folder, status, owner_below, wanted)

    def _check_directory(self, directory: str, status: os.stat_result, child_owner: int, wanted: str) -> None:
        if status.st_uid not in self.trusted:
            raise self._refuse(
                f"{directory} belongs to uid {_who(status.st_uid)}, who could replace {wanted}",
                f"keep the file in a folder of your own, or `chown {_name(self.uid)} {directory}`",
            )
        if not status.st_mode & _WRITABLE_BY_OTHERS or self.shared_ok:
            return
        if status.st_mode & stat.S_ISVTX:
            if child_owner in self.trusted:
                return  # sticky (/tmp): others cannot rename or delete what is ours in it
            raise self._refuse(
                f"in the shared directory {directory}, the entry on the way to {wanted} belongs to uid "
                f"{_who(child_owner)}, who can replace it",
                "remove it, or use a folder of your own (`mkdir -m 700`)",
            )
        raise self._refuse(
            f"{directory} is writable by {_others(status.st_mode)}, who could replace {wanted}",
            f"`chmod go-w {directory}`, or set {SHARED_DIRECTORY_VARIABLE}=1 if it is shared on purpose",
        )

    @staticmethod
    def _refuse(problem: str, fix: str) -> UntrustedPathError:
        return UntrustedPathError(f"unsafe permissions: {problem}", fix=fix)

    @staticmethod
    def _resolve(path: str) -> tuple[str, list[tuple[str, os.stat_result]]]:
        """The real path (missing components kept as they are) and every symbolic link met on the way; `path` is
        absolute and normalized."""
        pending = list(reversed(path.split("/")[1:]))
        current = "/"
        links: list[tuple[str, os.stat_result]] = []
        while pending:
            part = pending.pop()
            if part in {"", "."}:
                continue
            if part == "..":
                current = os.path.dirname(current)
                continue
            candidate = os.path.join(current, part)
            status = _lstat(candidate)
            if status is None or not stat.S_ISLNK(status.st_mode):
                current = candidate
                if status is None:  # the rest does not exist yet: nothing more to follow
                    rest = [p for p in reversed(pending) if p not in {"", "."}]
                    return os.path.normpath(os.path.join(current, *rest)), links
                continue
            links.append((candidate, status))
            if len(links) > _MAX_LINKS:
                raise UntrustedPathError(f"{path}: too many levels of symbolic links")
            target = os.readlink(candidate)
            if os.path.isabs(target):
                current = "/"
                pending.extend(reversed(target.split("/")[1:]))
            else:
                pending.extend(reversed(target.split("/")))
        return current, links


def _home(environ: Mapping[str, str]) -> str | None:
    home = environ.get("HOME")
    if not home:
        try:
            import pwd

            home = pwd.getpwuid(os.geteuid()).pw_dir
        except (ImportError, KeyError):
            return None
    real = os.path.realpath(home)
    return None if real == "/" else real


def _is_within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _others(mode: int) -> str:
    if mode & stat.S_IWGRP and mode & stat.S_IWOTH:
        return "its group and others"
    return "its group" if mode & stat.S_IWGRP else "others"


def _who(uid: int) -> str:
    name = _name(uid)
    return f"{uid} ({name})" if name != str(uid) else name


def _name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)
