"""Which credential source a configured target gets; a bare host is looked up in the workspace's catalog."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator.config import TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.lakebase.sources import AutoscalingEndpoint, ProvisionedInstance, WorkspaceToken
from databricks.labs.oauth_rotator.lakebase.targets import resolve_host, resolve_source
from tests.rigs.workspace import DEMO_ENDPOINT, DEMO_INSTANCE, FakeWorkspace


def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def ws(fake_workspace: FakeWorkspace) -> WorkspaceClient:
    return WorkspaceClient(config=fake_workspace.sdk_config())


def test_a_named_instance_or_endpoint_is_its_source_with_the_configured_host(ws: WorkspaceClient) -> None:
    instance = resolve_source(ws, TargetConfig(instance="db", host="mine.example.com"), now=now)
    assert isinstance(instance, ProvisionedInstance)
    assert (instance.instance, instance.hosts()) == ("db", ("mine.example.com",))
    endpoint = resolve_source(ws, TargetConfig(endpoint=DEMO_ENDPOINT), now=now)
    assert isinstance(endpoint, AutoscalingEndpoint)
    assert endpoint.endpoint == DEMO_ENDPOINT


def test_a_bare_host_is_resolved_to_the_database_serving_it(ws: WorkspaceClient) -> None:
    source = resolve_host(ws, "127.0.0.1", now=now)
    assert isinstance(source, ProvisionedInstance)
    assert (source.instance, source.hosts()) == (DEMO_INSTANCE, ("127.0.0.1",))
    assert isinstance(resolve_source(ws, TargetConfig(host="127.0.0.2"), now=now), AutoscalingEndpoint)


def test_a_host_nobody_serves_falls_back_to_the_workspace_token_and_says_so(
    ws: WorkspaceClient, caplog: pytest.LogCaptureFixture
) -> None:
    source = resolve_source(ws, TargetConfig(host="db.elsewhere.example.com"), now=now)
    assert isinstance(source, WorkspaceToken)
    assert "matches no Lakebase instance or endpoint" in caplog.text


def test_a_product_this_login_cannot_list_is_skipped(fake_workspace: FakeWorkspace, ws: WorkspaceClient) -> None:
    fake_workspace.fail_next(1, status=403, path_prefix="/api/2.0/database/instances")
    # The instance serving 127.0.0.1 cannot be listed: the endpoints are searched, and then the workspace token.
    assert isinstance(resolve_host(ws, "127.0.0.1", now=now), WorkspaceToken)
    assert isinstance(resolve_host(ws, "127.0.0.1", now=now), ProvisionedInstance)  # listed again once allowed


def test_a_target_without_instance_endpoint_or_host_is_a_config_error(ws: WorkspaceClient) -> None:
    with pytest.raises(ConfigError, match="needs an instance, an endpoint or a host"):
        resolve_source(ws, TargetConfig(name="empty"), now=now)
