"""The OS semantics object: Windows' model as CPython presents it, and a pid check that never kills.

Facts modelled, and their sources:
- `os.stat` on Windows reports 0666 for a writable file and 0444 for a read-only one (CPython
  `Modules/posixmodule.c`, `attributes_to_mode`); `os.chmod` there only toggles the read-only attribute.
- `os.kill(pid, 0)` on Windows terminates the process (the `os.kill` documentation: any other signal value makes
  `TerminateProcess` kill it "and the exit code will be set to sig").
- `GetExitCodeProcess` answers STILL_ACTIVE (259) for a running process (Microsoft's documentation of the function).
"""

import ctypes
import os
import subprocess
import sys
from unittest.mock import create_autospec

from databricks.labs.oauth_rotator.hostos import HostOS, process_alive


class Kernel32:
    """The three kernel32 functions `process_alive` calls, for `create_autospec`."""

    def OpenProcess(self, access, inherit, pid): ...

    def GetExitCodeProcess(self, handle, code): ...

    def GetLastError(self): ...

    def CloseHandle(self, handle): ...


def test_windows_reports_0666_for_a_writable_file_whatever_its_real_mode(tmp_path):
    path = tmp_path / "pgpass.conf"
    path.write_text("x")
    path.chmod(0o600)
    windows = HostOS.windows()
    assert windows.file_mode(path.stat()) == 0o666
    assert windows.shared_mode(path.stat()) is False  # nothing we could ever fix
    path.chmod(0o400)
    assert windows.file_mode(path.stat()) == 0o444
    assert windows.euid() is None


def test_posix_reports_the_real_mode(tmp_path):
    path = tmp_path / "pgpass"
    path.write_text("x")
    path.chmod(0o644)
    posix = HostOS.posix()
    assert posix.file_mode(path.stat()) == 0o644
    assert posix.shared_mode(path.stat()) is True
    assert HostOS.current("win32") == HostOS.windows()
    assert HostOS.current("darwin") == posix


def test_a_running_and_a_finished_process_on_posix():
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        assert process_alive(child.pid)
        assert process_alive(child.pid)  # asking twice did not harm it
        assert child.poll() is None
        child.kill()
        child.wait()
    assert not process_alive(child.pid)
    assert not process_alive(0)
    assert process_alive(1)  # init belongs to root: EPERM for others, and it exists


def _kernel32(*, handle=7, exit_code=259, last_error=0):
    kernel32 = create_autospec(Kernel32, instance=True)
    kernel32.OpenProcess.return_value = handle

    def exit_code_of(_handle, ref):
        ctypes.cast(ref, ctypes.POINTER(ctypes.c_ulong)).contents.value = exit_code
        return 1

    kernel32.GetExitCodeProcess.side_effect = exit_code_of
    kernel32.GetLastError.return_value = last_error
    return kernel32


def test_on_windows_the_pid_is_asked_about_not_signalled():
    running = _kernel32(exit_code=259)
    assert process_alive(4242, platform="win32", kernel32=running)
    running.OpenProcess.assert_called_once_with(0x1000, False, 4242)
    running.CloseHandle.assert_called_once_with(7)
    assert not process_alive(4242, platform="win32", kernel32=_kernel32(exit_code=0))
    assert not process_alive(4242, platform="win32", kernel32=_kernel32(handle=0, last_error=87))  # no such pid
    assert process_alive(4242, platform="win32", kernel32=_kernel32(handle=0, last_error=5))  # another user's
    assert os.getpid()  # the test process itself was never signalled
