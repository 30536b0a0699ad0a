"""What `doctor` says about the front, from a config, the state the supervisor recorded and the machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.config import PgbouncerConfig, RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.rotation import front_files
from databricks.labs.oauth_rotator.rotation.front import Front
from databricks.labs.oauth_rotator.rotation.front_report import FAIL, WARN, front_findings
from databricks.labs.oauth_rotator.rotation.state import Status


def front_with(tmp_path: Path, **block: object) -> Front:
    config = RotatorConfig(
        targets=[TargetConfig(name="sales", host="h")],
        pgbouncer=PgbouncerConfig(dir=str(tmp_path / "front"), **block),  # type: ignore[arg-type]
    )
    return Front(config)


def test_a_missing_program_is_the_one_finding(tmp_path: Path):
    findings = front_findings(front_with(tmp_path, binary="/nonexistent/pgbouncer"), Status())
    assert findings == [
        (
            FAIL,
            "pgbouncer",
            "the pgbouncer program is not installed",
            "install it (apt install pgbouncer, brew install pgbouncer) or set pgbouncer.binary",
        )
    ]


def test_a_front_that_died_is_not_running_in_pgbouncers_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(tmp_path / "state"))
    front_files.record_state({"process": "down", "error": "FATAL \x1b[2Jcannot open logfile"})
    fake = tmp_path / "pgbouncer"
    fake.write_text("#!/bin/sh\necho PgBouncer 1.18.0\n")
    fake.chmod(0o755)
    front = front_with(tmp_path, binary=str(fake), run_as="postgres" if os.geteuid() == 0 else None)
    findings = front_findings(front, Status(), timeout=0.5)
    assert findings[0][2].endswith("is pgbouncer 1.18.0")
    assert findings[1][0] == WARN and "1.18.0 predates 1.25.2, which fixes four CVEs" in findings[1][2]
    level, _, message, fix = findings[2]
    assert level == FAIL and message.startswith("not running: FATAL ") and "cannot open logfile" in message
    assert "\x1b" not in message and fix is not None and "restart" in fix
    assert findings[-1][0] == FAIL and "no answer on" in findings[-1][2]


@pytest.mark.skipif(os.geteuid() != 0, reason="root only")
def test_under_root_without_a_user_to_run_it_as_doctor_says_so(tmp_path: Path):
    fake = tmp_path / "pgbouncer"
    fake.write_text("#!/bin/sh\necho PgBouncer 1.18.0\n")
    fake.chmod(0o755)
    findings = front_findings(front_with(tmp_path, binary=str(fake)), Status(), timeout=0.5)
    assert findings[2][:3] == (FAIL, "pgbouncer", "pgbouncer.run_as: pgbouncer refuses to run as root")
