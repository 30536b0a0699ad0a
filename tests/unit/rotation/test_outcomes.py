"""What status.json says about a target after an attempt: the credential, or the failure with its backoff."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from unittest.mock import create_autospec

import pytest

from databricks.labs.oauth_rotator.config import TargetConfig
from databricks.labs.oauth_rotator.errors import CredentialError, NeedsPersonError
from databricks.labs.oauth_rotator.lakebase.credentials import Credential
from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint
from databricks.labs.oauth_rotator.rotation.notify import Notifier
from databricks.labs.oauth_rotator.rotation.outcomes import Outcome, Recorder
from databricks.labs.oauth_rotator.rotation.schedule import RefreshPolicy
from databricks.labs.oauth_rotator.rotation.state import TargetState
from tests.rigs.tokens import mint_jwt

NOW = 1_767_225_600.0
START = datetime.fromtimestamp(NOW, tz=timezone.utc)
TARGET = TargetConfig(name="sales", instance="sales-db", extra_hosts=["ro.example.com"], port=6432, database="shop")


def credential(*, lives: float = 3600.0) -> Credential:
    return Credential(
        token="new-token",
        expires_at=START + timedelta(seconds=lives),
        issued_at=START,
        user="someone@example.com",
        hosts=("rw.example.com",),
        source="instance sales-db",
    )


def test_an_outcome_has_a_line_per_host_of_the_credential_then_the_extra_ones() -> None:
    outcome = Outcome(TARGET, credential=credential())
    assert outcome.hosts == ["rw.example.com", "ro.example.com"]
    assert [e.key for e in outcome.entries] == [
        ("rw.example.com", "6432", "shop", "someone@example.com"),
        ("ro.example.com", "6432", "shop", "someone@example.com"),
    ]
    assert {e.password for e in outcome.entries} == {"new-token"}
    assert Outcome(TARGET, error=CredentialError("x")).entries == []


def test_a_success_records_the_credential_and_clears_the_failures() -> None:
    previous = TargetState(name="sales", failures=3, last_error="HTTP 503", next_attempt=NOW + 5, notified="expiring")
    state = Recorder(RefreshPolicy()).next_state(previous, Outcome(TARGET, credential=credential()), NOW)
    assert state.fingerprint == token_fingerprint("new-token")
    assert (state.issued_at, state.expires_at, state.due_at) == (NOW, NOW + 3600, NOW + 3000)
    assert state.keys == [
        ["rw.example.com", "6432", "shop", "someone@example.com"],
        ["ro.example.com", "6432", "shop", "someone@example.com"],
    ]
    assert (state.failures, state.last_error, state.next_attempt, state.notified) == (0, None, None, None)
    assert state.last_success == state.last_attempt == NOW


def test_a_success_whose_lines_all_kept_a_longer_lived_credential_records_that_one() -> None:
    theirs = mint_jwt("someone@example.com", expires_at=START + timedelta(hours=3), issuer="other", issued_at=START)
    outcome = Outcome(TARGET, credential=credential())
    outcome.kept = {entry.key: theirs for entry in outcome.entries}
    previous = TargetState(name="sales", last_success=NOW - 3000)
    state = Recorder(RefreshPolicy()).next_state(previous, outcome, NOW)
    assert state.fingerprint == token_fingerprint(theirs)
    assert state.expires_at == NOW + 3 * 3600
    assert state.last_success == NOW - 3000  # none of ours was written


def test_a_failure_backs_off_and_is_logged_once_per_message(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(RefreshPolicy(backoff_base_seconds=4, backoff_cap_seconds=4))
    outcome = Outcome(TARGET, error=CredentialError("HTTP 503"))
    with caplog.at_level(logging.INFO):
        first = recorder.next_state(TargetState(name="sales"), outcome, NOW)
        second = recorder.next_state(first, outcome, NOW + 4)
    assert (first.failures, second.failures) == (1, 2)
    assert NOW + 2 <= (first.next_attempt or 0) <= NOW + 4
    assert [r.levelno for r in caplog.records if "sales" in r.getMessage()] == [logging.WARNING, logging.INFO]
    assert "still failing (attempt 2)" in caplog.records[-1].getMessage()


def test_someone_asking_now_hears_every_failure(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(RefreshPolicy(), interactive=True)
    outcome = Outcome(TARGET, error=CredentialError("HTTP 503"))
    with caplog.at_level(logging.INFO):
        recorder.next_state(recorder.next_state(TargetState(name="sales"), outcome, NOW), outcome, NOW)
    assert [r.levelno for r in caplog.records if "failed" in r.getMessage()] == [logging.WARNING, logging.WARNING]


def test_an_error_a_person_must_fix_waits_the_slow_cadence_and_notifies() -> None:
    notifier = create_autospec(Notifier, instance=True)
    policy = RefreshPolicy(needs_person_retry_seconds=900)
    error = NeedsPersonError("the login expired", fix="databricks auth login")
    state = Recorder(policy, notifier).next_state(TargetState(name="sales"), Outcome(TARGET, error=error), NOW)
    assert state.next_attempt == NOW + 900
    assert (state.needs_person, state.fix) == (True, "databricks auth login")
    notifier.notify.assert_called_once()
