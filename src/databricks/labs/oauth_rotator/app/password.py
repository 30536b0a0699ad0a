"""`password`: the current credential of one target, for clients that run a command for their password (pgAdmin's
password exec command, DBeaver's and Postico's pre-connect commands, node-postgres's `password` callback).

Such clients run it on every new connection, so it answers from the files whenever it can, with the light tier's
functions (the same ones every command uses): the config's trust (`trust.py`, as `--once` checks it), its
settings from the cache the full path keeps (`files/config_cache.py`: no PyYAML), `status.json` (read as `status`
reads it) and `.pgpass` (after the same trust check as the rotation's): the file the configured scheduler writes,
never the caller's `PGPASSFILE` (`app/password_file.py`). The target is the one named, else the one whose lines
serve the connection the client opens (`app/password_pick.py`: `--host`, or pgAdmin's variables).

The line written for the target that holds the credential `status.json` records (by its fingerprint) is printed
while that credential has more than the margin left, the margin capped at a share of its life as the scheduler
caps it (`names.capped_margin`): a few milliseconds, no SDK, no network. A line holding someone else's credential
(a concurrent rotator's, a pasted one) is read as libpq reads it and judged by its JWT expiry.

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
from databricks.labs.oauth_rotator.app.password_file import (
    OnFile,
    libpq_credential,
    read_status,
    recorded_credential,
    scheduler_pgpass_file,
)
from databricks.labs.oauth_rotator.app.password_pick import declared_keys, pick_label
from databricks.labs.oauth_rotator.errors import ConfigError, CredentialError, RotatorError
from databricks.labs.oauth_rotator.files.config_cache import cached_settings
from databricks.labs.oauth_rotator.names import DEFAULT_MARGIN_MINUTES, target_label
from databricks.labs.oauth_rotator.trust import trusted_path

__all__ = [
    "ConfigSummary",
    "OnFile",
    "config_summary",
    "credential_on_file",
    "current_credential",
    "libpq_credential",
    "recorded_credential",
    "refreshed_credential",
    "summary_of",
]

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs a fifth of Python's start-up
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, TextIO

    from databricks.labs.oauth_rotator.app.password_pick import Key, Wanted
    from databricks.labs.oauth_rotator.config import RotatorConfig

MIN_LEFT_SECONDS = 60.0
"""A credential on file with less life than this is never printed: the client logs in with it after we exit."""
LOCK_NAME = "password.lock"
"""In the state folder: held while one `password` mints, so that the others wait and read what it wrote."""


class ConfigSummary:
    """What `password` needs from the config: the target labels in order, the hosts each names (`declared`), the
    margin and the `.pgpass` setting."""

    __slots__ = ("declared", "labels", "margin_seconds", "pgpass_file")

    def __init__(
        self,
        labels: list[str],
        margin_seconds: float,
        pgpass_file: str | None,
        declared: dict[str, list[Key]] | None = None,
    ) -> None:
        self.labels = labels
        self.margin_seconds = margin_seconds
        self.pgpass_file = pgpass_file
        self.declared = declared or {}

    def pick(self, name: str | None) -> str:
        """The label of the target called `name`, else the first: as `rotate.pick_target` picks (same error)."""
        if not name:
            return self.labels[0]
        if name not in self.labels:
            raise ConfigError(f"no target named {name!r} (configured: {', '.join(self.labels)})")
        return name

    def choose(self, name: str | None, wanted: Wanted | None, recorded: Mapping[str, Any]) -> str:
        """The target a client means: by `name`, else the one that serves the connection it `wanted`."""
        if wanted is None:
            return self.pick(name)
        return pick_label(self.labels, wanted, declared=self.declared, recorded=recorded)


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
    declared = {label: declared_keys(target) for label, target in zip(labels, raw["targets"], strict=True)}
    return ConfigSummary(labels, float(margin) * 60, pgpass_file, declared)


def _labels(targets: Any) -> list[str] | None:
    """Each target's label (`names.target_label`), in order."""
    if not isinstance(targets, list) or not all(isinstance(target, dict) for target in targets):
        return None
    fields = [[t.get(k) for k in ("name", "instance", "endpoint", "host")] for t in targets]
    if not all(any(fields_of) and all(v is None or isinstance(v, str) for v in fields_of) for fields_of in fields):
        return None  # a target with no name to show, or a name that is not text: the full reader says what is wrong
    return [target_label(*fields_of) for fields_of in fields]


# ---- the credential on file ------------------------------------------------------------------------------------


def credential_on_file(
    summary: ConfigSummary,
    label: str,
    *,
    environ: Mapping[str, str],
    now: float,
    left: float | None = None,
    status: tuple[dict[str, Any], str | None] | None = None,
) -> OnFile | None:
    """The target's credential in the scheduler's `.pgpass`, when it has more than `left` seconds to live (None:
    the margin, capped by the credential's life). `.pgpass` and `status.json` must pass the trust rule first, as
    for `--once`; `status`: what `read_status` returned, when the caller read it already."""
    targets, recorded = status if status is not None else read_status(environ)
    pgpass_path = scheduler_pgpass_file(summary.pgpass_file, environ, recorded)
    trusted_path(pgpass_path, for_write=True, environ=environ)
    target = targets.get(label)
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


def current_credential(
    config_path: str,
    name: str | None = None,
    *,
    wanted: Wanted | None = None,
    environ: Mapping[str, str] | None = None,
    now: float | None = None,
    pin: bool = False,
    debug: bool = False,
    err: TextIO | None = None,
) -> tuple[str, OnFile]:
    """The label of the target a client means and the credential to log in to it with (`password` prints its
    `.password`, `exec` also needs its expiry).

    The target is `name` (the first without one), or the one that serves `wanted`, the connection a client is about
    to open. The credential is the one on file while it has more than the margin left; else minted now by a forced
    cycle of that target (bounded by `ONCE_DEADLINE_SECONDS`; `pin` makes the config's profile decide the login, as
    the labs commands do), which writes it to `.pgpass` too. A config or file that fails the trust rule, or bad
    usage, is a `ConfigError` (exit 2); a failed refresh with nothing usable on file a `CredentialError` (or the
    cycle's own).
    """
    environ = os.environ if environ is None else environ
    now = time.time() if now is None else now
    summary = config_summary(config_path, environ)
    status = read_status(environ)
    label = summary.choose(name, wanted, status[0])
    found = credential_on_file(summary, label, environ=environ, now=now, status=status)
    if found is not None:
        return label, found
    return label, refreshed_credential(config_path, label, environ=environ, pin=pin, debug=debug, err=err)


def config_summary(config_path: str, environ: Mapping[str, str]) -> ConfigSummary:
    """The config's summary: checked by the trust rule before a byte of it is read, as `--once` checks it; then from
    the cache while it holds this very file, else read in full (and through the preflight)."""
    trusted_path(config_path, for_write=False, environ=environ)
    summary = summary_of(cached_settings(config_path, environ))
    return summary if summary is not None else _read_in_full(config_path, environ)


def _read_in_full(config_path: str, environ: Mapping[str, str]) -> ConfigSummary:
    """The config read with PyYAML and put through the preflight, then remembered for the next call."""
    config, _ = _checked_config(config_path, environ)
    declared = {
        t.label: declared_keys(
            {"host": t.host, "extra_hosts": t.extra_hosts, "port": t.port, "database": t.database, "user": t.user}
        )
        for t in config.targets
    }
    return ConfigSummary(
        [t.label for t in config.targets], config.effective_margin_minutes * 60, config.pgpass_file, declared
    )


def _checked_config(
    config_path: str, environ: Mapping[str, str], pgpass_file: str | None = None
) -> tuple[RotatorConfig, Any]:
    """The config, after the preflight that every entry point runs; its source is remembered for the fast path.
    `pgpass_file`: the scheduler's file (`scheduler_pgpass_file`), which the config then names, so that a cycle run
    here writes there and not to the caller's `PGPASSFILE`. The front's port is not `password`'s to check: it
    starts no pgbouncer."""
    import dataclasses
    from pathlib import Path

    from databricks.labs.oauth_rotator.app.preflight import preflight
    from databricks.labs.oauth_rotator.files.config_cache import remember
    from databricks.labs.oauth_rotator.files.config_store import effective_source

    config, source = effective_source(Path(config_path), {})
    if pgpass_file is not None and not config.pgpass_file:
        config = dataclasses.replace(config, pgpass_file=pgpass_file)
    preflight(config, environ=environ, port=False)
    if source is not None:
        remember(source, environ)
    return config, source


def refreshed_credential(
    config_path: str,
    label: str,
    *,
    environ: Mapping[str, str],
    pin: bool = False,
    debug: bool = False,
    err: TextIO | None = None,
) -> OnFile:
    """A forced rotation cycle of the one target (the preflight first), then its credential as written.

    One caller mints at a time: the others wait for the lock, then find the fresh credential on file. The cycle
    logs to the config's log file only: stderr is for `password`'s own one line.
    """
    from databricks.labs.oauth_rotator.files.writer import FileLock, make_private_directories

    summary = _read_in_full(config_path, environ)
    label = summary.pick(label)
    lock = paths.state_dir(environ) / LOCK_NAME
    make_private_directories(lock.parent)
    with FileLock(lock, timeout=_lock_wait_seconds()):
        status = read_status(environ)
        found = credential_on_file(summary, label, environ=environ, now=time.time(), status=status)
        if found is not None:  # minted by the caller we waited for
            return found
        pgpass_file = scheduler_pgpass_file(summary.pgpass_file, environ, status[1])
        failure = _rotate_one(config_path, label, environ=environ, pgpass_file=pgpass_file, pin=pin, debug=debug)
    now = time.time()
    if failure is None:  # just written: printed whatever its lifetime (the API decides that)
        found = credential_on_file(summary, label, environ=environ, now=now, left=0.0)
        if found is None:
            raise CredentialError(f"{label}: rotated, but its credential is not in .pgpass")
        return found
    found = credential_on_file(summary, label, environ=environ, now=now, left=MIN_LEFT_SECONDS)
    if found is None:
        raise failure
    from databricks.labs.oauth_rotator.text import human_duration

    print(
        f"warning: could not refresh {label} ({failure}); the credential on file is valid for "
        f"{human_duration(found.expires_at - now)} more",
        file=err if err is not None else sys.stderr,
    )
    return found


def _lock_wait_seconds() -> float:
    """Long enough for the caller ahead to finish its bounded mint."""
    from databricks.labs.oauth_rotator.deadlines import ONCE_DEADLINE_SECONDS

    return ONCE_DEADLINE_SECONDS + 10.0


def _rotate_one(  # pylint: disable=too-many-arguments  # where to write is decided by the caller, under the lock
    config_path: str, label: str, *, environ: Mapping[str, str], pgpass_file: str, pin: bool, debug: bool
) -> RotatorError | None:
    """A forced cycle of the one target under the one-shot deadline (the preflight first, again: the lock may have
    been waited for); its failure, if any, the deadline's included, so that the caller can fall back to the
    credential on file."""
    from databricks.labs.oauth_rotator.app.rotate import build_cycle
    from databricks.labs.oauth_rotator.deadlines import ONCE_DEADLINE_SECONDS, run_with_deadline
    from databricks.labs.oauth_rotator.lakebase.workspace import pin_profile

    config, _ = _checked_config(config_path, environ, pgpass_file)
    if pin:
        pin_profile(config.profile)
    _log_to_file(config, environ, debug=debug)
    cycle = build_cycle(config)
    try:
        report = run_with_deadline(
            lambda: cycle.run(force=True, only={label}), ONCE_DEADLINE_SECONDS, what="credential"
        )
    except CredentialError as gave_up:  # a workspace that does not answer in time is a failed refresh like any other
        return gave_up
    return report.failed.get(label)


def _log_to_file(config: RotatorConfig, environ: Mapping[str, str], *, debug: bool) -> None:
    import logging

    from databricks.labs.oauth_rotator.files.logs import setup_logging
    from databricks.labs.oauth_rotator.paths import log_path_for

    setup_logging(log_path_for(config, environ), level=logging.DEBUG if debug else logging.INFO, to_stream=False)
