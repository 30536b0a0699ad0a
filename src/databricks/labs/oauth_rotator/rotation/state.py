"""The status file, `state/status.json`: what was rotated, when it expires, what failed. Never a secret.

Stdlib only: `status` and the long-lived scheduler read it without importing the Databricks SDK.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from databricks.labs.oauth_rotator.text import printable

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
    def from_dict(cls, raw: Any, name: str = "") -> TargetState:
        """A target's state as status.json holds it; raises ValueError for any value of the wrong kind (a
        hand-edited or damaged file), so that the file is set aside rather than crash a cycle later."""
        if not isinstance(raw, dict):
            raise ValueError(f"target {name!r}: expected an object, got {type(raw).__name__}")
        values = {k: v for k, v in raw.items() if k in _FIELD_CHECKS}
        values.setdefault("name", name)
        for key, value in values.items():
            if not _FIELD_CHECKS[key](value):
                raise ValueError(f"target {name!r}: {key} has an unusable value {_show(value)}")
        return cls(**values)


def _optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _optional_time(value: Any) -> bool:
    """None, or a finite number of seconds (JSON's `Infinity` would schedule a refresh for never)."""
    if value is None:
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


_FIELD_CHECKS: dict[str, Callable[[Any], bool]] = {
    "name": lambda v: isinstance(v, str),
    "user": _optional_text,
    "hosts": _texts,
    "keys": lambda v: isinstance(v, list) and all(_texts(key) for key in v),
    "fingerprint": _optional_text,
    "issued_at": _optional_time,
    "expires_at": _optional_time,
    "due_at": _optional_time,
    "last_success": _optional_time,
    "last_attempt": _optional_time,
    "last_error": _optional_text,
    "needs_person": lambda v: isinstance(v, bool),
    "fix": _optional_text,
    "failures": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31,
    "next_attempt": _optional_time,
    "notified": _optional_text,
}
"""What each TargetState field may hold in status.json (the checks follow the field types)."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
        """The status a file holds; raises ValueError for anything but the shape `to_json` writes."""
        if not data.strip():
            return cls()
        try:
            raw = json.loads(data)
        except RecursionError as err:
            raise ValueError("nested too deeply") from err
        if not isinstance(raw, dict):
            raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
        targets = raw.get("targets") or {}
        if not isinstance(targets, dict):
            raise ValueError(f"targets: expected an object, got {type(targets).__name__}")
        pgpass_file, updated_at = raw.get("pgpass_file"), raw.get("updated_at")
        if not _optional_text(pgpass_file) or not _optional_time(updated_at):
            raise ValueError("pgpass_file or updated_at has an unusable value")
        return cls(
            pgpass_file=pgpass_file,
            updated_at=updated_at,
            targets={name: TargetState.from_dict(t, name) for name, t in targets.items()},
        )


class StateStore:
    """Reads and updates `status.json` with the same lock-and-replace care as `.pgpass`.

    A malformed file (a hand edit, a damaged disk, another program's) holds nothing that cannot be rebuilt: it is
    set aside as `status.json.bad-<time>`, with one warning, and the next update writes a fresh one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Status:
        """The current status; a malformed file is set aside and reads as empty, an unreadable one reads as empty.

        A status file that another user could replace is refused (`UntrustedPathError`), not read.
        """
        from databricks.labs.oauth_rotator.trust import check_trusted

        check_trusted(self.path, for_write=False)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return Status()
        except OSError as err:
            logger.warning(f"Ignoring unreadable status file {self.path}: {err}")
            return Status()
        try:
            return Status.from_json(data)
        except ValueError as err:
            self._set_aside(err)
            return Status()

    def _bad_path(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return self.path.with_name(f"{self.path.name}.bad-{stamp}-{os.getpid()}")

    def _set_aside(self, problem: ValueError) -> None:
        """Move the malformed file out of the way (kept for a person to look at), with one warning."""
        bad = self._bad_path()
        try:
            os.replace(self.path, bad)
        except FileNotFoundError:
            return  # another process set it aside first, and warned
        except OSError as err:
            logger.warning(f"Ignoring malformed status file {self.path} ({printable(str(problem))}): {err}")
            return
        logger.warning(
            f"Malformed status file {self.path} ({printable(str(problem))}): set aside as {bad.name}; "
            "it is rewritten by the next rotation"
        )

    def _keep_copy(self, data: bytes, problem: ValueError) -> None:
        """Save a malformed file found under the lock (it is then replaced) next to it, with one warning."""
        from databricks.labs.oauth_rotator.errors import RotatorError
        from databricks.labs.oauth_rotator.files import writer

        bad = self._bad_path()
        try:
            writer.atomic_write(bad, data, mode=0o600)
        except (OSError, RotatorError) as err:
            logger.warning(f"Replacing malformed status file {self.path} ({printable(str(problem))}): {err}")
            return
        logger.warning(f"Malformed status file {self.path} ({printable(str(problem))}): set aside as {bad.name}")

    def update(self, change: Callable[[Status], None], *, keep: Iterable[str] | None = None) -> Status:
        """Apply `change` to the current status under the lock; `keep` drops targets no longer configured."""
        from databricks.labs.oauth_rotator.files import writer

        result = Status()
        malformed: tuple[bytes, ValueError] | None = None

        def transform(old: bytes) -> bytes:
            nonlocal result, malformed
            malformed = None
            try:
                status = Status.from_json(old)
            except ValueError as err:
                status, malformed = Status(), (old, err)
            if keep is not None:
                wanted = set(keep)
                status.targets = {k: v for k, v in status.targets.items() if k in wanted}
            change(status)
            result = status
            return status.to_json()

        writer.make_private_directories(self.path.parent)
        writer.update_file(self.path, transform)
        if malformed is not None:
            self._keep_copy(*malformed)
        return result
