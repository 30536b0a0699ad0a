"""`make demo`: the product rotates a credential from a fake workspace into .pgpass, then psql logs in with it.

Run as ``python -m tests.rigs.demo``. No Databricks account is needed: the workspace is
the local fake (OAuth M2M, Lakebase APIs) and the database a throwaway PostgreSQL that accepts exactly the newest
credential. Everything lives in temp dirs and is removed on exit. The token is never printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.rigs.postgres import LocalPostgres
from tests.rigs.workspace import DEMO_INSTANCE, FakeWorkspace

USER_LINE = "# my own lines stay as they are\nanother-host:5432:*:me:my-own-password\n"


def rotate(workspace: FakeWorkspace, home: Path, port: int) -> subprocess.CompletedProcess[str]:
    """`databricks-oauth-rotator --once` as a user runs it, with M2M credentials in the environment."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "PG"))},
        "HOME": str(home),
        "DATABRICKS_HOST": workspace.host,
        "DATABRICKS_CLIENT_ID": workspace.client_id,
        "DATABRICKS_CLIENT_SECRET": workspace.client_secret,
    }
    argv = ["--once", "--instance", DEMO_INSTANCE, "--pg-port", str(port), "--pgpass-file", str(home / ".pgpass")]
    return subprocess.run(
        [sys.executable, "-m", "databricks.labs.oauth_rotator", *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def main() -> int:
    """Runs the demo; returns 0 when psql logged in with the rotated credential."""
    with tempfile.TemporaryDirectory(prefix="oauth-rotator-demo-") as tmp, LocalPostgres() as postgres:
        home = Path(tmp)
        with FakeWorkspace() as workspace:
            workspace.on_credential = postgres.set_password
            workspace.add_instance(DEMO_INSTANCE, read_write_dns=postgres.host)
            print(f"fake workspace:  {workspace.host} (OAuth M2M client {workspace.client_id})")
            print(f"PostgreSQL:      {postgres.host}:{postgres.port} (SSL only, SCRAM, accepts the newest token only)")
            pgpass = home / ".pgpass"
            pgpass.write_text(USER_LINE)
            pgpass.chmod(0o600)
            print(f"$ databricks-oauth-rotator --once --instance {DEMO_INSTANCE} --pg-port {postgres.port}")
            rotated = rotate(workspace, home, postgres.port)
            for line in (rotated.stderr + rotated.stdout).strip().splitlines():
                print(f"  {line}")
            if rotated.returncode != 0:
                return rotated.returncode
            lines = pgpass.read_text().splitlines()
            print(f"wrote:           {pgpass} (mode {pgpass.stat().st_mode & 0o777:o}, {len(lines)} lines, yours kept)")
            user = workspace.issued[-1].user
            result = postgres.psql_login(user=user, passfile=pgpass, sql="select current_user, now()")
        print(f"$ psql -w 'host={postgres.host} port={postgres.port} user={user} sslmode=require' (PGPASSFILE)")
        print("  " + (result.stdout.strip() or result.stderr.strip()))
    print("cleaned up:      workspace stopped, PostgreSQL stopped, temp dirs removed")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
