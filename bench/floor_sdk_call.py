"""The floor of a rotation: one Lakebase credential through the Databricks SDK, and nothing else.

`python bench/floor_sdk_call.py INSTANCE` with `DATABRICKS_HOST`, `DATABRICKS_CLIENT_ID` and
`DATABRICKS_CLIENT_SECRET` set: the least any Python tool must do to mint that credential. It imports only the
SDK (never the benchmark helpers), so its time and memory are the SDK's.
"""

import os
import sys
import uuid

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config


def credential_call(host: str, client_id: str, client_secret: str, instance: str) -> str:
    """Build a client with bounded timeouts and ask for a credential for `instance`; returns the token."""
    config = Config(
        host=host,
        client_id=client_id,
        client_secret=client_secret,
        http_timeout_seconds=10,
        retry_timeout_seconds=20,
    )
    issued = WorkspaceClient(config=config).database.generate_database_credential(
        instance_names=[instance], request_id=str(uuid.uuid4())
    )
    if not issued.token:
        raise RuntimeError("the workspace returned no token")
    return issued.token


if __name__ == "__main__":
    env = os.environ
    credential_call(env["DATABRICKS_HOST"], env["DATABRICKS_CLIENT_ID"], env["DATABRICKS_CLIENT_SECRET"], sys.argv[1])
