"""When to tell a person: once per condition (a person must act; refreshes keep failing close to expiry), and again
only after it was resolved and came back. The cycle calls this after each failed attempt of a target."""

from __future__ import annotations

import logging

from databricks.labs.oauth_rotator.rotation.notify import Notifier
from databricks.labs.oauth_rotator.rotation.state import TargetState
from databricks.labs.oauth_rotator.text import human_duration

logger = logging.getLogger(__name__)


def condition_of(label: str, state: TargetState, now: float, *, margin_seconds: float) -> tuple[str, str] | None:
    """The condition a person should hear about for this target, and the message; None when there is none.

    A credential is "expiring" when less than half the margin (or a quarter of its lifetime, if shorter) is left.
    """
    if state.needs_person:
        return f"needs-person:{state.fix}", f"{label}: a person must act: {state.last_error}"
    if state.expires_at is None or state.issued_at is None:
        return None
    warn_within = min(margin_seconds / 2, (state.expires_at - state.issued_at) / 4)
    remaining = state.expires_at - now
    if remaining >= warn_within:
        return None
    when = f"expires in {human_duration(remaining)}" if remaining > 0 else "has expired"
    return "expiring", f"{label}: the credential {when} and refreshing it keeps failing: {state.last_error}"


def notify_once(
    label: str, state: TargetState, now: float, *, margin_seconds: float, notifier: Notifier | None
) -> None:
    """Notify for the target's condition unless it was notified already; `state.notified` remembers which one."""
    found = condition_of(label, state, now, margin_seconds=margin_seconds)
    if found is None:
        state.notified = None
        return
    condition, message = found
    if condition == state.notified:
        return
    logger.warning(f"Notifying the user: {message}")
    if notifier is not None:
        notifier.notify(message)
    state.notified = condition
