"""`doctor`'s file checks, on real files: who may replace them, the `.pgpass` file, the recorded credentials."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.app.doctor_files import (
    check_credentials,
    check_permissions,
    check_pgpass,
    guarded_files,
    lines_lost,
)
from databricks.labs.oauth_rotator.app.doctor_findings import FAIL, OK, WARN
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint
from databricks.labs.oauth_rotator.rotation.state import Status, TargetState

NOW = 1_767_225_600.0
KEY = ("h.example.com", "5432", "*", "someone@example.com")
TOKEN = "token-sales"


def status_with(**fields: object) -> Status:
    values: dict = {"name": "sales", "keys": [list(KEY)], "fingerprint": token_fingerprint(TOKEN), **fields}
    return Status(targets={"sales": TargetState(**values)})


def pgpass_file(tmp_path: Path, data: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / ".pgpass"
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_the_guarded_files_follow_the_config(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path)}
    config = RotatorConfig(targets=[TargetConfig(host="h")], pgpass_file=str(tmp_path / "pw"), pg_service=True)
    names = [what for what, _, _ in guarded_files(tmp_path / "c.yml", config, tmp_path / "s.json", environ)]
    assert names == ["config", ".pgpass", ".pgpass lock", "status", "log", "pg_service.conf"]
    with_env = {**environ, paths.ENV_FILE_VARIABLE: str(tmp_path / "env")}
    without = guarded_files(tmp_path / "c.yml", None, tmp_path / "s.json", with_env)
    assert [what for what, _, _ in without] == ["config", ".pgpass", ".pgpass lock", "status", paths.ENV_FILE_VARIABLE]
    assert [for_write for _, _, for_write in without] == [False, True, True, True, False]


@pytest.mark.skipif(os.name != "posix", reason="the StrictModes rule is POSIX")
def test_a_folder_others_can_write_fails_and_a_private_one_passes(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    tmp_path.chmod(0o755)
    (finding,) = check_permissions([("config", private / "config.yml", False)], {"HOME": str(tmp_path)})
    assert finding.level == OK
    private.chmod(0o777)
    (finding,) = check_permissions([("config", private / "config.yml", False)], {"HOME": str(tmp_path)})
    assert (finding.level, finding.check) == (FAIL, "permissions")
    assert finding.message.startswith("config: ")
    assert finding.fix


def test_a_missing_pgpass_is_a_warning_to_rotate(tmp_path: Path) -> None:
    (finding,) = check_pgpass(tmp_path / ".pgpass", Status(), platform="linux")
    assert (finding.level, finding.fix) == (WARN, "run `databricks labs oauth-rotator rotate`")


def test_a_pgpass_others_can_read_fails_with_chmod(tmp_path: Path) -> None:
    path = pgpass_file(tmp_path, b"", mode=0o644)
    findings = check_pgpass(path, Status(), platform="linux")
    assert [(f.level, f.fix) for f in findings] == [(FAIL, f"chmod 600 {path}")]
    assert check_pgpass(path, Status(), platform="win32") == []  # Windows has no mode bits to check


def test_a_line_that_shadows_ours_is_named_and_not_also_reported_missing(tmp_path: Path) -> None:
    ours = pgpass.format_entry(pgpass.PgpassEntry(*KEY, password=TOKEN))
    path = pgpass_file(tmp_path, b"*:*:*:*:other\n" + ours + b"\n")
    findings = check_pgpass(path, status_with(), platform="linux")
    assert [(f.level, f.check) for f in findings] == [(OK, ".pgpass"), (WARN, "shadowing")]
    assert findings[1].fix == f"delete line 1 of {path}, or move it below oauth-rotator's lines"


def test_a_deleted_line_of_ours_is_lost() -> None:
    ours = pgpass.format_entry(pgpass.PgpassEntry(*KEY, password=TOKEN)) + b"\n"
    assert lines_lost(status_with(), ours, set()) == []
    assert lines_lost(status_with(), b"", set()) == ["sales"]
    assert lines_lost(status_with(), b"", {KEY}) == []  # shadowed: reported as such instead


def test_credentials_valid_expired_and_needing_a_person() -> None:
    (valid,) = check_credentials(status_with(expires_at=NOW + 600), NOW)
    assert (valid.level, valid.message) == (OK, "valid for 10 min")
    (expired,) = check_credentials(status_with(expires_at=NOW - 300), NOW)
    assert expired.level == FAIL
    assert "expired 5 min ago" in expired.message
    (person,) = check_credentials(status_with(needs_person=True, last_error="login expired", fix="log in"), NOW)
    assert (person.level, person.fix) == (FAIL, "log in")
    assert check_credentials(Status(targets={"new": TargetState(name="new")}), NOW) == []
