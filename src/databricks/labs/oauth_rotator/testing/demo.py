"""`make demo`: one rotation against a fake workspace and a throwaway PostgreSQL, then a real psql login.

Run as ``python -m databricks.labs.oauth_rotator.testing.demo``. Everything lives in temp dirs and is removed on
exit. The rotation is :func:`rotate_by_hand` for now; the product's own rotation replaces it later.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from uuid import uuid4

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config

from databricks.labs.oauth_rotator.testing.postgres import LocalPostgres
from databricks.labs.oauth_rotator.testing.workspace import DEMO_INSTANCE, FakeWorkspace


def _escape(field: str) -> str:
    return field.replace("\\", "\\\\").replace(":", "\\:")


def rotate_by_hand(config: Config, instance: str, port: int, pgpass: Path) -> tuple[str, str, datetime]:
    """Mints a credential for ``instance`` and writes its one ``.pgpass`` line (mode 0600); returns (user, host,
    expiry). A stand-in for the product's rotation: no locking, no merging with other lines, no schedule."""
    w = WorkspaceClient(config=config)
    user = w.current_user.me().user_name
    host = w.database.get_database_instance(instance).read_write_dns
    credential = w.database.generate_database_credential(instance_names=[instance], request_id=str(uuid4()))
    if not (user and host and credential.token and credential.expiration_time):
        raise RuntimeError("the workspace answered without a user, host, token or expiry")
    line = f"{_escape(host)}:{port}:*:{_escape(user)}:{_escape(credential.token)}\n"
    fd = os.open(pgpass, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(line)
    return user, host, datetime.fromisoformat(credential.expiration_time.replace("Z", "+00:00"))


def main() -> int:
    """Runs the demo; returns 0 when psql logged in with the rotated credential."""
    with tempfile.TemporaryDirectory(prefix="oauth-rotator-demo-") as tmp, LocalPostgres() as postgres:
        with FakeWorkspace() as workspace:
            workspace.on_credential = postgres.set_password
            workspace.add_instance(DEMO_INSTANCE, read_write_dns=postgres.host)
            print(f"fake workspace:  {workspace.host} (OAuth M2M client {workspace.client_id})")
            print(f"PostgreSQL:      {postgres.host}:{postgres.port} (SSL only, SCRAM passwords)")
            pgpass = Path(tmp) / "pgpass"
            config = workspace.sdk_config()
            user, host, expires_at = rotate_by_hand(config, DEMO_INSTANCE, postgres.port, pgpass)
            print(f"rotated:         credential for {user} on {DEMO_INSTANCE}, valid until {expires_at:%H:%M:%S %Z}")
            print(f"wrote:           {pgpass} (mode {pgpass.stat().st_mode & 0o777:o}, 1 line, token not shown)")
            result = postgres.psql_login(user=user, passfile=pgpass, host=host, sql="select current_user, now()")
        print(f"psql -w (PGPASSFILE, sslmode=require) exit {result.returncode}:")
        print("  " + (result.stdout.strip() or result.stderr.strip()))
    print("cleaned up:      workspace stopped, PostgreSQL stopped, temp dirs removed")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
