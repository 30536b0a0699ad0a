"""Adopting a longer-lived credential already on our lines (another rotator's, a pasted one) instead of ours.

A credential that outlives ours is kept: a cycle does not mint one to throw it away, and a write never puts an
older credential over a newer one. These are the decisions; the cycle reads the file and records status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.lakebase.tokeninfo import jwt_issued_at, token_fingerprint
from databricks.labs.oauth_rotator.rotation.schedule import RefreshPolicy
from databricks.labs.oauth_rotator.rotation.state import TargetState, foreign_expiry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnFile:
    """A credential already on a target's lines that outlives ours: what status.json records for it."""

    fingerprint: str
    expires_at: float
    issued_at: float
    due_at: float


@dataclass(frozen=True)
class Planned:
    """A line to write: the entry, when its credential expires (as the API said), what status.json knew."""

    entry: pgpass.PgpassEntry
    expires_at: float
    known: TargetState | None


def outliving(
    known: TargetState, on_file: Mapping[pgpass.Key, str | None], *, now: float, policy: RefreshPolicy
) -> OnFile | None:
    """The credential on every line of a due target when it is not ours, outlives ours, and is itself not due
    yet (the one that expires first when the lines differ); else None, and the target is minted for."""
    if known.failures or known.expires_at is None:
        return None  # a failing target is retried as scheduled: its next success records what is on file
    found = []
    for key in known.pgpass_keys():
        password = on_file.get(key)
        if not password or known.is_recorded(password):
            return None
        expiry = known.expiry_of(password)
        if expiry is None or expiry <= known.expires_at:
            return None
        found.append((expiry, password))
    if not found:
        return None
    lifetime = known.expires_at - known.issued_at if known.issued_at is not None else None
    adopted = on_file_record(*min(found), lifetime=lifetime, now=now, policy=policy)
    return adopted if adopted.due_at > now else None


def on_file_record(
    expires_at: float, password: str, *, lifetime: float | None, now: float, policy: RefreshPolicy
) -> OnFile:
    """What to record for someone else's credential kept on our lines. It is due when it has as little life
    left as ours has when ours is due (`lifetime`: ours), so that the credential minted then outlives it."""
    issued = jwt_issued_at(password)
    issued_at = issued if issued is not None and issued <= now else now
    if lifetime is None or lifetime <= 0:
        lifetime = expires_at - issued_at
    left_at_refresh = lifetime - policy.due_at(0.0, lifetime)
    return OnFile(token_fingerprint(password), expires_at, issued_at, expires_at - left_at_refresh)


def with_credential(state: TargetState, found: OnFile) -> TargetState:
    """`state` describing the credential found on its lines instead of one of ours."""
    return TargetState(
        **{
            **state.__dict__,
            "fingerprint": found.fingerprint,
            "issued_at": found.issued_at,
            "expires_at": found.expires_at,
            "due_at": found.due_at,
        }
    )


def expiry_on_file(password: str, known: TargetState | None, ours: float) -> float:
    """When a credential found on our line expires: the one we recorded by the expiry the API gave for it, any other
    by its JWT `exp` as `foreign_expiry` believes it against `ours` (the expiry of the credential we would write);
    0 when that cannot be told (such a credential never outlives ours)."""
    ourselves = known is not None and known.is_recorded(password)
    expiry = known.expires_at if known is not None and ourselves else foreign_expiry(password, ours)
    return expiry if expiry is not None else 0.0


def not_older(current: bytes, planned: Sequence[Planned]) -> dict[pgpass.Key, str]:
    """The lines that already hold a credential living longer than ours (a concurrent rotator's, a pasted one),
    which are left as they are: key, password. One pass over the file for all entries."""
    on_file = pgpass.lookup_many(current, [p.entry.key for p in planned])
    kept = {}
    for line in planned:
        existing = on_file[line.entry.key]
        if existing and expiry_on_file(existing, line.known, line.expires_at) > line.expires_at:
            logger.info(f"Keeping the newer credential already in .pgpass for {line.entry.host} ({line.entry.user})")
            kept[line.entry.key] = existing
    return kept
