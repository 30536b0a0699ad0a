"""The checks of one setting's value, with errors that name the setting as its user spelled it: text, paths,
minutes, ports, database names, workspace URLs, commands, names written to `.pgpass` and terminals.

Split from the config's schema (`config.py`, which checks a whole config with these); the flags' parsers use them
one by one. Stdlib only.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from databricks.labs.oauth_rotator.errors import ConfigError

MAX_MINUTES = 24 * 60


class InvalidSetting(ConfigError):
    """A `ConfigError` about one setting, keyed as the config spells it (`interval_minutes`, `targets[0].port`).

    Every entry point runs the same checks and then names the setting as its user typed it (`--interval`,
    `rotation_interval`), so the checks cannot drift apart while each message still points at the right word.
    """

    def __init__(self, key: str, problem: str, *, fix: str | None = None) -> None:
        super().__init__(f"{key}: {problem}" if key else problem, fix=fix)
        self.key = key
        self.problem = problem

    def named(self, names: Mapping[str, str]) -> InvalidSetting:
        """The same error, its key replaced by the caller's name for it (unchanged when `names` has none)."""
        name = names.get(self.key)
        return self if name is None or name == self.key else InvalidSetting(name, self.problem, fix=self.fix)


@contextmanager
def named_as(names: Mapping[str, str] | None) -> Iterator[None]:
    """Re-raise an `InvalidSetting` from the checks inside with the setting named as in `names`."""
    try:
        yield
    except InvalidSetting as err:
        raise err.named(names or {}) from None


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_text(value: str | None, where: str) -> None:
    if value is None:
        return
    if not value or value != value.strip() or any(c in value for c in "\n\r\0"):
        raise InvalidSetting(where, f"must be non-empty, without surrounding spaces, line breaks or NUL: {show(value)}")
    if len(value) > 1024:
        raise InvalidSetting(where, "longer than 1024 characters")


def check_path_text(value: str | None, where: str) -> None:
    if value is None:
        return
    if not value.strip() or value != value.strip() or any(c in value for c in "\n\r\0"):
        raise InvalidSetting(where, f"not a path: {show(value)}")
    if len(value) > 1024:
        raise InvalidSetting(where, "longer than 1024 characters")


def check_minutes(value: float | None, where: str, *, minimum: float, maximum: float = MAX_MINUTES) -> None:
    if value is not None and not minimum <= value <= maximum:
        raise InvalidSetting(where, f"expected minutes between {minimum:g} and {maximum:g}, got {value!r}")


CREDENTIAL_TTL_MINUTES = (5, 60)
"""What `w.postgres.generate_database_credential` takes as `ttl`: 300 to 3600 seconds."""


def check_credential_ttl(value: float | None, where: str = "credential_ttl_minutes") -> None:
    """A credential lifetime the Lakebase API takes, in minutes."""
    check_minutes(value, where, minimum=CREDENTIAL_TTL_MINUTES[0], maximum=CREDENTIAL_TTL_MINUTES[1])


def check_port(value: int | None, where: str = "port") -> None:
    """A TCP port number, 1-65535."""
    if value is not None and not 1 <= value <= 65535:
        raise InvalidSetting(where, f"expected a port number 1-65535, got {value!r}")


def check_database_name(value: str | None, where: str = "database") -> None:
    """A database name (or `*`), not a connection string: psql would read `host=...` as connection settings."""
    if value is None:
        return
    check_name(value, where)
    if "=" in value or value.startswith(("postgresql://", "postgres://")):
        raise InvalidSetting(
            where,
            f"expected a database name, got a connection string: {show(value)}",
            fix="give just the name; host, port and user come from the config",
        )


def check_workspace_url(value: str | None, where: str = "workspace_url") -> None:
    if value is None:
        return
    parsed = urlparse(value)
    if parsed.scheme not in {"https", "http"} or not parsed.hostname or any(c.isspace() for c in value):
        raise InvalidSetting(where, f"not a workspace URL: {show(value)} (expected https://<workspace host>)")


def check_command(value: str | None, where: str = "exec_after") -> None:
    """A command line we can split like a shell would, and run without one."""
    if value is None:
        return
    check_text(value, where)
    try:
        words = shlex.split(value)
    except ValueError as err:
        raise InvalidSetting(where, f"cannot split {show(value)}: {err}") from err
    if not words:
        raise InvalidSetting(where, "empty command")


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Control characters (ESC and its terminal sequences, CR, ...) and bidirectional overrides: none belongs in a name
that is written to `.pgpass`, logs and terminals (`text.printable` escapes the same set)."""


def check_name(value: str | None, where: str, *, wildcard: bool = True) -> None:
    """A name we write to `.pgpass`, logs and terminals: text without control characters; without `wildcard`, also
    without `*` (a host or user of `*` is libpq's wildcard, and offers the credential to every server or role)."""
    if value is None:
        return
    check_text(value, where)
    if _CONTROL.search(value):
        raise InvalidSetting(where, f"must not contain control characters: {show(value)}")
    if not wildcard and "*" in value:
        raise InvalidSetting(where, f"must not contain `*` (libpq's wildcard): {show(value)}")
