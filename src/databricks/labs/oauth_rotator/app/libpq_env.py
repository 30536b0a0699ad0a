"""The libpq variables a child gets from us: where to connect, the sslmode, and the variables taken away.

One list for `psql`, `env` (`app/connect.py`) and `exec` (`app/exec_program.py`). libpq settings that would send the
connection elsewhere are taken away: `PGHOSTADDR` (libpq dials it instead of resolving the host) and `PGSERVICE` (a
service file's settings win over the `PG*` variables, `sslmode` included). An `sslmode` stronger than `require` in
the environment (`verify-ca`, `verify-full`) is kept. Standard library only: `exec` must not pay for the SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SSLMODE = "require"
STRONGER_SSLMODES = frozenset({"verify-ca", "verify-full"})
REDIRECTING = ("PGHOSTADDR", "PGSERVICE")
"""libpq variables that would connect somewhere other than the host we name, or override our sslmode."""


@dataclass(frozen=True)
class Connection:
    """Where a libpq client connects: never a password."""

    host: str
    port: int
    user: str
    database: str


def sslmode(environ: Mapping[str, str]) -> str:
    """`require`, or the environment's `verify-ca`/`verify-full`, which also check the server's certificate."""
    current = environ.get("PGSSLMODE", "").strip().lower()
    return current if current in STRONGER_SSLMODES else SSLMODE


def connection_variables(connection: Connection) -> dict[str, str]:
    """The `PG*` variables that name a connection, for a libpq child."""
    return {
        "PGHOST": connection.host,
        "PGPORT": str(connection.port),
        "PGUSER": connection.user,
        "PGDATABASE": connection.database,
    }


def without_redirection(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without the variables that would send a libpq client somewhere else (`REDIRECTING`)."""
    return {k: v for k, v in environ.items() if k not in REDIRECTING}
