"""`password`: the current credential of one target, for clients that run a command for their password (pgAdmin's
password exec command, DBeaver's and Postico's pre-connect commands, node-postgres's `password` callback).

Such clients run it on every new connection, so it answers from the files whenever it can, with the light tier's
functions (the same ones every command uses): the config's trust (`trust.py`, as `--once` checks it), its
settings from the cache the full path keeps (`files/config_cache.py`: no PyYAML), `status.json` (read as `status`
reads it) and `.pgpass` (after the same trust check as the rotation's). The line written for the target that holds
the credential `status.json` records (by its fingerprint) is printed while that credential has more than the
margin left, the margin capped at a share of its life as the scheduler caps it (`names.capped_margin`): a few
milliseconds, no SDK, no network. A line holding someone else's credential (a concurrent rotator's, a pasted one)
is read as libpq reads it and judged by its JWT expiry.

When the cache does not answer, the config is read in full and passes the one preflight (`app/preflight.py`)
before anything else, and is remembered. Only when no credential on file will do is one minted, by a forced
rotation cycle of that one target under a lock, so that concurrent calls mint once (the waiters read what the first
wrote), and `.pgpass` and `status.json` hold it too: the next connection is answered from the file again.

A failed refresh while the credential on file is still valid for `MIN_LEFT_SECONDS` prints that one (with a warning
on stderr): the margin is the rotator's head start, not the end of the credential's life.
"""

from __future__ import annotations

import os
import sys
import time

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.app.status import read_targets
from databricks.labs.oauth_rotator.errors import ConfigError, CredentialError, RotatorError
from databricks.labs.oauth_rotator.files.config_cache import cached_settings
from databricks.labs.oauth_rotator.names import DEFAULT_MARGIN_MINUTES, capped_margin, target_label
from databricks.labs.oauth_rotator.pgpass_fields import line_prefix, token_fingerprint, unescape_field
from databricks.labs.oauth_rotator.trust import trusted_path

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs a fifth of Python's start-up
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, TextIO

    from databricks.labs.oauth_rotator.config import RotatorConfig

MIN_LEFT_SECONDS = 60.0
"""A credential on file with less life than this is never printed: the client logs in with it after we exit."""
LOCK_NAME = "password.lock"
"""In the state folder: held while one `password` mints, so that the others wait and read what it wrote."""


class ConfigSummary:
    """What `password` needs from the config: the target labels in order, the margin and the `.pgpass` setting."""

    __slots__ = ("labels", "margin_seconds", "pgpass_file")

    def __init__(self, labels: list[str], margin_seconds: float, pgpass_file: str | None) -> None:
        self.labels = labels
        self.margin_seconds = margin_seconds
        self.pgpass_file = pgpass_file

    def pick(self, name: str | None) -> str:
        """The label of the target called `name`, else the first: as `rotate.pick_target` picks (same error)."""
        if not name:
            return self.labels[0]
        if name not in self.labels:
            raise ConfigError(f"no target named {name!r} (configured: {', '.join(self.labels)})")
        return name


def summary_of(raw: Any) -> ConfigSummary | None:
    """The summary of config settings as plain data; None when any value it needs has the wrong type."""
    if not isinstance(raw, dict) or raw.get("version", 1) != 1:
        return None
    labels = _labels(raw.get("targets"))
    margin = raw.get("margin_minutes")
    margin = DEFAULT_MARGIN_MINUTES if margin is None else margin
    pgpass_file = raw.get("pgpass_file")
    if not labels or isinstance(margin, bool) or not isinstance(margin, (int, float)):
        return None
    if pgpass_file is not None and not isinstance(pgpass_file, str):
        return None
    return ConfigSummary(labels, float(margin) * 60, pgpass_file)


def _labels(targets: Any) -> list[str] | None:
    """Each target's label (`names.target_label`), in order."""
    if not isinstance(targets, list) or not all(isinstance(target, dict) for target in targets):
        return None
    fields = [[t.get(k) for k in ("name", "instance", "endpoint", "host")] for t in targets]
    if not all(any(fields_of) and all(v is None or isinstance(v, str) for v in fields_of) for fields_of in fields):
        return None  # a target with no name to show, or a name that is not text: the full reader says what is wrong
    return [target_label(*fields_of) for fields_of in fields]


# ---- the credential on file ------------------------------------------------------------------------------------


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


def credential_on_file(
    summary: ConfigSummary, label: str, *, environ: Mapping[str, str], now: float, left: float | None = None
) -> OnFile | None:
    """The target's credential in `.pgpass`, when it has more than `left` seconds to live (None: the margin, capped
    by the credential's life). `.pgpass` and `status.json` must pass the trust rule first, as for `--once`."""
    status_path = paths.status_file_name(environ)
    pgpass_path = paths.pgpass_file_name(summary.pgpass_file, environ)
    trusted_path(pgpass_path, for_write=True, environ=environ)
    trusted_path(status_path, for_write=True, environ=environ)
    target = read_targets(status_path).get(label)
    if target is None:
        return None
    try:
        with open(pgpass_path, "rb") as file:
            data = file.read()
    except OSError:
        return None
    for find in (recorded_credential, libpq_credential):
        found = find(data, target)
        if found is None:
            continue
        if found.fresh(now, summary.margin_seconds) if left is None else found.expires_at - now > left:
            return found
    return None


# ---- the command -----------------------------------------------------------------------------------------------


def current_password(
    config_path: str,
    name: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    now: float | None = None,
    pin: bool = False,
    debug: bool = False,
    err: TextIO | None = None,
) -> str:
    """The credential to log in to target `name` (the first target without one) with, as `password` prints it.

    From `.pgpass` while it has more than the margin left; else minted now by a forced cycle of that target
    (bounded by `ONCE_DEADLINE_SECONDS`; `pin` makes the config's profile decide the login, as the labs commands
    do), which writes it to `.pgpass` too. A config or file that fails the trust rule, or bad usage, is a
    `ConfigError` (exit 2); a failed refresh with nothing usable on file a `CredentialError` (or the cycle's own).
    """
    environ = os.environ if environ is None else environ
    now = time.time() if now is None else now
    summary = config_summary(config_path, environ)
    found = credential_on_file(summary, summary.pick(name), environ=environ, now=now)
    if found is not None:
        return found.password
    return refreshed_password(config_path, name, environ=environ, pin=pin, debug=debug, err=err)


def config_summary(config_path: str, environ: Mapping[str, str]) -> ConfigSummary:
    """The config's summary: checked by the trust rule before a byte of it is read, as `--once` checks it; then from
    the cache while it holds this very file, else read in full (and through the preflight)."""
    trusted_path(config_path, for_write=False, environ=environ)
    summary = summary_of(cached_settings(config_path, environ))
    return summary if summary is not None else _read_in_full(config_path, environ)


def _read_in_full(config_path: str, environ: Mapping[str, str]) -> ConfigSummary:
    """The config read with PyYAML and put through the preflight, then remembered for the next call."""
    config, _ = _checked_config(config_path, environ)
    return ConfigSummary([t.label for t in config.targets], config.effective_margin_minutes * 60, config.pgpass_file)


def _checked_config(config_path: str, environ: Mapping[str, str]) -> tuple[RotatorConfig, Any]:
    """The config, after the preflight that every entry point runs; its source is remembered for the fast path.
    The front's port is not `password`'s to check: it starts no pgbouncer."""
    from pathlib import Path

    from databricks.labs.oauth_rotator.app.preflight import preflight
    from databricks.labs.oauth_rotator.files.config_cache import remember
    from databricks.labs.oauth_rotator.files.config_store import effective_source

    config, source = effective_source(Path(config_path), {})
    preflight(config, environ=environ, port=False)
    if source is not None:
        remember(source, environ)
    return config, source


def refreshed_password(
    config_path: str,
    name: str | None,
    *,
    environ: Mapping[str, str],
    pin: bool = False,
    debug: bool = False,
    err: TextIO | None = None,
) -> str:
    """A forced rotation cycle of the one target (the preflight first), then its credential as written.

    One caller mints at a time: the others wait for the lock, then find the fresh credential on file. The cycle
    logs to the config's log file only: stderr is for `password`'s own one line.
    """
    from databricks.labs.oauth_rotator.files.writer import FileLock, make_private_directories

    summary = _read_in_full(config_path, environ)
    label = summary.pick(name)
    lock = paths.state_dir(environ) / LOCK_NAME
    make_private_directories(lock.parent)
    with FileLock(lock, timeout=_lock_wait_seconds()):
        found = credential_on_file(summary, label, environ=environ, now=time.time())
        if found is not None:  # minted by the caller we waited for
            return found.password
        failure = _rotate_one(config_path, label, environ=environ, pin=pin, debug=debug)
    now = time.time()
    if failure is None:  # just written: printed whatever its lifetime (the API decides that)
        found = credential_on_file(summary, label, environ=environ, now=now, left=0.0)
        if found is None:
            raise CredentialError(f"{label}: rotated, but its credential is not in .pgpass")
        return found.password
    found = credential_on_file(summary, label, environ=environ, now=now, left=MIN_LEFT_SECONDS)
    if found is None:
        raise failure
    from databricks.labs.oauth_rotator.text import human_duration

    print(
        f"warning: could not refresh {label} ({failure}); the credential on file is valid for "
        f"{human_duration(found.expires_at - now)} more",
        file=err if err is not None else sys.stderr,
    )
    return found.password


def _lock_wait_seconds() -> float:
    """Long enough for the caller ahead to finish its bounded mint."""
    from databricks.labs.oauth_rotator.deadlines import ONCE_DEADLINE_SECONDS

    return ONCE_DEADLINE_SECONDS + 10.0


def _rotate_one(
    config_path: str, label: str, *, environ: Mapping[str, str], pin: bool, debug: bool
) -> RotatorError | None:
    """A forced cycle of the one target under the one-shot deadline (the preflight first, again: the lock may have
    been waited for); its failure, if any."""
    from databricks.labs.oauth_rotator.app.rotate import build_cycle
    from databricks.labs.oauth_rotator.deadlines import ONCE_DEADLINE_SECONDS, run_with_deadline
    from databricks.labs.oauth_rotator.lakebase.workspace import pin_profile

    config, _ = _checked_config(config_path, environ)
    if pin:
        pin_profile(config.profile)
    _log_to_file(config, environ, debug=debug)
    cycle = build_cycle(config)
    report = run_with_deadline(lambda: cycle.run(force=True, only={label}), ONCE_DEADLINE_SECONDS, what="credential")
    return report.failed.get(label)


def _log_to_file(config: RotatorConfig, environ: Mapping[str, str], *, debug: bool) -> None:
    import logging

    from databricks.labs.oauth_rotator.files.logs import setup_logging
    from databricks.labs.oauth_rotator.paths import log_path_for

    setup_logging(log_path_for(config, environ), level=logging.DEBUG if debug else logging.INFO, to_stream=False)
