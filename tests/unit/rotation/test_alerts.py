"""When a person is told: once per condition, again only after it was resolved and came back."""

from __future__ import annotations

from unittest.mock import create_autospec

from databricks.labs.oauth_rotator.rotation.alerts import condition_of, notify_once
from databricks.labs.oauth_rotator.rotation.notify import Notifier
from databricks.labs.oauth_rotator.rotation.state import TargetState

NOW = 1_767_225_600.0
MARGIN = 600.0


def failing(*, expires_in: float, lifetime: float = 3600.0, needs_person: bool = False) -> TargetState:
    return TargetState(
        name="sales",
        issued_at=NOW + expires_in - lifetime,
        expires_at=NOW + expires_in,
        last_error="HTTP 503",
        needs_person=needs_person,
        fix="log in again" if needs_person else None,
        failures=3,
    )


def test_a_failure_that_needs_a_person_is_its_own_condition_naming_the_fix() -> None:
    found = condition_of("sales", failing(expires_in=3000, needs_person=True), NOW, margin_seconds=MARGIN)
    assert found == ("needs-person:log in again", "sales: a person must act: HTTP 503")


def test_failures_are_told_only_when_less_than_half_the_margin_is_left() -> None:
    assert condition_of("sales", failing(expires_in=301), NOW, margin_seconds=MARGIN) is None
    condition, message = condition_of("sales", failing(expires_in=299), NOW, margin_seconds=MARGIN) or ("", "")
    assert condition == "expiring"
    assert "expires in 4 min" in message
    assert "HTTP 503" in message


def test_a_short_lived_credential_is_told_with_a_quarter_of_its_life_left() -> None:
    assert condition_of("sales", failing(expires_in=30, lifetime=100), NOW, margin_seconds=MARGIN) is None
    assert condition_of("sales", failing(expires_in=20, lifetime=100), NOW, margin_seconds=MARGIN) is not None


def test_an_expired_credential_says_so() -> None:
    _, message = condition_of("sales", failing(expires_in=-5), NOW, margin_seconds=MARGIN) or ("", "")
    assert "has expired" in message


def test_a_state_without_a_credential_and_no_person_needed_is_no_condition() -> None:
    assert condition_of("sales", TargetState(name="sales", last_error="x"), NOW, margin_seconds=MARGIN) is None


def test_each_condition_is_notified_once_and_again_after_it_cleared() -> None:
    notifier = create_autospec(Notifier, instance=True)
    state = failing(expires_in=3000, needs_person=True)
    notify_once("sales", state, NOW, margin_seconds=MARGIN, notifier=notifier)
    notify_once("sales", state, NOW, margin_seconds=MARGIN, notifier=notifier)
    assert notifier.notify.call_count == 1
    assert state.notified == "needs-person:log in again"

    state.needs_person = False  # resolved: the next occurrence is news again
    notify_once("sales", state, NOW, margin_seconds=MARGIN, notifier=notifier)
    assert state.notified is None
    state.needs_person = True
    notify_once("sales", state, NOW, margin_seconds=MARGIN, notifier=notifier)
    assert notifier.notify.call_count == 2


def test_without_a_notifier_the_condition_is_still_remembered() -> None:
    state = failing(expires_in=10)
    notify_once("sales", state, NOW, margin_seconds=MARGIN, notifier=None)
    assert state.notified == "expiring"
