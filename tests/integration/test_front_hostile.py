"""The pgbouncer front run by root for a service user, attacked as that user and as another local user (#23,
findings 1-3): root never writes where they can redirect it, never copies their text, and never hands them a
folder someone planted.

Each attack runs as a throwaway OS user (`tests/rigs/users.py`): root only, else skipped.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.config import PgbouncerConfig, RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.rotation.front import Front
from databricks.labs.oauth_rotator.rotation.state import Status, TargetState
from databricks.labs.oauth_rotator.trust import SHARED_DIRECTORY_VARIABLE
from tests.rigs.users import OtherUser, reachable_directory, sticky_directory, throwaway_user

KEY = ("h.example.com", "5432", "postgres", "someone@example.com")
ROOT_TEXT = "root's own line\n"


@pytest.fixture
def base(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with reachable_directory() as directory:
        monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(directory / "state"))
        yield directory


@pytest.fixture
def service() -> Iterator[OtherUser]:
    with throwaway_user() as user:
        yield user


def front_for(folder: Path, run_as: str) -> Front:
    block = PgbouncerConfig(dir=str(folder), run_as=run_as)
    return Front(RotatorConfig(targets=[TargetConfig(name="sales", host=KEY[0], database=KEY[2])], pgbouncer=block))


def rotate(front: Front, token: str) -> None:
    data = pgpass.merge(b"", [pgpass.PgpassEntry(*KEY, password=token)])
    front.update(data, Status(targets={"sales": TargetState(name="sales", keys=[list(KEY)])}))


def root_file(base: Path, name: str) -> Path:
    """A file only root may read or write: what an attacker would like root to overwrite, or to copy out."""
    path = base / "root-only" / name
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_text(ROOT_TEXT)
    path.chmod(0o600)
    return path


def test_the_service_user_can_read_the_fronts_files_but_redirect_none_of_roots_writes(base: Path, service: OtherUser):
    """Finding 1: the folder is root's, so the service user cannot put a link where root writes."""
    front = front_for(base / "front", service.name)
    rotate(front, "token-1")
    files = front.files
    folder = files.folder.stat()
    assert (folder.st_uid, stat.S_IMODE(folder.st_mode)) == (0, 0o710)
    assert files.password_file.stat().st_uid == 0, "the generated password stays root's"
    for path in (files.ini, files.auth_file):
        assert (path.stat().st_uid, stat.S_IMODE(path.stat().st_mode)) == (service.uid, 0o600)
    assert service.do(files.ini.read_bytes) == "", "pgbouncer, as the service user, reads its files"
    assert files.run_dir.stat().st_uid == service.uid, "and writes its pid and log in run/"

    target = root_file(base, "profile")

    def swap_in_a_link() -> None:
        (files.run_dir / "link").symlink_to(target)  # run/ is the service user's own: this works
        os.replace(files.run_dir / "link", files.auth_file)  # the folder is not: this does not

    for attack in (
        swap_in_a_link,
        lambda: os.symlink(target, files.folder / "userlist.new"),
        files.auth_file.unlink,
        lambda: files.password_file.write_text('"lakebase" "$(id)"\n'),
        files.password_file.read_text,
    ):
        assert "PermissionError" in service.do(attack)
    rotate(front, "token-2")
    assert target.read_text() == ROOT_TEXT
    assert "token-2" in files.ini.read_text() and files.auth_file.read_text().count("\n") == 1


def test_a_folder_the_service_user_was_given_is_taken_back_and_its_links_and_text_are_not_followed(
    base: Path, service: OtherUser
):
    """Findings 1 and 2, as 0.2 left it: the service user owned the folder and planted links and the password."""
    folder = base / "front"
    folder.mkdir(mode=0o700)
    os.chown(folder, service.uid, service.gid)
    overwritten, copied = root_file(base, "profile"), root_file(base, "secret")
    planted = {"userlist.txt": overwritten, "pgbouncer.ini": overwritten, "password": copied}

    def plant() -> None:
        for name, target in planted.items():
            os.symlink(target, folder / name)

    assert service.do(plant) == ""

    front = front_for(folder, service.name)
    rotate(front, "token-1")
    assert overwritten.read_text() == ROOT_TEXT and copied.read_text() == ROOT_TEXT
    auth = front.files.auth_file.read_text()
    assert ROOT_TEXT.strip() not in auth and not front.files.auth_file.is_symlink()
    assert (folder.stat().st_uid, stat.S_IMODE(folder.stat().st_mode)) == (0, 0o710)


def test_a_password_the_service_user_wrote_never_reaches_the_auth_file(base: Path, service: OtherUser):
    folder = base / "front"
    folder.mkdir(mode=0o700)
    os.chown(folder, service.uid, service.gid)
    injected = '"lakebase" "$(id > /tmp/x)"\nx'
    assert service.do(lambda: (folder / "password").write_text(injected)) == ""
    front = front_for(folder, service.name)
    rotate(front, "token-1")
    auth = front.files.auth_file.read_text()
    assert "$(id" not in auth and auth.count("\n") == 1
    assert front.files.password_file.stat().st_uid == 0


def test_a_link_planted_in_a_shared_sticky_folder_is_refused_before_anything_is_handed_over(base: Path):
    """Finding 3: another local user plants the front's folder name in /tmp before the front starts."""
    victim = base / "victim"
    victim.mkdir(mode=0o700)
    with throwaway_user() as attacker, sticky_directory() as shared:
        folder = shared / "front"
        assert attacker.do(lambda: os.symlink(victim, folder)) == ""
        with pytest.raises(ConfigError, match=r"unsafe permissions|other users can write"):
            rotate(front_for(folder, "postgres"), "token-1")
        with pytest.raises(ConfigError):
            front_for(folder, "postgres").check(port=False)
    assert victim.stat().st_uid == 0 and stat.S_IMODE(victim.stat().st_mode) == 0o700
    assert list(victim.iterdir()) == []


def test_a_front_folder_in_a_sticky_folder_needs_the_shared_setting(base: Path, monkeypatch: pytest.MonkeyPatch):
    with sticky_directory() as shared:
        front = front_for(shared / "front", "postgres")
        with pytest.raises(ConfigError, match=rf"other users can write.*{SHARED_DIRECTORY_VARIABLE}=1"):
            front.check(port=False)
        assert not (shared / "front").exists()
        monkeypatch.setenv(SHARED_DIRECTORY_VARIABLE, "1")
        front.check(port=False)
        rotate(front, "token-1")
        assert "token-1" in front.files.ini.read_text()
