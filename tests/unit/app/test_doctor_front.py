"""`doctor`'s pgbouncer front checks: none without a front; a missing program fails with how to install it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.app.doctor_findings import FAIL, WARN
from databricks.labs.oauth_rotator.app.doctor_front import check_front
from databricks.labs.oauth_rotator.config import PgbouncerConfig, RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.rotation import front_report
from databricks.labs.oauth_rotator.rotation.front import Front
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


def test_the_installed_pgbouncer_older_than_the_security_release_is_a_warning(tmp_path: Path) -> None:
    """This machine's pgbouncer (Debian 12's 1.18) predates 1.25.2's four CVE fixes."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        pytest.skip("no pgbouncer installed")
    front = PgbouncerConfig(binary=binary, dir=str(tmp_path / "front"))
    config = RotatorConfig(targets=[TargetConfig(host="h")], pgbouncer=front, pgpass_file=str(tmp_path / ".pgpass"))
    findings = check_front(config, Status(), timeout=0.5)
    version = Front.of(config).version  # type: ignore[union-attr]
    warned = [f for f in findings if f.level == WARN and "predates 1.25.2" in f.message]
    assert version is not None
    assert len(warned) == (1 if version < (1, 25, 2) else 0)
    if warned:
        assert "CVE-2026-6664" in warned[0].message and "1.25.2 or later" in (warned[0].fix or "")


@pytest.mark.parametrize(
    ("version", "warned"), [((1, 18, 0), True), ((1, 25, 1), True), ((1, 25, 2), False), (None, False)]
)
def test_the_security_release_is_the_line(version, warned) -> None:
    assert (front_report.security_finding(version) is not None) == warned
