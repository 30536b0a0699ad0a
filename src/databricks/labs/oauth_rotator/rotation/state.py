"""The status file, `state/status.json`: what was rotated, when it expires, what failed. Never a secret.

Stdlib only: `status` and the long-lived scheduler read it without importing the Databricks SDK.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

STATE_VERSION = 1
PgpassKey = tuple[str, str, str, str]


MAX_FOREIGN_LEAD_SECONDS = 24 * 3600.0
"""How much longer than ours a credential someone else put on our line may claim to live and still be believed."""


def foreign_expiry(password: str, ours: float) -> float | None:
    """When a credential someone else put on our line expires, by its JWT `exp` claim, for the rule that keeps a
    longer-lived one: None when it has no usable claim, or claims to outlive `ours` (our credential's expiry, as the
    API gave it) by more than a day. Such a claim (a JWT `exp` in 2100) is not believed: it would keep that
    credential on the line for ever, long after the server stopped taking it."""
    from databricks.labs.oauth_rotator.lakebase.tokeninfo import jwt_expiry

    claimed = jwt_expiry(password)
    return claimed if claimed is not None and claimed <= ours + MAX_FOREIGN_LEAD_SECONDS else None


@dataclass
class TargetState:
    """What the last cycles did for one target. Times are seconds since the epoch (wall clock)."""

    name: str
    user: str | None = None
    hosts: list[str] = field(default_factory=list)
    keys: list[list[str]] = field(default_factory=list)
    """The `.pgpass` keys (host, port, database, user) written for this target."""
    fingerprint: str | None = None
    """First 16 hex digits of the SHA-256 of the credential in `.pgpass`, to notice that a line went missing."""
    issued_at: float | None = None
    expires_at: float | None = None
    """The expiry of that credential: ours as the API gave it, or (kept instead of ours, because it outlives ours:
    another rotator's, a pasted one) its JWT `exp`. `due_at` follows it either way."""
    due_at: float | None = None
    last_success: float | None = None
    last_attempt: float | None = None
    last_error: str | None = None
    needs_person: bool = False
    fix: str | None = None
    failures: int = 0
    next_attempt: float | None = None
    notified: str | None = None
    """The condition the user was last notified about (needs a person, about to expire); None once resolved."""

    def next_action_at(self) -> float | None:
        """When this target next wants a cycle: its retry time while failing, else its refresh time."""
        if self.failures and self.next_attempt is not None:
            return self.next_attempt
        return self.due_at

    def pgpass_keys(self) -> list[PgpassKey]:
        """The `.pgpass` keys of this target's lines (malformed entries of a hand-edited file skipped)."""
        return [(k[0], k[1], k[2], k[3]) for k in self.keys if len(k) == 4]

    def is_recorded(self, password: str) -> bool:
        """Whether this is the credential recorded here (by its fingerprint)."""
        from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint

        return self.fingerprint is not None and token_fingerprint(password) == self.fingerprint

    def expiry_of(self, password: str) -> float | None:
        """When a credential found on one of this target's lines expires, for scheduling: the one recorded here (we
        wrote it) by the expiry the API gave for it, never its JWT claim; any other by `foreign_expiry`."""
        if self.is_recorded(password):
            return self.expires_at
        return foreign_expiry(password, self.expires_at) if self.expires_at is not None else None

    def lines_lost(self, current: bytes, on_file: Mapping[PgpassKey, str | None] | None = None) -> bool:
        """Whether `.pgpass` (as `current`) lacks the credential we wrote: deleted, edited, or the file is gone.

        A line holding a credential that lives longer than ours (written by a concurrent rotator) is not lost.
        `on_file` is what `pgpass.lookup_many` found for (at least) this target's keys, when already known.
        """
        keys = self.pgpass_keys()
        if on_file is None:
            from databricks.labs.oauth_rotator.files import pgpass

            on_file = pgpass.lookup_many(current, keys)
        for key in keys:
            password = on_file.get(key)
            if password is None:
                return True
            if self.is_recorded(password):
                continue
            expiry = self.expiry_of(password)
            if expiry is None or self.expires_at is None or expiry <= self.expires_at:
                return True
        return False

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TargetState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass
class Status:
    pgpass_file: str | None = None
    updated_at: float | None = None
    targets: dict[str, TargetState] = field(default_factory=dict)

    def lines_lost(self, current: bytes) -> list[str]:
        """The targets whose credential is no longer in `.pgpass` (read as `current`): one pass over the file."""
        from databricks.labs.oauth_rotator.files import pgpass

        watched = {name: target for name, target in self.targets.items() if target.fingerprint}
        on_file = pgpass.lookup_many(current, [key for target in watched.values() for key in target.pgpass_keys()])
        return [name for name, target in watched.items() if target.lines_lost(current, on_file)]

    def next_due(self) -> float | None:
        times = [t for t in (s.next_action_at() for s in self.targets.values()) if t is not None]
        return min(times) if times else None

    def to_json(self) -> bytes:
        raw = {"version": STATE_VERSION, **asdict(self)}
        return (json.dumps(raw, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Status:
        if not data.strip():
            return cls()
        raw = json.loads(data)
        targets = {name: TargetState.from_dict(t) for name, t in (raw.get("targets") or {}).items()}
        return cls(pgpass_file=raw.get("pgpass_file"), updated_at=raw.get("updated_at"), targets=targets)


class StateStore:
    """Reads and updates `status.json` with the same lock-and-replace care as `.pgpass`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Status:
        """The current status; an unreadable or corrupt file reads as empty (it holds nothing we cannot rebuild)."""
        try:
            return Status.from_json(self.path.read_bytes())
        except FileNotFoundError:
            return Status()
        except (OSError, ValueError) as err:
            logger.warning(f"Ignoring unreadable status file {self.path}: {err}")
            return Status()

    def update(self, change: Callable[[Status], None], *, keep: Iterable[str] | None = None) -> Status:
        """Apply `change` to the current status under the lock; `keep` drops targets no longer configured."""
        from databricks.labs.oauth_rotator.files import writer

        result = Status()

        def transform(old: bytes) -> bytes:
            nonlocal result
            try:
                status = Status.from_json(old)
            except ValueError:
                status = Status()
            if keep is not None:
                wanted = set(keep)
                status.targets = {k: v for k, v in status.targets.items() if k in wanted}
            change(status)
            result = status
            return status.to_json()

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        writer.update_file(self.path, transform)
        return result
