"""pgbouncer's files for the local front: `pgbouncer.ini` (settings and one `[databases]` entry per target, the
upstream credential as its `password=`) and the `auth_file` of the local users clients log in as.

Pure (no I/O), stdlib only. Quoting follows pgbouncer's own parsers: a `[databases]` value is a libpq-style
connection string whose values may be single-quoted, a quote inside doubled (`cstr_get_value` in its loader.c);
an `auth_file` line is `"user" "secret"`, a double quote inside doubled. Nothing that would break a line (a line
break, a NUL) is ever written: such a value is refused.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from databricks.labs.oauth_rotator.errors import PgpassFormatError

HEADER = b"; written by oauth-rotator: edits are overwritten at the next rotation\n"
LONG_PASSWORDS_SINCE = (1, 26)
"""The first pgbouncer release taking upstream passwords up to 65,535 bytes (pull request #1310, merged 2026-07)."""
_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")
_EXPIRY = re.compile(rb"^; ([A-Za-z0-9_.@-]+) expires_at=(\d+)\r?\n$")
_VERSION = re.compile(r"PgBouncer(?:\s+version)?\s+(\d+)\.(\d+)(?:\.(\d+))?", re.IGNORECASE)


@dataclass(frozen=True)
class Upstream:
    """One `[databases]` entry: the name clients connect to, and the Lakebase database pgbouncer logs in to."""

    name: str
    host: str
    port: str
    dbname: str
    user: str
    password: str = ""
    expires_at: float | None = None
    """When the credential dies: written beside the entry, so that a later cycle may keep it while it lives."""

    def __repr__(self) -> str:  # never the credential, whatever prints this
        return f"Upstream(name={self.name!r}, host={self.host!r}, port={self.port!r}, user={self.user!r})"

    def render(self) -> bytes:
        if not _NAME.match(self.name):
            raise PgpassFormatError(f"pgbouncer database name {self.name!r}: letters, digits, _ . @ - only")
        pairs = [("host", self.host), ("port", self.port), ("dbname", self.dbname), ("user", self.user)]
        if self.password:
            pairs.append(("password", self.password))
        text = " ".join(f"{key}={quote_value(value, key, self.name)}" for key, value in pairs)
        expiry = f"; {self.name} expires_at={int(self.expires_at)}\n" if self.expires_at is not None else ""
        return f"{expiry}{self.name} = {text}\n".encode()


@dataclass(frozen=True)
class KeptEntry:
    """A `[databases]` entry of the previous ini, kept as it was (its credential still lives, a new one could not
    be handed over): its bytes, comment included."""

    name: str
    text: bytes
    expires_at: float

    def __repr__(self) -> str:  # never the credential
        return f"KeptEntry(name={self.name!r}, expires_at={self.expires_at!r})"

    def render(self) -> bytes:
        return self.text


def previous_entries(ini: bytes) -> dict[str, KeptEntry]:
    """The entries of an ini we wrote that carry their expiry, by database name (pure: no I/O)."""
    kept: dict[str, KeptEntry] = {}
    lines = ini.splitlines(keepends=True)
    for comment, entry in itertools.pairwise(lines):
        match = _EXPIRY.match(comment)
        if match is not None and entry.startswith(match.group(1) + b" = "):
            name = match.group(1).decode("ascii")
            kept[name] = KeptEntry(name, comment + entry, float(match.group(2)))
    return kept


@dataclass(frozen=True)
class Settings:
    """The `[pgbouncer]` section: where it listens, how clients log in, how it reaches Lakebase, its own files."""

    listen_address: str
    """One address, or several joined by commas (both loopbacks: `127.0.0.1,::1`)."""
    listen_port: int
    unix_socket_dir: str
    """Empty: no unix socket (pgbouncer's default is /tmp)."""
    auth_file: str
    pidfile: str
    logfile: str
    server_tls_sslmode: str = "verify-full"
    server_tls_ca_file: str = ""
    server_idle_timeout: int = 60
    """Seconds an idle server connection is kept: well under a scale-to-zero endpoint's shortest suspend (5 min)."""

    def render(self) -> bytes:
        pairs = [
            ("listen_addr", self.listen_address),
            ("listen_port", str(self.listen_port)),
            ("unix_socket_dir", self.unix_socket_dir),
            ("auth_type", "scram-sha-256"),
            ("auth_file", self.auth_file),
            ("pidfile", self.pidfile),
            ("logfile", self.logfile),
            ("pool_mode", "session"),
            ("server_tls_sslmode", self.server_tls_sslmode),
            *([("server_tls_ca_file", self.server_tls_ca_file)] if self.server_tls_ca_file else []),
            # No connection is opened ahead of a client, and none kept long: an idle endpoint may scale to zero.
            ("min_pool_size", "0"),
            ("server_idle_timeout", str(self.server_idle_timeout)),
            # JDBC drivers (DBeaver, DataGrip, Tableau) send this at startup; pgbouncer would refuse the login.
            ("ignore_startup_parameters", "extra_float_digits"),
        ]
        for key, value in pairs:
            _require_one_line(value, key)
        return b"".join(f"{key} = {value}\n".encode() for key, value in pairs)


def quote_value(value: str, key: str = "value", name: str = "") -> str:
    """A connection-string value as pgbouncer reads it: single-quoted, a single quote inside doubled."""
    _require_one_line(value, f"{name}.{key}" if name else key)
    if not value:
        raise PgpassFormatError(f"pgbouncer cannot hold an empty {key} for {name or 'an entry'}")
    return "'" + value.replace("'", "''") + "'"


def render_ini(settings: Settings, upstreams: Sequence[Upstream | KeptEntry]) -> bytes:
    """The whole `pgbouncer.ini`: a header, `[databases]` (sorted by name, one line each), then `[pgbouncer]`."""
    names = [u.name for u in upstreams]
    if len(set(names)) != len(names):
        raise PgpassFormatError(f"two pgbouncer databases share a name: {sorted(names)}")
    entries = b"".join(u.render() for u in sorted(upstreams, key=lambda u: u.name))
    return HEADER + b"\n[databases]\n" + entries + b"\n[pgbouncer]\n" + settings.render()


def render_auth_file(users: Mapping[str, str]) -> bytes:
    """`"user" "password"` lines, sorted by user: the local passwords clients log in with.

    Plaintext, not SCRAM verifiers: given a verifier, pgbouncer 1.18 logs in upstream with the client's own SCRAM
    keys (pass-through) instead of the entry's `password=`, and the Lakebase login fails. The file is 0600.
    """
    lines = []
    for user in sorted(users):
        secret = users[user]
        _require_one_line(user, "auth_file user")
        _require_one_line(secret, f"auth_file secret of {user}")
        lines.append(f'"{_double_quotes(user)}" "{_double_quotes(secret)}"\n')
    return "".join(lines).encode()


def parse_version(text: str) -> tuple[int, int, int] | None:
    """`(1, 18, 0)` from what `pgbouncer --version` prints (`PgBouncer 1.18.0`), else None."""
    match = _VERSION.search(text)
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def password_limit(version: tuple[int, int, int] | None) -> int:
    """The longest upstream password (bytes) this pgbouncer takes: 1,024 before `LONG_PASSWORDS_SINCE` (1.18 crashes
    on a longer one, at the server login), 65,535 after. An unknown version gets the safe, smaller limit."""
    if version is not None and version[:2] >= LONG_PASSWORDS_SINCE:
        return 65_535
    return 1_024


def too_long(password: str, version: tuple[int, int, int] | None) -> str | None:
    """Why pgbouncer must not be handed `password` (one line naming the lengths and the version needed), or None."""
    size, limit = len(password.encode("utf-8")), password_limit(version)
    if size <= limit:
        return None
    named = "this pgbouncer" if version is None else f"pgbouncer {_dotted(version)}"
    wanted = _dotted(LONG_PASSWORDS_SINCE)
    return (
        f"the credential is {size} bytes, but {named} takes upstream passwords of at most {limit} bytes "
        f"(a longer one crashes it): pgbouncer {wanted} or later takes up to 65535"
    )


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def _double_quotes(value: str) -> str:
    return value.replace('"', '""')


def _require_one_line(value: str, what: str) -> None:
    if any(c in value for c in "\r\n\0"):
        raise PgpassFormatError(f"pgbouncer cannot hold {what}: it contains a line break or NUL")
