"""`doctor`'s client checks: the libpq version, `PGPASSWORD` and `PGPASSFILE`."""

from __future__ import annotations

from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.app.doctor_client import check_environment, check_libpq, libpq_cuts_long_lines
from databricks.labs.oauth_rotator.app.doctor_findings import FAIL, OK, WARN
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import RotatorError
from tests.unit.service.conftest import RecordingRunner


@pytest.mark.parametrize(
    ("version", "cuts"),
    [
        ("psql (PostgreSQL) 16.4", False),
        ("psql (PostgreSQL) 13.0", False),
        ("psql (PostgreSQL) 16beta1", False),
        ("psql (PostgreSQL) 12.3 (Ubuntu 12.3-1)", True),
        ("psql (PostgreSQL) 12.4", False),
        ("psql (PostgreSQL) 11.8", True),
        ("psql (PostgreSQL) 10.14", False),
        ("psql (PostgreSQL) 9.6.18", True),
        ("psql (PostgreSQL) 9.6.19", False),
        ("psql (PostgreSQL) 9.5.23", False),
        ("psql (PostgreSQL) 9.4.26", True),
        ("psql: command not found", None),
    ],
)
def test_libpq_versions_before_the_2020_fix_cut_long_lines(version, cuts):
    assert libpq_cuts_long_lines(version) is cuts


def test_a_recent_libpq_is_ok_an_old_one_fails_and_an_unreadable_answer_warns() -> None:
    assert check_libpq(RecordingRunner().on("psql", stdout="psql (PostgreSQL) 16.4\n")).level == OK
    old = check_libpq(RecordingRunner().on("psql", stdout="psql (PostgreSQL) 11.8\n"))
    assert (old.level, old.check) == (FAIL, "libpq")
    assert "320 bytes" in old.message
    assert check_libpq(RecordingRunner().on("psql", returncode=1, stderr="broken")).level == WARN


def test_no_psql_at_all_is_a_warning_with_the_fix() -> None:
    def missing(argv: list[str]) -> object:
        raise RotatorError(f"{argv[0]} not found")

    finding = check_libpq(missing)  # type: ignore[arg-type]
    assert (finding.level, finding.fix) == (WARN, "install the PostgreSQL client")


def test_pgpassword_makes_libpq_skip_pgpass() -> None:
    (finding,) = check_environment(None, {"PGPASSWORD": ""})
    assert (finding.level, finding.check, finding.fix) == (WARN, "PGPASSWORD", "unset PGPASSWORD")
    assert check_environment(None, {}) == []


def test_a_pgpassfile_other_than_the_one_we_write_is_a_warning(tmp_path: Path) -> None:
    config = RotatorConfig(targets=[TargetConfig(host="h")], pgpass_file=str(tmp_path / "ours"))
    (finding,) = check_environment(config, {"PGPASSFILE": str(tmp_path / "theirs")})
    assert (finding.level, finding.check) == (WARN, "PGPASSFILE")
    assert str(tmp_path / "ours") in finding.message
    assert check_environment(config, {"PGPASSFILE": str(tmp_path / "ours")}) == []


@pytest.mark.parametrize("environ", [{"PGPASSFILE": "/elsewhere"}])
def test_without_a_configured_file_pgpassfile_is_not_compared(environ: dict[str, str]) -> None:
    assert check_environment(RotatorConfig(targets=[TargetConfig(host="h")]), environ) == []
