"""The Python API, as the original tool's users call it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient

import databricks_oauth_rotator
from databricks.labs.oauth_rotator import DatabricksOAuthRotator
from databricks.labs.oauth_rotator.errors import NeedsPersonError
from databricks.labs.oauth_rotator.testing.workspace import DEMO_INSTANCE

USER = "someone@example.com"


@pytest.fixture
def api_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_the_original_import_path_still_works():
    assert databricks_oauth_rotator.DatabricksOAuthRotator is DatabricksOAuthRotator


def rotator_for(api_home, workspace, postgres, **target: Any) -> DatabricksOAuthRotator:
    return DatabricksOAuthRotator(
        **target,
        pg_port=postgres.port,
        pgpass_file=str(api_home / ".pgpass"),
        workspace_client=WorkspaceClient(config=workspace.sdk_config()),
    )


def test_run_once_rotates_with_a_given_workspace_client_and_psql_logs_in(api_home, workspace, postgres):
    rotator = rotator_for(api_home, workspace, postgres, pg_host="127.0.0.1")
    assert rotator.run_once() == ["127.0.0.1"]
    assert postgres.psql_login(user=USER, passfile=api_home / ".pgpass").returncode == 0


def test_run_once_raises_a_typed_error_that_says_what_to_fix(api_home, workspace, postgres):
    rotator = rotator_for(api_home, workspace, postgres, instance="no-such-instance")
    with pytest.raises(NeedsPersonError, match="no-such-instance") as failure:
        rotator.run_once()
    assert failure.value.fix


def test_run_daemon_rotates_until_stopped(api_home, workspace, postgres):
    rotator = rotator_for(api_home, workspace, postgres, instance=DEMO_INSTANCE)
    outcome: list[int] = []
    runner = threading.Thread(target=lambda: outcome.append(rotator.run_daemon()))
    runner.start()
    deadline = time.monotonic() + 20
    while not (api_home / ".pgpass").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    rotator.stop()
    runner.join(timeout=70)
    assert outcome == [0]
    assert postgres.psql_login(user=USER, passfile=api_home / ".pgpass").returncode == 0
