"""Which configured target a password client means: `--target NAME`, else the connection it is about to open
(`--host H [--port P] [--user U] [--database D]`), else what pgAdmin says in its `PGADMIN_PASSEXEC_*` variables.

A connection is matched against each target's `.pgpass` keys as libpq matches a line: every field compared as
text, `*` matching anything (libpq's `passwordFromFile`). The keys are the ones the last rotation recorded in
`status.json`, and, for a target not rotated yet, the hosts its config names (a target that names none is matched
once it was rotated). Exactly one target must match: none, or two, is bad usage (exit 2) that names the candidates,
never a guess that hands out another database's credential.

Part of `password`'s fast path: plain classes, no `typing`, no `dataclasses`, no `re`.
"""

from __future__ import annotations

from databricks.labs.oauth_rotator.errors import ConfigError

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs a fifth of Python's start-up
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

PGADMIN_VARIABLES = (
    ("host", "PGADMIN_PASSEXEC_HOST"),
    ("port", "PGADMIN_PASSEXEC_PORT"),
    ("user", "PGADMIN_PASSEXEC_USERNAME"),
    ("database", "PGADMIN_PASSEXEC_DATABASE"),
)
"""What pgAdmin (server mode, from its release with `SERVER_PASSEXEC_COMMANDS`) tells the command it runs."""
DEFAULT_PORT = "5432"
ANY = "*"

Key = tuple[str, str, str, "str | None"]
"""(host, port, database, user) as `.pgpass` fields; a None user: the config leaves it to the login."""


class Wanted:
    """The connection a client is about to open: a host, and what else it knows (None: not given)."""

    __slots__ = ("database", "host", "origin", "port", "user")

    def __init__(
        self,
        host: str,
        port: str | None = None,
        user: str | None = None,
        database: str | None = None,
        *,
        origin: str = "--host",
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self.origin = origin
        """Where it came from, for messages: `--host` or `PGADMIN_PASSEXEC_HOST`."""

    def matches(self, key: Key) -> bool:
        """Whether a `.pgpass` line with this key would be the one libpq uses for this connection."""
        host, port, database, user = key
        return (
            _field(host, self.host)
            and (self.port is None or _field(port, self.port))
            and (self.database is None or _field(database, self.database))
            and (self.user is None or user is None or _field(user, self.user))
        )

    def describe(self) -> str:
        given = [f"host {self.host}"]
        given += [f"{what} {value}" for what, value in (("port", self.port), ("user", self.user)) if value]
        given += [f"database {self.database}"] if self.database else []
        return ", ".join(given)


def _field(line_field: str, value: str) -> bool:
    return line_field in (ANY, value)


def wanted_from(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> Wanted | None:
    """The connection the flags name (`host`, `port`, `user`, `database`), else pgAdmin's variables when `target`
    is not given either; None when neither says anything. Bad usage (a port without a host, `--target` with
    `--host`, a port that is not one) is a `ConfigError`."""
    given = {name: flags.get(name) or None for name in ("host", "port", "user", "database")}
    if flags.get("target") and any(given.values()):
        flag = next(name for name, value in given.items() if value)
        raise ConfigError(f"give --target or --{flag}, not both")
    if given["host"] is None:
        extra = next((name for name, value in given.items() if value), None)
        if extra is not None:
            raise ConfigError(f"--{extra} needs --host")
        if flags.get("target"):
            return None
        return _from_pgadmin(environ)
    _check_port(given["port"], "--port")
    return Wanted(given["host"], given["port"], given["user"], given["database"])


def _from_pgadmin(environ: Mapping[str, str]) -> Wanted | None:
    values = {name: environ.get(variable) or None for name, variable in PGADMIN_VARIABLES}
    if values["host"] is None:
        return None
    _check_port(values["port"], "PGADMIN_PASSEXEC_PORT")
    return Wanted(values["host"], values["port"], values["user"], values["database"], origin="PGADMIN_PASSEXEC_HOST")


def _check_port(port: str | None, where: str) -> None:
    if port is not None and not (port.isdigit() and port.isascii() and 1 <= int(port) <= 65535):
        raise ConfigError(f"{where}: expected a port number 1-65535, got {port!r}")


def declared_keys(target: Mapping[str, Any]) -> list[Key]:
    """The `.pgpass` keys a config target names before any rotation: its `host` and `extra_hosts` (a target that
    names no host is known by the keys its rotation records)."""
    hosts = [target.get("host"), *(target.get("extra_hosts") or [])]
    port = target.get("port")
    shown_port = str(port) if isinstance(port, int) and not isinstance(port, bool) else DEFAULT_PORT
    database = target.get("database")
    shown_database = database if isinstance(database, str) else ANY
    user = target.get("user")
    shown_user = user if isinstance(user, str) else None
    return [(host, shown_port, shown_database, shown_user) for host in hosts if isinstance(host, str) and host]


def recorded_keys(target: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """The `.pgpass` keys `status.json` records for a target (malformed entries of a hand-edited file skipped)."""
    keys = target.get("keys")
    if not isinstance(keys, list):
        return []
    found: list[tuple[str, str, str, str]] = []
    for key in keys:
        if isinstance(key, list) and len(key) == 4 and all(isinstance(v, str) for v in key):
            found.append((key[0], key[1], key[2], key[3]))
    return found


def pick_label(
    labels: list[str],
    wanted: Wanted,
    *,
    declared: Mapping[str, list[Key]],
    recorded: Mapping[str, Any],
) -> str:
    """The one target whose keys (recorded, else declared) `wanted` matches; else a `ConfigError` naming them."""
    keys = {label: _keys_of(label, declared, recorded) for label in labels}
    matching = [label for label in labels if any(wanted.matches(key) for key in keys[label])]
    if len(matching) == 1:
        return matching[0]
    if matching:
        raise ConfigError(
            f"{wanted.describe()} ({wanted.origin}) matches {len(matching)} targets: {_candidates(matching, keys)}; "
            "give --user, --port or --database to tell them apart, or --target NAME"
        )
    unknown = [label for label in labels if not keys[label]]
    raise ConfigError(
        f"no configured target serves {wanted.describe()} ({wanted.origin}); configured: {_candidates(labels, keys)}"
        + (
            "; the hosts of a target are known once it was rotated (`databricks-oauth-rotator --once`)"
            if unknown
            else ""
        )
    )


def _keys_of(label: str, declared: Mapping[str, list[Key]], recorded: Mapping[str, Any]) -> list[Key]:
    target = recorded.get(label)
    keys: list[Key] = list(recorded_keys(target)) if isinstance(target, dict) else []
    return keys or list(declared.get(label, []))


def _candidates(labels: list[str], keys: Mapping[str, list[Key]]) -> str:
    return "; ".join(
        f"{label} ({', '.join(_show(key) for key in keys[label]) or 'not rotated yet'})" for label in labels
    )


def _show(key: Key) -> str:
    host, port, database, user = key
    where = f"{host}:{port}" + ("" if database == ANY else f"/{database}")
    return f"{user or '(login)'}@{where}"
