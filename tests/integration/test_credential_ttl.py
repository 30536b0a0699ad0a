"""`credential_ttl_minutes`: an Autoscaling endpoint's credential is asked for that lifetime, and lives it."""

from __future__ import annotations

import json
import time

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files.config_store import save_config
from tests.integration.conftest import UserHome
from tests.rigs.workspace import DEMO_ENDPOINT, DEMO_INSTANCE


def test_an_endpoints_credential_expires_when_asked_and_an_instances_after_an_hour(home: UserHome):
    path = home.root / "config" / "config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    port = home.postgres.port
    targets = [
        TargetConfig(name="ep", endpoint=DEMO_ENDPOINT, port=port),
        TargetConfig(name="inst", instance=DEMO_INSTANCE, port=port),
    ]
    save_config(RotatorConfig(targets=targets, pgpass_file=str(home.pgpass), credential_ttl_minutes=10), path)
    before = time.time()
    result = home.rotator("--once", "--config", str(path))
    assert result.returncode == 0, result.stderr
    status = json.loads(home.status_file.read_text())["targets"]
    assert 590 <= status["ep"]["expires_at"] - before <= 615
    assert status["inst"]["expires_at"] - before >= 3500  # Provisioned: no ttl to ask for
