"""The front's folder: made and checked before anything is written, and read without following links."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.rotation import front_folder
from databricks.labs.oauth_rotator.rotation.front_folder import FrontFiles, ServiceUser
from databricks.labs.oauth_rotator.trust import SHARED_DIRECTORY_VARIABLE
from tests.rigs.users import reachable_directory


def test_a_file_is_read_only_when_it_is_a_regular_file_of_ours_with_one_link(tmp_path: Path):
    own = tmp_path / "own"
    own.write_bytes(b"ours")
    assert front_folder.read_own(own) == b"ours"
    (tmp_path / "link").symlink_to(own)
    assert front_folder.read_own(tmp_path / "link") is None, "a link is never followed"
    os.link(own, tmp_path / "hard")
    assert front_folder.read_own(own) is None, "a hard link may be another file's name too"
    assert front_folder.read_own(tmp_path / "missing") is None


def test_a_folder_made_in_a_directory_others_can_write_is_refused_unless_shared_on_purpose(tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    problem = front_folder.location_problem(shared / "front", None, environ={"HOME": str(tmp_path)})
    assert isinstance(problem, ConfigError) and SHARED_DIRECTORY_VARIABLE in str(problem.fix)
    allowed = {"HOME": str(tmp_path), SHARED_DIRECTORY_VARIABLE: "1"}
    assert front_folder.location_problem(shared / "front", None, environ=allowed) is None
    assert not (shared / "front").exists(), "a check writes nothing"


def test_a_file_where_the_folder_should_be_is_refused(tmp_path: Path):
    (tmp_path / "front").write_text("not a folder")
    problem = front_folder.location_problem(tmp_path / "front", None, environ={"HOME": str(tmp_path)})
    assert problem is not None and "is not a directory of yours" in str(problem)


@pytest.mark.skipif(os.geteuid() != 0, reason="root only: a service user and a folder root keeps to itself")
def test_under_root_a_folder_the_service_user_cannot_reach_is_named():
    import pwd

    entry = pwd.getpwnam("postgres")
    user = ServiceUser("postgres", entry.pw_uid, entry.pw_gid)
    with reachable_directory() as reachable:
        assert front_folder.location_problem(reachable / "front", user, environ={"HOME": "/root"}) is None
        private = reachable / "private"
        private.mkdir(mode=0o700)
        problem = front_folder.location_problem(private / "front", user, environ={"HOME": "/root"})
    assert problem is not None and f"{private} lets only its owner in" in str(problem)
    assert "/var/lib/databricks-oauth-rotator/pgbouncer" in str(problem.fix)


def test_the_folder_and_its_run_folder_are_ours_alone_without_a_service_user(tmp_path: Path):
    files = FrontFiles(tmp_path / "a" / "front")
    (tmp_path / "a").mkdir(mode=0o700)
    front_folder.prepare(files, None)
    for folder in (files.folder, files.run_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.stat().st_uid == os.geteuid()


def test_what_was_planted_in_the_folder_is_removed_before_anything_is_written(tmp_path: Path):
    files = FrontFiles(tmp_path / "front")
    files.folder.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep me")
    files.auth_file.symlink_to(elsewhere)
    files.run_dir.symlink_to(tmp_path)
    front_folder.prepare(files, None)
    assert not files.auth_file.exists() and elsewhere.read_text() == "keep me"
    assert files.run_dir.is_dir() and not files.run_dir.is_symlink()
    assert front_folder.write(files.auth_file, b"new") and not front_folder.write(files.auth_file, b"new")
    assert stat.S_IMODE(files.auth_file.stat().st_mode) == 0o600


def test_a_socket_folder_others_can_write_is_refused_unless_shared_on_purpose(tmp_path: Path):
    """pgbouncer's own default, /tmp: another user could put a socket of theirs at its name first."""
    shared = tmp_path / "sockets"
    shared.mkdir()
    shared.chmod(0o1777)
    problem = front_folder.socket_dir_problem(shared, None, environ={"HOME": str(tmp_path)})
    assert problem is not None and "pgbouncer.unix_socket_dir: other users can write" in str(problem)
    allowed = {"HOME": str(tmp_path), SHARED_DIRECTORY_VARIABLE: "1"}
    assert front_folder.socket_dir_problem(shared, None, environ=allowed) is None
    shared.chmod(0o755)
    assert front_folder.socket_dir_problem(shared, None, environ={"HOME": str(tmp_path)}) is None
