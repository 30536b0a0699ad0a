"""A rotation request: what a entry point checked, handed to the scheduler's worker as JSON and read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.app.request import RotationRequest
from databricks.labs.oauth_rotator.errors import ConfigError


def test_the_worker_gets_the_config_path_and_overrides_and_reads_back_the_same_request() -> None:
    request = RotationRequest(
        Path("/home/me/config.yml"), {"profile": "prod", "target": {"host": "h"}}, verify=True, debug=True
    )
    sent = json.loads(json.dumps(request.to_worker()))
    back = RotationRequest.from_worker(sent)
    assert back.config_path == Path("/home/me/config.yml")
    assert back.overrides == {"profile": "prod", "target": {"host": "h"}}
    assert (back.verify, back.debug, back.once) == (True, True, False)


def test_the_sidecar_port_stays_with_the_scheduler() -> None:
    sent = RotationRequest(None, http_address="0.0.0.0", http_port=8080, once=True).to_worker()  # noqa: S104
    assert set(sent) == {"config", "overrides", "debug", "verify"}
    back = RotationRequest.from_worker(sent)
    assert (back.config_path, back.http_port, back.overrides) == (None, None, {})


@pytest.mark.parametrize("overrides", [["profile"], "profile=prod", 5])
def test_overrides_that_are_not_an_object_are_refused(overrides: object) -> None:
    with pytest.raises(ConfigError, match="overrides must be a JSON object"):
        RotationRequest.from_worker({"config": None, "overrides": overrides})
