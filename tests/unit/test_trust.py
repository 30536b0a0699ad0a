"""The StrictModes rule (`trust.py`) and the files that obey it, each case the attack first, as another user does it.

The victim is the test process (root in CI); the attacker a throwaway user made for the test. Attacks that need
a spot both can write happen in a sticky 1777 directory, as in /tmp.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError, FileWriteError
from databricks.labs.oauth_rotator.files import writer
from databricks.labs.oauth_rotator.files.config_store import load_config, save_config
from databricks.labs.oauth_rotator.files.env_file import read_environment_file
from databricks.labs.oauth_rotator.files.logs import setup_logging
from databricks.labs.oauth_rotator.rotation.state import StateStore
from databricks.labs.oauth_rotator.trust import SHARED_DIRECTORY_VARIABLE, UntrustedPathError, check_trusted
from tests.rigs.users import OtherUser, reachable_directory, sticky_directory, throwaway_user

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX ownership")
BASHRC = b"# the victim's shell start-up\n"


@pytest.fixture(name="attacker")
def fixture_attacker() -> Iterator[OtherUser]:
    with throwaway_user() as user:
        yield user


@pytest.fixture(name="shared")
def fixture_shared() -> Iterator[Path]:
    with sticky_directory() as directory:
        yield directory


@pytest.fixture(name="victim_home")
def fixture_victim_home() -> Iterator[Path]:
    with reachable_directory() as directory:
        yield directory


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def append(line: bytes):
    return lambda old: old + line


# ---- 1. a symlink planted in a shared directory -------------------------------------------------------------------


def test_a_pgpass_symlinked_by_another_user_to_the_victims_bashrc_is_refused(
    attacker: OtherUser, shared: Path, victim_home: Path
) -> None:
    bashrc = victim_home / ".bashrc"
    bashrc.write_bytes(BASHRC)
    bashrc.chmod(0o644)
    planted = shared / "pgpass"
    assert attacker.run("ln", "-s", str(bashrc), str(planted)).returncode == 0
    with pytest.raises(UntrustedPathError, match=f"the entry on the way to {planted} belongs to uid {attacker.uid}"):
        writer.update_file(planted, append(b"host:5432:db:me:token\n"))
    assert bashrc.read_bytes() == BASHRC
    assert mode_of(bashrc) == 0o644, "the mode of the file the link names is untouched"


def test_a_file_another_user_created_first_in_a_shared_directory_never_gets_our_token(
    attacker: OtherUser, shared: Path
) -> None:
    planted = shared / "pgpass"
    assert attacker.run("sh", "-c", f"umask 000; : > {planted}").returncode == 0
    with pytest.raises(UntrustedPathError, match=f"the entry on the way to {planted} belongs to uid {attacker.uid}"):
        writer.update_file(planted, append(b"host:5432:db:me:token\n"))
    assert planted.read_bytes() == b""
    assert not (shared / "pgpass.lock").exists()


def test_a_folder_of_another_user_in_a_shared_directory_is_refused(attacker: OtherUser, shared: Path) -> None:
    folder = shared / "s"
    assert attacker.run("mkdir", "-m", "0755", str(folder)).returncode == 0
    with pytest.raises(
        UntrustedPathError, match=f"the entry on the way to {folder}/pgpass belongs to uid {attacker.uid}.*mkdir -m 700"
    ):
        writer.update_file(folder / "pgpass", append(b"x\n"))


def test_a_lock_file_another_user_planted_is_refused(attacker: OtherUser, shared: Path) -> None:
    mine = shared / "mine"
    mine.mkdir(mode=0o700)
    mine.chmod(0o1777)  # shared on purpose, but sticky: our file in it is safe
    assert attacker.run("sh", "-c", f"umask 000; : > {mine}/pgpass.lock").returncode == 0
    with pytest.raises(
        UntrustedPathError, match=f"{mine}, the entry on the way to {mine}/pgpass.lock belongs to uid {attacker.uid}"
    ):
        writer.update_file(mine / "pgpass", append(b"x\n"))
    assert not (mine / "pgpass").exists()


def test_our_own_file_in_a_sticky_directory_is_fine(shared: Path) -> None:
    assert writer.update_file(shared / "pgpass", append(b"x\n"))
    assert mode_of(shared / "pgpass") == 0o600


def test_a_dotfiles_symlink_of_our_own_keeps_working(tmp_path: Path) -> None:
    (tmp_path / "dotfiles").mkdir(mode=0o700)
    real = tmp_path / "dotfiles" / "pgpass"
    real.write_bytes(b"mine:1:2:3:4\n")
    real.chmod(0o600)
    (tmp_path / ".pgpass").symlink_to("dotfiles/../dotfiles/pgpass")
    assert check_trusted(tmp_path / ".pgpass", for_write=True) == real
    assert writer.update_file(tmp_path / ".pgpass", append(b"x\n"))
    assert real.read_bytes() == b"mine:1:2:3:4\nx\n"
    assert (tmp_path / ".pgpass").is_symlink()


def test_a_symlink_loop_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(UntrustedPathError, match="too many levels of symbolic links"):
        check_trusted(tmp_path / "a", for_write=True)


# ---- 2. directories others can write -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_directory_others_can_write_is_refused_with_the_fix_and_the_setting(tmp_path: Path, mode: int) -> None:
    folder = tmp_path / "config"
    folder.mkdir()
    folder.chmod(mode)
    with pytest.raises(UntrustedPathError) as caught:
        writer.atomic_write(folder / "config.yml", b"targets: []\n")
    message = str(caught.value)
    assert "\n" not in message
    assert f"{folder} is writable by" in message
    assert f"chmod go-w {folder}" in message and f"{SHARED_DIRECTORY_VARIABLE}=1" in message
    assert not (folder / "config.yml").exists()


def test_a_directory_shared_on_purpose_is_accepted_when_the_user_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "emptydir"
    folder.mkdir()
    folder.chmod(0o777)  # a Kubernetes emptyDir
    environ = {"HOME": str(tmp_path), SHARED_DIRECTORY_VARIABLE: "1"}
    assert check_trusted(folder / ".pgpass", for_write=True, environ=environ) == folder / ".pgpass"


def test_an_open_grandparent_is_refused_too_and_missing_folders_are_fine(tmp_path: Path) -> None:
    tmp_path.joinpath("open").mkdir()
    tmp_path.joinpath("open").chmod(0o777)
    wanted = tmp_path / "open" / "not" / "yet" / "status.json"
    with pytest.raises(UntrustedPathError, match=f"{tmp_path / 'open'} is writable by its group and others"):
        check_trusted(wanted, for_write=True, environ={"HOME": "/nonexistent"})
    assert check_trusted(tmp_path / "not" / "yet" / "status.json", for_write=True, environ={"HOME": "/nonexistent"})


def test_directories_above_home_are_not_ours_to_judge(tmp_path: Path) -> None:
    """As OpenSSH: the walk stops at the home directory (a site may keep homes in a group-writable /home)."""
    tmp_path.chmod(0o777)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    assert check_trusted(home / ".pgpass", for_write=True, environ={"HOME": str(home)})
    with pytest.raises(UntrustedPathError):
        check_trusted(tmp_path / "elsewhere", for_write=True, environ={"HOME": str(home)})


# ---- 3. what we read: config (its hook command), env file, status ----------------------------------------------


def test_a_config_others_can_write_is_not_read(tmp_path: Path) -> None:
    path = save_config(RotatorConfig(targets=[TargetConfig(instance="i")], exec_after="true"), tmp_path / "c.yml")
    path.chmod(0o666)
    with pytest.raises(ConfigError, match=f"{path} is writable by its group and others.*chmod go-w") as caught:
        load_config(path)
    assert caught.value.exit_code == 2
    path.chmod(0o644)
    assert load_config(path).exec_after == "true"


def test_a_config_in_a_folder_another_user_owns_is_not_read(attacker: OtherUser, victim_home: Path) -> None:
    folder = victim_home / "config"
    folder.mkdir(mode=0o755)
    save_config(RotatorConfig(targets=[TargetConfig(instance="i")]), folder / "config.yml")
    os.chown(folder, attacker.uid, attacker.gid)
    with pytest.raises(UntrustedPathError, match=f"{folder} belongs to uid {attacker.uid}"):
        load_config(folder / "config.yml")


def test_a_config_of_root_may_be_read_by_a_user_but_not_written(attacker: OtherUser, victim_home: Path) -> None:
    path = save_config(RotatorConfig(targets=[TargetConfig(instance="i")]), victim_home / "config.yml")
    path.chmod(0o644)
    assert attacker.do(lambda: load_config(path)) == ""
    assert "belongs to uid 0 (root), not to you" in attacker.do(lambda: writer.atomic_write(path, b""))


def test_an_env_file_others_could_replace_is_not_read(tmp_path: Path) -> None:
    folder = tmp_path / "env"
    folder.mkdir()
    (folder / "rotator.env").write_text("PATH=/tmp/evil\n")
    (folder / "rotator.env").chmod(0o600)
    folder.chmod(0o777)
    with pytest.raises(UntrustedPathError, match=f"{folder} is writable"):
        read_environment_file(folder / "rotator.env")
    folder.chmod(0o700)
    assert read_environment_file(folder / "rotator.env") == {"PATH": "/tmp/evil"}


def test_a_status_file_others_could_replace_is_refused(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state" / "status.json")
    store.update(lambda status: None)
    (tmp_path / "state").chmod(0o777)
    with pytest.raises(UntrustedPathError, match="state is writable"):
        store.load()
    with pytest.raises(UntrustedPathError, match="state is writable"):
        store.update(lambda status: None)


# ---- 4. every directory we create is 0700, whatever the umask --------------------------------------------------


@pytest.mark.usefixtures("umask_000")
def test_every_missing_component_is_made_0700_under_umask_000(tmp_path: Path) -> None:
    labs = tmp_path / ".databricks" / "labs" / "oauth-rotator"
    save_config(RotatorConfig(targets=[TargetConfig(instance="i")]), labs / "config" / "config.yml")
    StateStore(labs / "state" / "status.json").update(lambda status: None)
    setup_logging(tmp_path / "logs" / "deep" / "rotator.log", root=logging.getLogger("trust-test"))
    for folder in (
        tmp_path / ".databricks",
        tmp_path / ".databricks" / "labs",
        labs,
        labs / "config",
        labs / "state",
        tmp_path / "logs",
        tmp_path / "logs" / "deep",
    ):
        assert mode_of(folder) == 0o700, folder
    for file in (labs / "config" / "config.yml", labs / "state" / "status.json"):
        assert mode_of(file) == 0o600, file


# ---- 5. a full disk --------------------------------------------------------------------------------------------------


def test_the_first_write_onto_a_full_disk_is_one_clear_error(tmp_path: Path) -> None:
    """The lock file's PID is the first byte written: it must fail as a FileWriteError, not a traceback."""
    import subprocess

    point = tmp_path / "full"
    point.mkdir(mode=0o700)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k,mode=0700", "tmpfs", str(point)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        filler = os.open(point / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with pytest.raises(OSError, match="No space left"):
                while True:
                    os.write(filler, b"\0" * 4096)
        finally:
            os.close(filler)
        with pytest.raises(FileWriteError, match=r"writing our process ID into the lock file failed.*ENOSPC") as caught:
            writer.update_file(point / ".pgpass", append(b"host:5432:db:me:token\n"))
        assert "\n" not in str(caught.value)
        assert not (point / ".pgpass").exists()
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
