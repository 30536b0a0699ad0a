"""`doctor`'s pgbouncer front checks: none without a front; a missing program fails with how to install it."""

from __future__ import annotations

from pathlib import Path

from databricks.labs.oauth_rotator.app.doctor_findings import FAIL
from databricks.labs.oauth_rotator.app.doctor_front import check_front
from databricks.labs.oauth_rotator.config import PgbouncerConfig, RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.rotation.state import Status


def test_no_front_no_findings() -> None:
    assert check_front(RotatorConfig(targets=[TargetConfig(host="h")]), Status()) == []
    disabled = RotatorConfig(targets=[TargetConfig(host="h")], pgbouncer=PgbouncerConfig(enabled=False))
    assert check_front(disabled, Status()) == []


def test_a_front_whose_program_is_missing_fails_with_the_fix(tmp_path: Path) -> None:
    front = PgbouncerConfig(binary=str(tmp_path / "no-such-pgbouncer"), dir=str(tmp_path / "front"))
    config = RotatorConfig(targets=[TargetConfig(host="h")], pgbouncer=front, pgpass_file=str(tmp_path / ".pgpass"))
    (finding,) = check_front(config, Status())
    assert (finding.level, finding.check) == (FAIL, "pgbouncer")
    assert "not installed" in finding.message
    assert "pgbouncer.binary" in (finding.fix or "")
