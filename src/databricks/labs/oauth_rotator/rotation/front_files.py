"""The files of one cycle for the pgbouncer front: its ini (one `[databases]` entry per target, the credential from
the target's `.pgpass` line), its auth file (the local password), and `state/pgbouncer.json` for `status`.

A credential pgbouncer cannot take (too long for its version) never reaches its files: the entry it had stays, as
it was, while its credential lives, and the refusal says so; only then is the database removed.

Stdlib and our plain modules only (the scheduler imports this).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from databricks.labs.oauth_rotator.config import PgbouncerConfig, RotatorConfig
from databricks.labs.oauth_rotator.errors import RotatorError
from databricks.labs.oauth_rotator.files import pgbouncer_ini, pgpass, writer
from databricks.labs.oauth_rotator.files.pgservice import service_name
from databricks.labs.oauth_rotator.names import login_database
from databricks.labs.oauth_rotator.paths import front_file
from databricks.labs.oauth_rotator.rotation import front_folder
from databricks.labs.oauth_rotator.rotation.front_folder import FrontFiles, ServiceUser
from databricks.labs.oauth_rotator.rotation.state import Status, TargetState

logger = logging.getLogger(__name__)

SYSTEM_CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, Fedora
    "/etc/ssl/cert.pem",  # macOS, the BSDs
)
"""Where the system's CAs are, for `verify-full` without `server_tls_ca_file`: pgbouncer has no default of its own."""
_GENERATED = re.compile(r"^[A-Za-z0-9_-]{20,200}$")
"""What `secrets.token_urlsafe` makes: the only text a password file may hold to be copied into the auth file."""


@dataclass
class FrontUpdate:
    """What writing the front's files did."""

    changed: bool = False
    reloaded: int | None = None
    """The pid of the pgbouncer that was sent SIGHUP."""
    refused: dict[str, str] = field(default_factory=dict)
    """Targets whose new credential pgbouncer must not get (too long for it), and why."""
    databases: list[str] = field(default_factory=list)


def system_ca_file() -> str:
    """The system's CA bundle, or "" when none is found (pgbouncer then refuses the upstream login: fail closed)."""
    for candidate in (ssl.get_default_verify_paths().cafile, *SYSTEM_CA_BUNDLES):
        if candidate and os.path.isfile(candidate):
            return candidate
    return ""


def settings(front: PgbouncerConfig, files: FrontFiles, addresses: list[str]) -> pgbouncer_ini.Settings:
    """The `[pgbouncer]` section: `verify-full` against the system's CAs unless the block says otherwise."""
    sslmode = front.effective_sslmode
    ca_file = os.path.expanduser(front.server_tls_ca_file) if front.server_tls_ca_file else ""
    if sslmode == "verify-full" and not ca_file:
        ca_file = system_ca_file()
    return pgbouncer_ini.Settings(
        listen_address=",".join(addresses),
        listen_port=front.effective_listen_port,
        unix_socket_dir=os.path.expanduser(front.unix_socket_dir) if front.unix_socket_dir else "",
        auth_file=str(files.auth_file),
        pidfile=str(files.pidfile),
        logfile=str(files.logfile),
        server_tls_sslmode=sslmode,
        server_tls_ca_file=ca_file,
    )


def local_password(front: PgbouncerConfig, files: FrontFiles) -> str:
    """The password clients log in with: the configured one, else the one generated once into `password` (ours,
    0600; never the service user's, whose text must not reach the auth file root writes)."""
    if front.password:
        return front.password
    kept = (front_folder.read_own(files.password_file) or b"").decode("utf-8", "replace").strip()
    if _GENERATED.match(kept):
        return kept
    if kept:
        logger.warning(f"{files.password_file} did not hold a password oauth-rotator made: a new one replaces it")
    fresh = secrets.token_urlsafe(24)
    front_folder.write(files.password_file, (fresh + "\n").encode())
    return fresh


def write_cycle_files(
    config: RotatorConfig,
    files: FrontFiles,
    pgpass_data: bytes,
    status: Status,
    *,
    addresses: list[str],
    user: ServiceUser | None,
    version: tuple[int, int, int] | None,
    now: Callable[[], float] = time.time,
) -> FrontUpdate:
    """Prepare the folder, then write the ini and the auth file when their bytes change. `FileWriteError` or
    `ConfigError` when they cannot be written (the previous ones are untouched)."""
    front = config.front
    if front is None:
        return FrontUpdate()
    front_folder.prepare(files, user)
    update = FrontUpdate()
    previous = pgbouncer_ini.previous_entries(front_folder.read_own(files.ini, _uid(user)) or b"")
    entries = _entries(
        config, pgpass_data, status, version=version, refused=update.refused, previous=previous, now=now()
    )
    ini = pgbouncer_ini.render_ini(settings(front, files, addresses), entries)
    auth = pgbouncer_ini.render_auth_file({front.effective_user: local_password(front, files)})
    with writer.FileLock(files.folder / ".front.lock"):
        changed_auth = front_folder.write(files.auth_file, auth, user)
        changed_ini = front_folder.write(files.ini, ini, user)
    update.changed = changed_auth or changed_ini
    update.databases = sorted(e.name for e in entries)
    return update


def _uid(user: ServiceUser | None) -> int | None:
    return user.uid if user is not None else None


def _entries(
    config: RotatorConfig,
    pgpass_data: bytes,
    status: Status,
    *,
    version: tuple[int, int, int] | None,
    refused: dict[str, str],
    previous: Mapping[str, pgbouncer_ini.KeptEntry],
    now: float,
) -> list[pgbouncer_ini.Upstream | pgbouncer_ini.KeptEntry]:
    """A database entry per target with a credential on file that this pgbouncer can take; for one it cannot, the
    previous entry while it lives. `refused` gets why."""
    entries: list[pgbouncer_ini.Upstream | pgbouncer_ini.KeptEntry] = []
    for target in config.targets:
        upstream = _upstream(service_name(target.label), status.targets.get(target.label), pgpass_data)
        if upstream is None:
            continue
        name = upstream.name
        reason = pgbouncer_ini.too_long(upstream.password, version)
        if reason is None:
            entries.append(upstream)
            continue
        kept = previous.get(name)
        if kept is not None and kept.expires_at > now:
            entries.append(kept)
        refused[target.label] = f"{target.label}: not handed to pgbouncer: {reason}; {_what_remains(kept, now)}"
    return entries


def _upstream(name: str, known: TargetState | None, pgpass_data: bytes) -> pgbouncer_ini.Upstream | None:
    """The entry for the credential on the target's first `.pgpass` line (its primary host), if there is one."""
    keys = [tuple(k) for k in known.keys if len(k) == 4] if known is not None else []
    if known is None or not keys:
        return None
    host, port, database, user = keys[0]
    password = pgpass.lookup(pgpass_data, host, port, database, user)
    if not password:
        return None
    dbname = login_database(database)
    return pgbouncer_ini.Upstream(name, host, port, dbname, user, password, known.expires_at)


def _what_remains(kept: pgbouncer_ini.KeptEntry | None, now: float) -> str:
    if kept is None or kept.expires_at <= now:
        return "the front has no credential for it until one fits"
    until = datetime.fromtimestamp(kept.expires_at, tz=timezone.utc).strftime("%H:%M UTC")
    return f"the front keeps the previous credential until it expires at {until}"


def describe(front: PgbouncerConfig, files: FrontFiles, update: FrontUpdate, addresses: list[str]) -> None:
    """`state/pgbouncer.json` for `status` (which reads it without the config): how to connect, where the generated
    password is (by name: the password stays in its own 0600 file), and what was refused. The supervisor's keys
    (`process`) are kept."""
    record_state(
        {
            "address": front.effective_listen_address,
            "addresses": addresses,
            "port": front.effective_listen_port,
            "unix_socket_dir": front.unix_socket_dir,
            "user": front.effective_user,
            "databases": update.databases,
            "refused": update.refused,
            "password_file": None if front.password else str(files.password_file),
        }
    )


def record_state(values: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> None:
    """Merge `values` into `state/pgbouncer.json` under its lock (the worker and the scheduler both write it)."""

    def merge(old: bytes) -> bytes:
        try:
            current = json.loads(old) if old.strip() else {}
        except ValueError:
            current = {}
        merged = {**(current if isinstance(current, dict) else {}), **values}
        return (json.dumps(merged, indent=2, sort_keys=True) + "\n").encode()

    path = front_file(environ)
    try:
        writer.make_private_directories(path.parent)
        writer.update_file(path, merge)
    except RotatorError as err:
        logger.warning(f"Could not record the pgbouncer front's state for `status`: {err}")


def read_state(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`state/pgbouncer.json` as written (empty when missing or unreadable)."""
    try:
        data = json.loads(Path(front_file(environ)).read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
