"""`--verify`: log in once with the rotated credential, through libpq, exactly as a user's client would."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from databricks.labs.oauth_rotator.config import check_database_name
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.names import LAKEBASE_DATABASE, login_database
from databricks.labs.oauth_rotator.secrets import without_secrets
from databricks.labs.oauth_rotator.text import one_line

logger = logging.getLogger(__name__)


def verify_login(
    key: tuple[str, str, str, str], passfile: Path, *, environ: Mapping[str, str] | None = None, timeout: int = 10
) -> str | None:
    """Connect as `key` (host, port, database, user) with the password from `passfile`; None or the error.

    A `*` database connects to `PGDATABASE`, else `databricks_postgres`. Uses psycopg (the `verify` extra,
    which bundles libpq) when installed, else the `psql` on PATH.
    """
    environ = os.environ if environ is None else environ
    host, port, database, user = key
    dbname = login_database(database, environ.get("PGDATABASE", LAKEBASE_DATABASE))
    try:
        check_database_name(dbname, "database")
    except ConfigError as err:
        return str(err)
    params: dict[str, Any] = {
        "host": host,
        "port": port,
        "dbname": dbname,
        "user": user,
        "sslmode": "require",
        "passfile": str(passfile),
        "connect_timeout": str(timeout),
    }
    try:
        import psycopg
    except ImportError:
        return _verify_with_psql(params, environ, timeout)
    try:
        with psycopg.connect(**params) as conn:
            conn.execute("select 1")
    except psycopg.Error as err:
        return one_line(str(err)) or type(err).__name__
    return None


_VARIABLES = {
    "host": "PGHOST",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "sslmode": "PGSSLMODE",
    "passfile": "PGPASSFILE",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}
"""libpq's variable for each connection parameter: psql gets the connection in its environment, never as a
connection string built from our values (a database named `host=...` would be read as settings)."""
REDIRECTING = ("PGHOSTADDR", "PGSERVICE", "PGSERVICEFILE")
"""libpq variables that would connect somewhere other than the host we name."""


def psql_environment(params: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """The check's psql environment: ours without any secret, Databricks login or redirection, plus `params`."""
    env = {k: v for k, v in without_secrets(environ).items() if k not in REDIRECTING}
    env.update({_VARIABLES[name]: str(value) for name, value in params.items()})
    return env


def _verify_with_psql(params: dict[str, Any], environ: Mapping[str, str], timeout: int) -> str | None:
    psql = shutil.which("psql", path=environ.get("PATH"))
    if psql is None:
        return "cannot verify: neither psycopg (pip install 'databricks-labs-oauth-rotator[verify]') nor psql found"
    result = subprocess.run(
        [psql, "-w", "-X", "-A", "-t", "-c", "select 1"],
        env=psql_environment(params, environ),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout + 5,
        check=False,
    )
    if result.returncode == 0:
        return None
    return one_line(result.stderr) or f"psql exited with {result.returncode}"


def verify_all(keys: Sequence[tuple[str, str, str, str]], passfile: Path) -> int:
    """Verify each written line; 1 when any login failed."""
    failures = 0
    for key in keys:
        error = verify_login(key, passfile)
        if error is None:
            logger.info(f"Verified: logged in to {key[0]}:{key[1]} as {key[3]}")
        else:
            failures += 1
            logger.error(f"Verification failed for {key[0]}:{key[1]} as {key[3]}: {error}")
    return 1 if failures else 0
