import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.errors import FileWriteError, LockTimeoutError
from databricks.labs.oauth_rotator.files.writer import FileLock, atomic_write, update_file, write_public
from databricks.labs.oauth_rotator.paths import default_pgpass_path
from databricks.labs.oauth_rotator.trust import SHARED_DIRECTORY_VARIABLE, UntrustedPathError
from tests.rigs.users import reachable_directory

NOBODY = 65534
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
USER_LINES = b"# my own lines\r\nlocalhost:5432:*:me:hunter2\r\n"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def temps(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if ".tmp." in name)


def append(line: bytes) -> Callable[[bytes], bytes]:
    return lambda old: old + line


def run_child(action: Callable[[], object], *, as_nobody: bool) -> dict:
    """Runs `action` in a forked child, as `nobody` when asked (root ignores directory permissions), and
    returns what it raised. Forked, not exec'd: the interpreter may sit where `nobody` cannot read."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            if as_nobody and IS_ROOT:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            try:
                action()
                outcome: dict[str, str] = {"error": ""}
            except (OSError, ValueError) as err:
                outcome = {"error": type(err).__name__, "message": str(err)}
            os.write(write, json.dumps(outcome).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(answer)


@pytest.fixture(name="shared_dir")
def fixture_shared_dir() -> Iterator[Path]:
    """A directory the `nobody` user can reach (tmp_path sits under a 0700 directory of root's)."""
    with reachable_directory() as directory:
        yield directory


@pytest.fixture(name="mounted")
def fixture_mounted(tmp_path: Path) -> Iterator[Path]:
    """A mount point under tmp_path, unmounted afterwards."""
    point = tmp_path / "mnt"
    point.mkdir()
    yield point
    subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


def mount(*argv: str) -> None:
    result = subprocess.run(["mount", *argv], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here ({result.stderr.strip()}); needs root with CAP_SYS_ADMIN")


# ---- where libpq looks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        ({"PGPASSFILE": "/x/pw", "HOME": "/home/me"}, "linux", Path("/x/pw")),
        ({"PGPASSFILE": "", "HOME": "/home/me"}, "linux", Path("/home/me/.pgpass")),
        ({"HOME": "/home/me"}, "darwin", Path("/home/me/.pgpass")),
        (
            {"APPDATA": "/c/Users/me/AppData/Roaming"},
            "win32",
            Path("/c/Users/me/AppData/Roaming/postgresql/pgpass.conf"),
        ),
        ({"PGPASSFILE": "/x/pw", "APPDATA": "/c"}, "win32", Path("/x/pw")),
    ],
)
def test_default_pgpass_path(environ: dict[str, str], platform: str, expected: Path) -> None:
    assert default_pgpass_path(environ, platform=platform) == expected


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX home directory lookup")
def test_default_pgpass_path_without_home_uses_the_passwd_entry() -> None:
    import pwd

    home = pwd.getpwuid(os.geteuid()).pw_dir
    assert default_pgpass_path({"HOME": ""}, platform="linux") == Path(home) / ".pgpass"
    assert default_pgpass_path({}, platform="linux") == Path(home) / ".pgpass"


# ---- modes ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o002, 0o022, 0o077])
def test_new_files_are_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        atomic_write(tmp_path / "a", b"x")
        assert update_file(tmp_path / "b", append(b"y"))
    finally:
        os.umask(previous)
    assert mode_of(tmp_path / "a") == 0o600
    assert mode_of(tmp_path / "b") == 0o600
    assert mode_of(tmp_path / "b.lock") == 0o600
    assert temps(tmp_path) == []


def test_group_readable_file_is_rewritten_0600_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / ".pgpass"
    target.write_bytes(USER_LINES)
    target.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="databricks.labs.oauth_rotator.files.writer"):
        assert update_file(target, lambda old: old) is False  # same bytes, but the mode is fixed
    assert mode_of(target) == 0o600
    assert target.read_bytes() == USER_LINES
    assert "0644" in caplog.text
    assert "libpq ignores" in caplog.text
    assert "hunter2" not in caplog.text


@pytest.mark.parametrize(("before", "after"), [(0o400, 0o400), (0o700, 0o700), (0o600, 0o600), (0o200, 0o600)])
def test_owner_only_modes_are_kept_when_readable(tmp_path: Path, before: int, after: int) -> None:
    target = tmp_path / ".pgpass"
    target.write_bytes(USER_LINES)
    target.chmod(before)
    assert update_file(target, append(b"new:1:2:3:4\n"))
    assert mode_of(target) == after


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o200, 0o000])
def test_modes_that_expose_or_hide_the_file_are_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(ValueError, match="mode"):
        atomic_write(tmp_path / "x", b"", mode=mode)


# ---- what gets written ---------------------------------------------------------------------------------------------


def test_update_file_writes_only_when_the_bytes_change(tmp_path: Path) -> None:
    target = tmp_path / ".pgpass"
    assert update_file(target, append(b"a:1:2:3:4\n")) is True
    first = os.stat(target)
    assert update_file(target, lambda old: old) is False
    assert os.stat(target).st_ino == first.st_ino
    assert update_file(target, lambda old: old.replace(b"4", b"5")) is True
    assert os.stat(target).st_ino != first.st_ino
    assert target.read_bytes() == b"a:1:2:3:5\n"


def test_a_failing_transform_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / ".pgpass"
    target.write_bytes(USER_LINES)
    target.chmod(0o600)

    def explode(_: bytes) -> bytes:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        update_file(target, explode)
    assert target.read_bytes() == USER_LINES
    assert temps(tmp_path) == []


def test_an_editor_saving_during_the_update_keeps_its_lines(tmp_path: Path) -> None:
    target = tmp_path / ".pgpass"
    target.write_bytes(b"old:1:2:3:4\n")
    target.chmod(0o600)
    calls = []

    def transform(old: bytes) -> bytes:
        calls.append(old)
        if len(calls) == 1:  # an editor replaces the file while we are busy
            (tmp_path / "editor.swp").write_bytes(b"edited:1:2:3:4\n")
            os.chmod(tmp_path / "editor.swp", 0o600)
            os.replace(tmp_path / "editor.swp", target)
        return old + b"ours:1:2:3:4\n"

    assert update_file(target, transform)
    assert calls == [b"old:1:2:3:4\n", b"edited:1:2:3:4\n"]
    assert target.read_bytes() == b"edited:1:2:3:4\nours:1:2:3:4\n"


def test_stale_temps_are_removed_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / ".pgpass"
    target.write_bytes(USER_LINES)
    target.chmod(0o600)
    stale = [tmp_path / "..pgpass.tmp.0123456789abcdef", tmp_path / "..pgpass.tmp.fedcba9876543210"]
    others = [tmp_path / "..pgpass.tmp.my-backup", tmp_path / ".pgpass.tmp.0123456789abcdef", tmp_path / "pgpass.tmp"]
    for path in stale + others:
        path.write_bytes(b"partial")
    assert update_file(target, lambda old: old) is False
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in others)


# ---- symlinks and file types ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", [False, True])
def test_a_symlinked_target_is_written_through(tmp_path: Path, relative: bool) -> None:
    home, dotfiles = tmp_path / "home", tmp_path / "dotfiles"
    home.mkdir()
    dotfiles.mkdir()
    real = dotfiles / "pgpass"
    real.write_bytes(USER_LINES)
    real.chmod(0o600)
    link = home / ".pgpass"
    link.symlink_to(Path("../dotfiles/pgpass") if relative else real)
    assert update_file(link, append(b"ours:1:2:3:4\n"))
    atomic_write(link, real.read_bytes() + b"more:1:2:3:4\n")
    assert link.is_symlink()
    assert os.readlink(link) == str(Path("../dotfiles/pgpass") if relative else real)
    assert real.read_bytes() == USER_LINES + b"ours:1:2:3:4\nmore:1:2:3:4\n"
    assert mode_of(real) == 0o600
    assert sorted(os.listdir(home)) == [".pgpass"]
    assert sorted(os.listdir(dotfiles)) == ["pgpass", "pgpass.lock"]


def test_a_dangling_link_is_refused(tmp_path: Path) -> None:
    link = tmp_path / ".pgpass"
    link.symlink_to(tmp_path / "missing" / "pgpass")
    with pytest.raises(FileWriteError, match="symbolic link"):
        update_file(link, append(b"x\n"))
    with pytest.raises(FileWriteError, match="symbolic link"):
        atomic_write(link, b"x\n")
    assert link.is_symlink()
    assert sorted(os.listdir(tmp_path)) == [".pgpass"]


def test_a_link_to_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / ".pgpass").symlink_to(tmp_path / "dir")
    with pytest.raises(FileWriteError, match="is a directory"):
        update_file(tmp_path / ".pgpass", append(b"x\n"))
    assert os.listdir(tmp_path / "dir") == []


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_target_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    target = tmp_path / ".pgpass"
    if kind == "directory":
        target.mkdir()
    else:
        os.mkfifo(target)
    with pytest.raises(FileWriteError, match="directory" if kind == "directory" else "not a regular file"):
        update_file(target, append(b"x\n"))
    with pytest.raises(FileWriteError):
        atomic_write(target, b"x\n")
    assert temps(tmp_path) == []


def test_a_missing_directory_is_named_and_not_created(tmp_path: Path) -> None:
    with pytest.raises(FileWriteError, match=f"directory {tmp_path / 'nohome'} does not exist"):
        update_file(tmp_path / "nohome" / ".pgpass", append(b"x\n"))
    assert not (tmp_path / "nohome").exists()


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_planted_lock_path_is_refused(tmp_path: Path, kind: str) -> None:
    target, victim = tmp_path / ".pgpass", tmp_path / "victim"
    target.write_bytes(USER_LINES)
    target.chmod(0o600)
    if kind == "symlink":
        (tmp_path / ".pgpass.lock").symlink_to(victim)
    else:
        os.mkfifo(tmp_path / ".pgpass.lock")
    with pytest.raises(FileWriteError, match="lock"):
        update_file(target, append(b"x\n"))
    assert not victim.exists()
    assert target.read_bytes() == USER_LINES


def test_a_shared_directory_is_refused_unless_allowed_and_then_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path.chmod(0o777)
    with pytest.raises(UntrustedPathError, match=f"writable by its group and others.*{SHARED_DIRECTORY_VARIABLE}=1"):
        atomic_write(tmp_path / "x", b"")
    assert not (tmp_path / "x").exists()
    monkeypatch.setenv(SHARED_DIRECTORY_VARIABLE, "1")
    with caplog.at_level(logging.WARNING, logger="databricks.labs.oauth_rotator.files.writer"):
        atomic_write(tmp_path / "x", b"")
    assert "writable by other users" in caplog.text
    assert mode_of(tmp_path / "x") == 0o600


# ---- the lock ------------------------------------------------------------------------------------------------------


def test_lock_timeout_names_the_holder_and_a_dead_holder_frees_it(tmp_path: Path) -> None:
    target = tmp_path / ".pgpass"
    argv = [
        sys.executable,
        "-c",
        "import sys, time\nfrom pathlib import Path\nfrom databricks.labs.oauth_rotator.files.writer import FileLock\n"
        "FileLock(Path(sys.argv[1])).acquire()\nprint('locked', flush=True)\ntime.sleep(60)\n",
        str(tmp_path / ".pgpass.lock"),
    ]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
            started = time.monotonic()
            with pytest.raises(LockTimeoutError, match=f"`.pgpass` is locked by process {holder.pid}") as caught:
                update_file(target, append(b"x\n"), lock_timeout=0.3)
            assert 0.3 <= time.monotonic() - started < 2
            assert caught.value.retryable
            assert not target.exists()
        finally:
            holder.send_signal(signal.SIGKILL)
    started = time.monotonic()
    assert update_file(target, append(b"x\n"), lock_timeout=5)
    assert time.monotonic() - started < 1
    assert (tmp_path / ".pgpass.lock").exists()  # persistent: never deleted


def test_the_lock_is_exclusive_within_a_process_too(tmp_path: Path) -> None:
    with FileLock(tmp_path / "f.lock"), pytest.raises(LockTimeoutError, match=f"locked by process {os.getpid()}"):
        FileLock(tmp_path / "f.lock", timeout=0.05).acquire()
    with FileLock(tmp_path / "f.lock", timeout=0.05):
        pass


# ---- resource failures: the old file survives byte for byte ----------------------------------------------------------


def test_read_only_directory_fails_cleanly(shared_dir: Path) -> None:
    target = shared_dir / ".pgpass"
    target.write_bytes(USER_LINES)
    target.chmod(0o600)
    (shared_dir / ".pgpass.lock").touch(0o600)
    if IS_ROOT:
        for path in (shared_dir, target, shared_dir / ".pgpass.lock"):
            os.chown(path, NOBODY, NOBODY)
    shared_dir.chmod(0o555)
    outcome = run_child(lambda: update_file(target, append(b"new:1:2:3:4\n")), as_nobody=True)
    assert outcome["error"] == "FileWriteError"
    assert "Permission denied (EACCES)" in outcome["message"]
    assert "make the directory writable" in outcome["message"]
    assert f"temporary file in {shared_dir}" in outcome["message"]
    assert target.read_bytes() == USER_LINES
    assert temps(shared_dir) == []


@pytest.mark.skipif(not IS_ROOT, reason="the file must belong to another user than the writer")
def test_a_file_of_another_user_is_refused(shared_dir: Path) -> None:
    target = shared_dir / ".pgpass"
    target.write_bytes(USER_LINES)
    target.chmod(0o600)
    os.chown(shared_dir, NOBODY, NOBODY)
    outcome = run_child(lambda: update_file(target, append(b"x\n")), as_nobody=True)
    assert outcome["error"] == "UntrustedPathError"
    assert "belongs to uid 0 (root), not to you" in outcome["message"]
    assert target.read_bytes() == USER_LINES


@pytest.mark.skipif(not IS_ROOT, reason="only root could write files of other users")
def test_root_never_writes_into_a_users_file_or_folder(shared_dir: Path) -> None:
    """Run as root, a file (or folder) another user owns could be theirs to read: it is refused, not written."""
    existing = shared_dir / ".pgpass"
    existing.write_bytes(USER_LINES)
    existing.chmod(0o600)
    os.chown(existing, NOBODY, NOBODY)
    with pytest.raises(UntrustedPathError, match="belongs to uid 65534"):
        update_file(existing, append(b"x\n"))
    os.chown(shared_dir, NOBODY, NOBODY)
    with pytest.raises(UntrustedPathError, match=f"on the way to {shared_dir}/new.conf belongs to uid 65534"):
        update_file(shared_dir / "new.conf", append(b"x\n"))
    assert existing.read_bytes() == USER_LINES
    assert sorted(os.listdir(shared_dir)) == [".pgpass"]
    assert run_child(lambda: update_file(existing, append(b"y\n")), as_nobody=True) == {"error": ""}


def test_read_only_file_system_fails_cleanly(mounted: Path) -> None:
    target = mounted / ".pgpass"
    target.write_bytes(USER_LINES)
    target.chmod(0o600)
    mount("--bind", str(mounted), str(mounted))
    mount("-o", "remount,bind,ro", str(mounted))
    with pytest.raises(FileWriteError, match=r"Read-only file system \(EROFS\)"):
        update_file(target, append(b"new:1:2:3:4\n"))
    with pytest.raises(FileWriteError, match=r"temporary file in .*Read-only file system"):
        atomic_write(target, b"new:1:2:3:4\n")
    assert target.read_bytes() == USER_LINES


def test_disk_full_fails_cleanly(mounted: Path) -> None:
    mount("-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mounted))
    target = mounted / ".pgpass"
    target.write_bytes(USER_LINES)
    target.chmod(0o600)
    with pytest.raises(
        FileWriteError, match=r"writing the temporary file failed: No space left on device \(ENOSPC\); free some space"
    ):
        update_file(target, append(b"x" * 200_000))
    assert target.read_bytes() == USER_LINES
    assert temps(mounted) == []
    assert update_file(target, append(b"small:1:2:3:4\n"))  # and it works again once there is room


def test_failed_rename_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / ".pgpass"
    target.write_bytes(USER_LINES)
    target.chmod(0o600)
    if subprocess.run(["chattr", "+i", str(target)], capture_output=True, check=False).returncode != 0:
        pytest.skip("chattr +i is not available on this file system (needs root and ext4/xfs/btrfs)")
    try:
        with pytest.raises(
            FileWriteError, match=r"renaming the temporary file over \.pgpass failed: Operation not permitted \(EPERM\)"
        ):
            update_file(target, append(b"new:1:2:3:4\n"))
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=True)
    assert target.read_bytes() == USER_LINES
    assert temps(tmp_path) == []


@pytest.mark.usefixtures("umask_000")
def test_definitions_are_written_0644_even_under_umask_000(tmp_path):
    target = tmp_path / "new" / "dir" / "unit.service"
    write_public(target, b"first")
    assert target.read_bytes() == b"first"
    assert target.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700  # intermediate directories too
    assert (tmp_path / "new" / "dir").stat().st_mode & 0o777 == 0o700
    target.chmod(0o666)
    write_public(target, b"second")
    assert target.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["unit.service"]  # no temp file left


def test_a_failed_write_leaves_no_temp_file(tmp_path):
    target = tmp_path / "unit.service"
    target.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(FileWriteError, match="it is a directory"):
        write_public(target, b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["unit.service"]
