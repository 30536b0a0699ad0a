"""What `status` adds to the front's row from the supervisor's record."""

from __future__ import annotations

from databricks.labs.oauth_rotator.rotation.front_health import front_health_note


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
