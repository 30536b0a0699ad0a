"""A cycle of many targets is quiet: no HTTP connection-pool warnings, and its connections are reused."""

from __future__ import annotations

import inspect
import json

import pytest
from databricks.sdk.config import Config

from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.lakebase.workspace import POOL_SIZE
from databricks.labs.oauth_rotator.rotation.cycle import MAX_CONCURRENT_FETCHES
from tests.integration.conftest import UserHome

TARGETS = 100


def test_the_pool_holds_every_concurrent_fetch():
    assert POOL_SIZE >= MAX_CONCURRENT_FETCHES


@pytest.mark.skipif(
    "http_adapter" not in inspect.signature(Config.__init__).parameters,
    reason="this SDK sizes only its https:// pool (real workspaces); the fake workspace speaks plain http",
)
def test_a_hundred_targets_rotate_with_no_pool_warning(tmp_path, fake_workspace, home: UserHome):
    for i in range(TARGETS):
        fake_workspace.add_instance(f"fleet-{i}", read_write_dns=f"h{i}.example.com")
    config = tmp_path / "config.yml"
    targets = [{"name": f"fleet-{i}", "instance": f"fleet-{i}"} for i in range(TARGETS)]
    config.write_text(json.dumps({"version": 1, "pgpass_file": str(home.pgpass), "targets": targets}))
    config.chmod(0o600)
    result = home.rotator("--once", "--config", str(config), timeout=240)
    assert result.returncode == 0, result.stderr
    seen = result.stderr + home.log_file.read_text()
    assert "Connection pool is full" not in seen
    assert "discarding connection" not in seen
    data = home.pgpass.read_bytes()
    found = pgpass.lookup_many(
        data, [(f"h{i}.example.com", "5432", "*", "someone@example.com") for i in range(TARGETS)]
    )
    assert len([v for v in found.values() if v]) == TARGETS
