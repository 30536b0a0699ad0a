"""What `status` adds to the front's row from the supervisor's record."""

from __future__ import annotations

import json
from pathlib import Path

from databricks.labs.oauth_rotator.rotation.front_health import front_health_note, front_problem
from databricks.labs.oauth_rotator.rotation.health import Answer, Health
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState


def test_a_running_front_or_one_nobody_records_adds_nothing():
    assert front_health_note({"process": "running"}) == ""
    assert front_health_note({}) == "" and front_health_note(None) == ""


def test_a_front_that_died_says_why_in_one_plain_line():
    note = front_health_note({"process": "down", "error": "FATAL \x1b[31mno\nway"})
    assert note == " (down: FATAL ?[31mno?way)"


def test_a_refused_credential_is_named():
    assert front_health_note({"process": "running", "refused": {"sales": "too long"}}) == (
        " (credential refused for sales)"
    )


def test_a_probe_hears_whether_the_front_serves_and_nothing_more(tmp_path: Path):
    path = tmp_path / "pgbouncer.json"
    assert front_problem(path) == "not started yet"
    path.write_text(json.dumps({"process": "failed", "error": "cannot listen on 127.0.0.1:6432", "user": "x"}))
    assert front_problem(path) == "failed"
    path.write_text(json.dumps({"process": "running"}))
    assert front_problem(path) is None


def test_readiness_fails_while_a_required_front_is_down(tmp_path: Path):
    state = StateStore(tmp_path / "status.json")
    now = 1_000_000.0
    (tmp_path / "status.json").write_bytes(
        Status(targets={"sales": TargetState(name="sales", issued_at=now, expires_at=now + 3600)}).to_json()
    )
    problem: list[str | None] = ["down"]
    health = Health(state, margin_seconds=600, wall=lambda: now, front=lambda: problem[0])
    assert health.readiness() == Answer(503, "the pgbouncer front is down\n")
    problem[0] = None
    assert health.readiness() == Answer(200, "ready\n")
