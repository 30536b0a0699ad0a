"""`exec`: run a program with a fresh credential for one target, as Vault Agent's process supervisor runs one.

Before the program starts, the target's credential must outlive the margin: read from the scheduler's password
file, else minted as `password` mints it (`app/password.py`'s `current_credential`, the one function for both). A
credential that cannot be had stops here, with one line and exit 1: the program never starts without one.

The program then runs without a shell (`app/run_program.py`) with the caller's environment plus `PGHOST`, `PGPORT`,
`PGDATABASE`, `PGUSER`, `PGSSLMODE=require` and `PGPASSFILE`, which names the file the configured scheduler writes
(whatever `PGPASSFILE` the caller had). While it runs, that file is kept fresh every minute by the same function,
whether or not the scheduler runs, so every new connection the program opens logs in. `PGPASSWORD` is taken away:
libpq would send it instead of reading the file. `--env-password` hands the credential over in `PGPASSWORD` (and
names the connection in `DATABASE_URL`, without the password) for programs that read nothing else; that copy
cannot be renewed, so stderr says once when the program outlives it. The libpq variables that would send the
connection elsewhere (`PGHOSTADDR`, `PGSERVICE`) are taken away (`app/libpq_env.py`, as for `psql`).

No credential is ever on the command line, in a log or in an error message; the SDK is imported only to mint.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO
from urllib.parse import quote

from databricks.labs.oauth_rotator.app.libpq_env import Connection, connection_variables, sslmode, without_redirection
from databricks.labs.oauth_rotator.app.password import OnFile, config_summary, current_credential
from databricks.labs.oauth_rotator.app.password_file import read_status, scheduler_pgpass_file
from databricks.labs.oauth_rotator.app.password_pick import recorded_keys
from databricks.labs.oauth_rotator.app.run_program import ProgramRun
from databricks.labs.oauth_rotator.errors import ConfigError, CredentialError
from databricks.labs.oauth_rotator.names import login_database

HANDED = ("PGPASSWORD", "DATABASE_URL")
"""What `--env-password` hands over; without it, a `PGPASSWORD` of the caller's would shadow the file."""

Runner = Callable[..., ProgramRun]


def exec_program(  # pylint: disable=too-many-arguments  # the command's flags, and what tests pass in
    config_path: str,
    argv: Sequence[str],
    *,
    name: str | None = None,
    env_password: bool = False,
    debug: bool = False,
    environ: Mapping[str, str] | None = None,
    err: TextIO | None = None,
    runner: Runner = ProgramRun,
) -> int:
    """Make sure target `name` (the first without one) has a fresh credential, then run `argv` with it in its
    environment, keeping it fresh while it runs; the program's exit code (128 + N when signal N ended it)."""
    if not argv or not argv[0]:
        raise ConfigError("exec: give the program to run after --, e.g. `exec -- psql -w`")
    environ = os.environ if environ is None else environ
    label, found = current_credential(config_path, name, environ=environ, debug=debug, err=err)
    targets, recorded = read_status(environ)
    connection = connection_of(label, targets.get(label))
    pgpassfile = scheduler_pgpass_file(config_summary(config_path, environ).pgpass_file, environ, recorded)
    env = program_environ(environ, connection, pgpassfile, password=found.password if env_password else None)

    refresh = Refresher(
        lambda said: current_credential(config_path, label, environ=environ, debug=debug, err=said)[1], err
    )
    run = runner(argv, env, refresh, handed_expiry=found.expires_at if env_password else None, err=err)
    return run.run()


class Refresher:
    """The credential kept fresh while the program runs: its expiry each minute. A refresh that fails while the
    credential on file is still valid says so once on stderr, not every minute of a long job."""

    def __init__(self, fetch: Callable[[TextIO], OnFile], err: TextIO | None = None) -> None:
        self._fetch = fetch
        self._err = err
        self._warned = False

    def __call__(self) -> float:
        said = io.StringIO()
        found = self._fetch(said)
        if said.getvalue() and not self._warned:
            (self._err if self._err is not None else sys.stderr).write(said.getvalue())
        self._warned = bool(said.getvalue())
        return found.expires_at


def connection_of(label: str, target: object) -> Connection:
    """Where the program connects: the first `.pgpass` line the last rotation wrote for the target (its
    read-write host), the database `databricks_postgres` when that line serves any."""
    keys = recorded_keys(target) if isinstance(target, dict) else []
    if not keys:
        raise CredentialError(f"{label}: status.json records no host for it; run `databricks-oauth-rotator --once`")
    host, port, database, user = keys[0]
    if not port.isdigit():
        raise CredentialError(f"{label}: status.json records port {port!r}, not a number")
    return Connection(host, int(port), user, login_database(database))


def program_environ(
    environ: Mapping[str, str], connection: Connection, pgpassfile: str, *, password: str | None = None
) -> dict[str, str]:
    """The program's environment: the caller's, without what would redirect libpq or shadow the password file,
    plus the connection, the sslmode and `PGPASSFILE`; with `password`, also `PGPASSWORD` and `DATABASE_URL`."""
    env = {k: v for k, v in without_redirection(environ).items() if k not in HANDED}
    env.update(connection_variables(connection))
    env["PGSSLMODE"] = sslmode(environ)
    env["PGPASSFILE"] = pgpassfile
    if password is not None:
        env["PGPASSWORD"] = password
        env["DATABASE_URL"] = database_url(connection, env["PGSSLMODE"])
    return env


def database_url(connection: Connection, mode: str) -> str:
    """`postgresql://USER@HOST:PORT/DB?sslmode=...`: the user and database percent-encoded (an email's `@`), never
    the password, which the program reads from `PGPASSWORD` (libpq and most drivers do when the URL has none)."""
    user = quote(connection.user, safe="")
    database = quote(connection.database, safe="")
    return f"postgresql://{user}@{connection.host}:{connection.port}/{database}?sslmode={mode}"
