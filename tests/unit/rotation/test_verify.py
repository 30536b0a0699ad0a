"""`--verify`'s psql child: the connection in PG* variables, never a conninfo string, and no secret (issue 19)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from databricks.labs.oauth_rotator.rotation.verify import _verify_with_psql, psql_environment, verify_login

SECRETS = {
    "DATABRICKS_CLIENT_SECRET": "dose-secret",
    "DATABRICKS_TOKEN": "dapi0123",
    "DATABRICKS_HOST": "https://x",
    "DATABRICKS_CLIENT_ID": "id",
    "PGPASSWORD": "stale",
    "MY_SECRET": "s",
    "PGSERVICE": "elsewhere",
    "PGHOSTADDR": "10.0.0.66",
}


def _recording_psql(tmp_path: Path) -> Path:
    """A `psql` on PATH that records its argv and environment, then fails with an escape sequence on stderr."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "psql"
    record = tmp_path / "record.json"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'env': dict(os.environ)}}, open({str(record)!r}, 'w'))\n"
        "sys.stderr.write('psql: error: \\x1b]0;pwned\\x07 refused\\n')\n"
        "sys.exit(2)\n"
    )
    script.chmod(0o700)
    return record


def test_the_psql_check_gets_the_connection_as_variables_and_no_secret(tmp_path):
    record = _recording_psql(tmp_path)
    params = {"host": "db.example.com", "port": "5432", "dbname": "sales", "user": "ana@example.com"}
    environ = {"PATH": str(tmp_path / "bin"), **SECRETS}
    error = _verify_with_psql({**params, "sslmode": "require", "passfile": "/p", "connect_timeout": "10"}, environ, 5)
    assert error is not None and "refused" in error and "\x1b" not in error and "\x07" not in error
    seen = json.loads(record.read_text())
    assert seen["argv"] == ["-w", "-X", "-A", "-t", "-c", "select 1"], "no conninfo string on the command line"
    env = seen["env"]
    assert [env[k] for k in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSSLMODE", "PGPASSFILE")] == [
        "db.example.com",
        "5432",
        "sales",
        "ana@example.com",
        "require",
        "/p",
    ]
    for gone in SECRETS:
        assert gone not in env, gone


def test_a_connection_string_as_database_is_never_connected_to(tmp_path):
    error = verify_login(("h", "5432", "dbname=x host=evil.example", "u"), tmp_path / "p", environ={"PATH": ""})
    assert error is not None and "connection string" in error
    error = verify_login(("h", "5432", "*", "u"), tmp_path / "p", environ={"PATH": "", "PGDATABASE": "host=evil"})
    assert error is not None and "connection string" in error


def test_the_environment_keeps_what_is_not_secret():
    env = psql_environment({"host": "h"}, {"PATH": "/bin", "LANG": "C.UTF-8", "PGSSLROOTCERT": "/ca", **SECRETS})
    assert env == {"PATH": "/bin", "LANG": "C.UTF-8", "PGSSLROOTCERT": "/ca", "PGHOST": "h"}
