"""One-shot helpers: `psql` with a fresh credential, and `env`, export lines for a shell's `eval`.

Neither writes `.pgpass`. `psql` hands the credential to psql in its environment only (`PGPASSWORD`), never on
its command line, which any user can read with `ps`; nothing here prints or logs it. `env` prints only shell
lines on stdout, so `eval "$(databricks labs oauth-rotator env)"` is safe; warnings go to stderr.

libpq settings that would send the connection elsewhere are taken away, and an `sslmode` stronger than `require`
is kept, as `app/libpq_env.py` says (`exec` shares it).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.app.libpq_env import (
    REDIRECTING,
    SSLMODE,
    STRONGER_SSLMODES,
    Connection,
    connection_variables,
    sslmode,
    without_redirection,
)
from databricks.labs.oauth_rotator.app.rotate import default_state_store, fresh_credential, pgpass_path_for, pick_target
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig, check_database_name
from databricks.labs.oauth_rotator.deadlines import ONCE_DEADLINE_SECONDS, run_with_deadline
from databricks.labs.oauth_rotator.errors import ConfigError, CredentialError, RotatorError
from databricks.labs.oauth_rotator.lakebase.credentials import Credential
from databricks.labs.oauth_rotator.lakebase.targets import resolve_source
from databricks.labs.oauth_rotator.lakebase.workspace import build_workspace_client, current_user_name
from databricks.labs.oauth_rotator.names import login_database
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status
from databricks.labs.oauth_rotator.secrets import without_secrets

logger = logging.getLogger(__name__)

__all__ = [
    "REDIRECTING",
    "SSLMODE",
    "STRONGER_SSLMODES",
    "Connection",
    "ProgramError",
    "connection_variables",
    "env_lines",
    "export_lines",
    "open_psql",
    "psql_argv",
    "psql_environ",
    "sslmode",
]

Mint = Callable[[RotatorConfig, str | None], tuple[TargetConfig, Credential]]
"""Mints a credential for the target of that name (else the first): `rotator.fresh_credential`."""
LookUp = Callable[[RotatorConfig, TargetConfig], tuple[str, str]]
"""The (host, user) of a target without minting a credential."""
Exec = Callable[[str, list[str], dict[str, str]], object]
"""Runs a program in place of this process: `(path, argv, environment)`. Tests inject one that records."""


class ProgramError(RotatorError):
    """psql is missing or cannot be started (exit 2, as `databricks psql`; psql's own code once it runs)."""

    exit_code = 2
    needs_person = True


# ---- pieces ------------------------------------------------------------------------------------------------------


def database_for(target: TargetConfig, database: str | None) -> str:
    """The `--database` flag, else the target's database, else `databricks_postgres` when the target's is `*`.

    Either is checked to be a database name, whatever checked it before: the value reaches psql.
    """
    if database and database != "*":
        return check_database(database)
    return check_database(login_database(target.effective_database))


def check_database(database: str) -> str:
    """A database name, not a connection string: psql would read `host=...` in `--dbname` as connection settings."""
    check_database_name(database, "--database")  # the config's own check, so `database:` and the flag agree
    return database


def psql_argv(sql: str | None = None) -> list[str]:
    """psql's command line: with `sql`, what to run (`-c`); never where to connect, never the password.

    Where to connect goes in `PG*` variables (`psql_environ`): psql reads a `--dbname` argument that holds `=` as a
    connection string, with its own host and port, and libpq never reads `PGDATABASE` that way.
    """
    return ["psql", "-c", sql] if sql else ["psql"]


def psql_environ(environ: Mapping[str, str], token: str, connection: Connection | None = None) -> dict[str, str]:
    """psql's environment: this one without any secret, Databricks login or redirection, plus the connection, the
    password and the sslmode."""
    env = without_redirection(without_secrets(environ))
    if connection is not None:
        env.update(connection_variables(connection))
    env["PGPASSWORD"] = token
    env["PGSSLMODE"] = sslmode(environ)
    return env


def replace_process(path: str, argv: list[str], env: dict[str, str]) -> NoReturn:
    """Become `path` (`os.execvpe`): psql gets the terminal, the signals and the exit code, with nothing between.

    Python ignores SIGPIPE and an ignored signal stays ignored across exec; psql expects the default (as
    `subprocess` restores it). Windows has no exec that keeps the console, so there psql runs as a child.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":
        raise SystemExit(subprocess.call(argv, executable=path, env=env))
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    os.execvpe(path, argv, env)  # noqa: S606  # psql by its resolved path, argv as a list: no shell


def export_lines(
    connection: Connection,
    *,
    environ: Mapping[str, str],
    password: str | None = None,
    pgpassfile: Path | None = None,
) -> list[str]:
    """POSIX shell lines for `eval`: the `PG*` variables, each value quoted.

    Without a password, `PGPASSWORD` is unset: libpq reads `.pgpass` only when no password is given, so one
    exported earlier (say, by `env --with-password true` an hour ago) would be sent instead, and would have expired.
    """
    values = {
        "PGHOST": connection.host,
        "PGPORT": str(connection.port),
        "PGUSER": connection.user,
        "PGDATABASE": connection.database,
        "PGSSLMODE": sslmode(environ),
    }
    if password is not None:
        values["PGPASSWORD"] = password
    elif pgpassfile is not None:
        values["PGPASSFILE"] = str(pgpassfile)
    lines = [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    unset = [*(() if password is not None else ("PGPASSWORD",)), *REDIRECTING]
    lines.append(f"unset {' '.join(unset)}")
    return lines


def rotated_connection(target: TargetConfig, status: Status) -> tuple[str, str] | None:
    """The (host, user) the last rotation of `target` wrote to `.pgpass`, if it still matches the config."""
    known = status.targets.get(target.label)
    if known is None or not known.user or not known.hosts:
        return None
    if target.user and known.user != target.user:
        return None
    if target.host and target.host.lower() not in {h.lower() for h in known.hosts}:
        return None
    return known.hosts[0], known.user


def look_up_connection(
    config: RotatorConfig, target: TargetConfig, *, workspace_client: WorkspaceClient | None = None
) -> tuple[str, str]:
    """The (host, user) of `target` from the config, else from the workspace; no credential is minted."""
    if target.host and target.user:
        return target.host, target.user

    def ask() -> tuple[str, str]:
        ws = workspace_client or build_workspace_client(profile=config.profile, host=config.workspace_url)
        user = target.user or current_user_name(ws)
        if target.host:
            return target.host, user
        hosts = resolve_source(ws, target, now=lambda: datetime.now(timezone.utc)).hosts()
        if not hosts:
            raise CredentialError(f"{target.label}: the workspace names no host for it")
        return hosts[0], user

    return run_with_deadline(ask, ONCE_DEADLINE_SECONDS, what="lookup")


def _first_host(target: TargetConfig, credential: Credential) -> str:
    if not credential.hosts:
        raise CredentialError(f"{target.label}: the workspace names no host for it")
    return credential.hosts[0]


# ---- the commands ------------------------------------------------------------------------------------------------


def open_psql(
    config: RotatorConfig,
    *,
    name: str | None = None,
    database: str | None = None,
    sql: str | None = None,
    environ: Mapping[str, str] | None = None,
    mint: Mint = fresh_credential,
    execute: Exec = replace_process,
) -> int:
    """Mint a credential for one target and run psql on it; returns only when `execute` does (tests)."""
    environ = os.environ if environ is None else environ
    if sql and "\0" in sql:
        raise ConfigError("--command: SQL cannot contain a NUL character")
    if database:
        check_database(database)
    path = shutil.which("psql", path=environ.get("PATH"))
    if path is None:  # before minting: no credential for nothing
        raise ProgramError(
            "psql not found on PATH",
            fix="install the PostgreSQL client (e.g. `brew install libpq`, `apt-get install postgresql-client`)",
        )
    dbname = database_for(pick_target(config, name), database)  # before minting: no credential for nothing
    target, credential = mint(config, name)
    connection = Connection(
        host=_first_host(target, credential),
        port=target.effective_port,
        user=credential.user,
        database=dbname,
    )
    argv = psql_argv(sql)
    logger.debug(
        f"Running {path} for {target.label} on {connection.host}:{connection.port}/{connection.database} "
        f"as {connection.user}"
    )
    try:
        execute(path, argv, psql_environ(environ, credential.token, connection))
    except OSError as err:
        raise ProgramError(f"cannot run {path}: {err.strerror or err}") from None
    return 0


def env_lines(
    config: RotatorConfig,
    *,
    name: str | None = None,
    database: str | None = None,
    with_password: bool = False,
    environ: Mapping[str, str] | None = None,
    state: StateStore | None = None,
    mint: Mint = fresh_credential,
    look_up: LookUp = look_up_connection,
) -> list[str]:
    """The lines `env` prints. Without the password: host and user from `status.json` when the target was rotated,
    else from the config or the workspace; no credential is minted."""
    environ = os.environ if environ is None else environ
    target = pick_target(config, name)
    dbname = database_for(target, database)
    if with_password:
        target, credential = mint(config, name)
        connection = Connection(_first_host(target, credential), target.effective_port, credential.user, dbname)
        return export_lines(connection, environ=environ, password=credential.token)
    rotated = rotated_connection(target, (state or default_state_store()).load())
    host, user = rotated or look_up(config, target)
    if rotated is None:  # after the look-up: a failure is then one line, its error
        logger.warning(
            f"{target.label} has not been rotated yet, so .pgpass has no password for it: run "
            "`databricks labs oauth-rotator rotate` (or `install` for the service), or use `--with-password true`"
        )
    if target.effective_database not in {"*", dbname}:
        logger.warning(
            f"{target.label}: .pgpass holds its password for database {target.effective_database} only, not {dbname}"
        )
    connection = Connection(host, target.effective_port, user, dbname)
    return export_lines(connection, environ=environ, pgpassfile=_pgpassfile_to_export(config, environ))


def _pgpassfile_to_export(config: RotatorConfig, environ: Mapping[str, str]) -> Path | None:
    """The configured password file when libpq, in this environment, would read another one; else None."""
    if not config.pgpass_file:
        return None  # oauth-rotator writes the file libpq reads (PGPASSFILE, else the default)
    written = pgpass_path_for(config)
    read = paths.default_pgpass_path(environ)
    return written if os.path.abspath(written) != os.path.abspath(read) else None
