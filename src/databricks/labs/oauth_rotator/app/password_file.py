"""The credential on file for `password` and `exec`: which password file the scheduler writes, what `status.json`
records, and the target's credential found on its lines (ours by fingerprint, else what libpq would send).

Part of `password`'s fast path: the light tier only (`paths`, `trust`, `pgpass_fields`, the status reader).
"""

from __future__ import annotations

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.app.status import read_targets
from databricks.labs.oauth_rotator.names import capped_margin
from databricks.labs.oauth_rotator.pgpass_fields import line_prefix, token_fingerprint, unescape_field
from databricks.labs.oauth_rotator.trust import trusted_path

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs a fifth of Python's start-up
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


class OnFile:
    """A credential found in `.pgpass` for a target: the password, its expiry and, when ours, when it was issued."""

    __slots__ = ("expires_at", "issued_at", "password")

    def __init__(self, password: str, expires_at: float, issued_at: float | None = None) -> None:
        self.password = password
        self.expires_at = expires_at
        self.issued_at = issued_at

    def fresh(self, now: float, margin_seconds: float) -> bool:
        """More than the margin left, the margin capped at a share of the credential's life when that is known."""
        if self.issued_at is not None:
            margin_seconds = capped_margin(margin_seconds, self.expires_at - self.issued_at)
        return self.expires_at - now > margin_seconds


def _keys(target: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    keys = target.get("keys")
    if not isinstance(keys, list):
        return []
    return [(k[0], k[1], k[2], k[3]) for k in keys if isinstance(k, list) and len(k) == 4 and _all_text(k)]


def _all_text(values: list[Any]) -> bool:
    return all(isinstance(v, str) for v in values)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def recorded_credential(data: bytes, target: Mapping[str, Any]) -> OnFile | None:
    """The credential `status.json` records for the target, found on one of its lines, with its recorded times.

    A line counts only when its password has the recorded fingerprint, so whatever else the file holds (comments,
    other tools' lines, a line libpq would take first) cannot make this print anything but our credential.
    """
    recorded, expires_at = target.get("fingerprint"), _number(target.get("expires_at"))
    if not isinstance(recorded, str) or expires_at is None:
        return None
    lines = data.split(b"\n")
    for key in _keys(target):
        prefix = line_prefix(key)
        for line in lines:
            if not line.startswith(prefix):
                continue
            try:
                password = unescape_field(line[len(prefix) :].rstrip(b"\r")).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if password and token_fingerprint(password) == recorded:
                return OnFile(password, expires_at, _number(target.get("issued_at")))
    return None


def libpq_credential(data: bytes, target: Mapping[str, Any]) -> OnFile | None:
    """What libpq would send on the target's first line and its JWT expiry, when it is not ours (a concurrent
    rotator's, a pasted one); None when it has no readable expiry. Imports `pgpass` (and `re`): the rare case."""
    keys = _keys(target)
    if not keys:
        return None
    from databricks.labs.oauth_rotator.files import pgpass
    from databricks.labs.oauth_rotator.lakebase.tokeninfo import jwt_expiry

    password = pgpass.lookup_many(data, keys[:1]).get(keys[0])
    if not password:
        return None
    expiry = jwt_expiry(password)
    return OnFile(password, expiry) if expiry is not None else None


def scheduler_pgpass_file(configured: str | None, environ: Mapping[str, str], recorded: str | None = None) -> str:
    """The password file the configured scheduler writes, whatever `PGPASSFILE` the caller has: the config's
    `pgpass_file`, else the file the last rotation wrote (`status.json`'s `pgpass_file`: the service's
    environment chose it), else libpq's default. A client with its own `PGPASSFILE` (a node app, an IDE) must not
    make us mint into a second file that the scheduler never refreshes."""
    if configured:
        return paths.pgpass_file_name(configured, environ)
    if recorded:
        return recorded
    return paths.pgpass_file_name(None, {k: v for k, v in environ.items() if k != "PGPASSFILE"})


def read_status(environ: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
    """`status.json`'s targets and the password file it records, once the trust rule passed for it."""
    status_path = paths.status_file_name(environ)
    trusted_path(status_path, for_write=True, environ=environ)
    return read_targets(status_path), _recorded_pgpass_file(status_path)


def _recorded_pgpass_file(status_path: str) -> str | None:
    from databricks.labs.oauth_rotator.files import plainjson

    try:
        with open(status_path, "rb") as file:
            raw = plainjson.loads(file.read())
    except (OSError, ValueError):
        return None
    recorded = raw.get("pgpass_file") if isinstance(raw, dict) else None
    return recorded if isinstance(recorded, str) and recorded else None
