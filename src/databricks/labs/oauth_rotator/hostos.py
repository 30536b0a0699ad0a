"""What the operating system does with files and processes, as one object passed to the code that depends on it.

The writer, the scheduler's "is `.pgpass` private?" check, the trust checks and the log file behave differently
on Windows, and the difference is not ours to choose: it is how CPython maps Windows onto `os`. Passing a `HostOS`
in (default: this machine's) lets the tests run the real writer and daemon with Windows' semantics on Linux.

Facts, and where they come from (CPython's `Modules/posixmodule.c` and the `os` documentation):
- `os.stat` on Windows builds `st_mode` from the read-only attribute alone (`attributes_to_mode`): every writable
  file reports 0666, a read-only one 0444; `os.chmod` only sets or clears that attribute. A mode "readable by
  others" is therefore always reported and can never be fixed there.
- `os.fchmod`, `os.fchown`, `os.getuid`/`os.geteuid` and `os.O_NOFOLLOW` do not exist on Windows; `st_uid` is 0.
- `os.open` of a directory fails on Windows, so a directory cannot be fsynced.
- `os.kill(pid, sig)` on Windows calls `TerminateProcess` for any `sig` other than CTRL_C_EVENT/CTRL_BREAK_EVENT:
  `os.kill(pid, 0)` *kills* the process ("the exit code will be set to sig", the `os.kill` documentation).
  `process_alive` asks `OpenProcess`/`GetExitCodeProcess` instead.
Standard library only, and nothing of ours: every layer may use it.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from typing import Any

_STILL_ACTIVE = 259  # GetExitCodeProcess's answer for a process that has not exited
_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
_ERROR_ACCESS_DENIED = 5  # OpenProcess on another user's process: it exists


@dataclass(frozen=True)
class HostOS:
    """The file and process semantics of one OS family: what the writer and the checks may rely on."""

    name: str
    permission_modes: bool
    """chmod sets permission bits and `st_mode` reports them (POSIX); on Windows it is the read-only flag only."""
    owners: bool
    """Files have owning uids, and `getuid`, `fchown`, `fchmod` exist (POSIX)."""
    nofollow: int
    """The flag that makes `os.open` refuse a symbolic link (0 where it does not exist)."""
    directory_fsync: bool
    """A directory can be opened and fsynced, making a rename durable (POSIX)."""

    @classmethod
    def posix(cls) -> HostOS:
        """Linux and macOS."""
        return cls(
            "posix", permission_modes=True, owners=True, nofollow=getattr(os, "O_NOFOLLOW", 0), directory_fsync=True
        )

    @classmethod
    def windows(cls) -> HostOS:
        """Windows as CPython presents it (see the module's facts)."""
        return cls("windows", permission_modes=False, owners=False, nofollow=0, directory_fsync=False)

    @classmethod
    def current(cls, platform: str = sys.platform) -> HostOS:
        """This machine's semantics."""
        return cls.windows() if platform == "win32" else cls.posix()

    @property
    def is_windows(self) -> bool:
        """Whether this is Windows' model."""
        return self.name == "windows"

    def file_mode(self, status: os.stat_result) -> int:
        """The permission bits as `os.stat` reports them here: the real ones, or Windows' 0666/0444."""
        if self.permission_modes:
            return stat.S_IMODE(status.st_mode)
        return 0o666 if status.st_mode & stat.S_IWUSR else 0o444

    def shared_mode(self, status: os.stat_result) -> bool:
        """Whether group or others may read the file *and* that is something we could change (never on Windows,
        where every writable file reports 0666 and no chmod narrows it)."""
        return self.permission_modes and bool(self.file_mode(status) & 0o077)

    def euid(self) -> int | None:
        """The effective uid, or None where there are no uids."""
        return os.geteuid() if self.owners else None


CURRENT = HostOS.current()
"""This machine's semantics, the default wherever a `HostOS` is taken."""


def process_alive(pid: int, *, platform: str = sys.platform, kernel32: Any = None) -> bool:
    """Whether process `pid` exists, without harming it (never `os.kill(pid, 0)` on Windows: it terminates).

    `kernel32` stands in for `ctypes.windll.kernel32` in tests of the Windows branch.
    """
    if pid <= 0:
        return False
    if platform != "win32":
        return _posix_alive(pid)
    return _windows_alive(pid, kernel32 if kernel32 is not None else _load_kernel32())


def _posix_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only the existence and permission checks (kill(2))
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, and belongs to someone else
    return True


def _windows_alive(pid: int, kernel32: Any) -> bool:
    import ctypes

    handle = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return bool(kernel32.GetLastError() == _ERROR_ACCESS_DENIED)
    try:
        code = ctypes.c_ulong(0)
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True  # it exists; we could not ask more
        return code.value == _STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _load_kernel32() -> Any:  # pragma: no cover - Windows only
    import ctypes

    return ctypes.WinDLL("kernel32", use_last_error=False)  # type: ignore[attr-defined]
