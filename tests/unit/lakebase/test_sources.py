"""The credential sources, one per Lakebase flavour: where their hosts come from and how each one mints."""

from datetime import datetime, timedelta, timezone
from unittest.mock import create_autospec

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.database import DatabaseCredential, DatabaseInstance
from databricks.sdk.service.postgres import DatabaseCredential as PostgresCredential
from databricks.sdk.service.postgres import Endpoint, EndpointHosts, EndpointStatus
from google.protobuf.timestamp_pb2 import Timestamp

from databricks.labs.oauth_rotator.errors import CredentialError, NeedsPersonError
from databricks.labs.oauth_rotator.lakebase.sources import AutoscalingEndpoint, ProvisionedInstance, WorkspaceToken
from tests.rigs.workspace import DEMO_ENDPOINT

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
ENDPOINT = "projects/p/branches/b/endpoints/e"


def _now() -> datetime:
    return NOW


def test_a_provisioned_credential_carries_host_user_and_expiry_and_hides_its_token():
    ws = create_autospec(WorkspaceClient)
    ws.database.get_database_instance.return_value = DatabaseInstance(name="db", read_write_dns="db.example.com")
    ws.database.generate_database_credential.return_value = DatabaseCredential(
        token="secret-token", expiration_time="2026-11-29T13:00:00Z"
    )
    credential = ProvisionedInstance(ws, "db", now=_now).fetch("ana@example.com")
    assert credential.hosts == ("db.example.com",)
    assert credential.expires_at == NOW + timedelta(hours=1)
    assert credential.user == "ana@example.com"
    assert "secret-token" not in repr(credential)
    ws.database.generate_database_credential.assert_called_once()
    assert ws.database.generate_database_credential.call_args.kwargs["instance_names"] == ["db"]


def test_an_autoscaling_credential_uses_the_endpoint_host():
    ws = create_autospec(WorkspaceClient)
    ws.postgres.get_endpoint.return_value = Endpoint(status=EndpointStatus(hosts=EndpointHosts(host="ep.example.com")))
    stamp = Timestamp()
    stamp.FromJsonString("2026-11-29T13:00:00Z")
    ws.postgres.generate_database_credential.return_value = PostgresCredential(token="t", expire_time=stamp)
    credential = AutoscalingEndpoint(ws, "projects/p/branches/b/endpoints/e", now=_now).fetch("u")
    assert credential.hosts == ("ep.example.com",)
    ws.postgres.generate_database_credential.assert_called_once_with(endpoint="projects/p/branches/b/endpoints/e")


def test_a_configured_host_is_used_without_asking_the_catalog():
    ws = create_autospec(WorkspaceClient)
    assert ProvisionedInstance(ws, "db", hosts=("mine.example.com",), now=_now).role_hosts() == {"": "mine.example.com"}
    assert AutoscalingEndpoint(ws, ENDPOINT, hosts=("ep.example.com",), now=_now).hosts() == ("ep.example.com",)
    ws.database.get_database_instance.assert_not_called()
    ws.postgres.get_endpoint.assert_not_called()


def test_an_instance_without_a_dns_name_needs_a_person_naming_its_state():
    ws = create_autospec(WorkspaceClient)
    ws.database.get_database_instance.return_value = DatabaseInstance(name="db")
    with pytest.raises(NeedsPersonError, match="instance db has no read-write DNS name") as failure:
        ProvisionedInstance(ws, "db", now=_now).role_hosts()
    assert "set `host`" in (failure.value.fix or "")


def test_an_endpoint_without_a_host_needs_a_person():
    ws = create_autospec(WorkspaceClient)
    ws.postgres.get_endpoint.return_value = Endpoint(status=EndpointStatus())
    with pytest.raises(NeedsPersonError, match=f"endpoint {ENDPOINT} reports no host"):
        AutoscalingEndpoint(ws, ENDPOINT, now=_now).role_hosts()


def test_each_source_names_what_it_mints_for():
    ws = create_autospec(WorkspaceClient)
    instance, endpoint = ProvisionedInstance(ws, "db", now=_now), AutoscalingEndpoint(ws, ENDPOINT, now=_now)
    assert (instance.description, instance.instance) == ("instance db", "db")
    assert (endpoint.description, endpoint.endpoint) == (f"endpoint {ENDPOINT}", ENDPOINT)
    assert WorkspaceToken(ws, "h.example.com", now=_now).description == "workspace token for h.example.com"


def test_the_workspace_token_is_the_bearer_token_of_the_login():
    ws = create_autospec(WorkspaceClient)
    ws.config.authenticate.return_value = {"Authorization": "Bearer workspace-oauth-token"}
    credential = WorkspaceToken(ws, "h.example.com", now=_now).fetch("u")
    assert credential.token == "workspace-oauth-token"
    assert credential.hosts == ("h.example.com",)
    assert credential.expires_at == NOW + timedelta(hours=1)  # an opaque token: the default lifetime


def test_a_login_without_a_bearer_token_gives_no_credential():
    ws = create_autospec(WorkspaceClient)
    ws.config.authenticate.return_value = {"Authorization": "Basic dXNlcjpwdw=="}
    with pytest.raises(CredentialError, match="empty credential"):
        WorkspaceToken(ws, "h.example.com", now=_now).fetch("u")


def test_a_requested_ttl_is_asked_for_and_the_credentials_expiry_follows_it(fake_workspace):
    """The real SDK against the fake workspace, which honours a requested `ttl` as the API does."""
    ws = WorkspaceClient(config=fake_workspace.sdk_config())
    asked = AutoscalingEndpoint(ws, DEMO_ENDPOINT, now=lambda: datetime.now(timezone.utc), ttl_seconds=600)
    before = datetime.now(timezone.utc)
    credential = asked.fetch("u")
    assert timedelta(seconds=590) <= credential.expires_at - before <= timedelta(seconds=610)
    default = AutoscalingEndpoint(ws, DEMO_ENDPOINT, now=lambda: datetime.now(timezone.utc)).fetch("u")
    assert default.expires_at - before >= timedelta(minutes=59)


def test_an_sdk_without_ttl_is_not_sent_one():
    """databricks-sdk before 0.120.0 has no `ttl`: the credential is minted with the API's default lifetime."""

    def generate_database_credential(endpoint: str, *, claims: object = None) -> PostgresCredential:
        raise AssertionError("replaced by its autospec")

    ws = create_autospec(WorkspaceClient)
    ws.postgres.get_endpoint.return_value = Endpoint(status=EndpointStatus(hosts=EndpointHosts(host="ep.example.com")))
    old = create_autospec(generate_database_credential)
    stamp = Timestamp()
    stamp.FromJsonString("2026-11-29T13:00:00Z")
    old.return_value = PostgresCredential(token="t", expire_time=stamp)
    ws.postgres.generate_database_credential = old
    AutoscalingEndpoint(ws, ENDPOINT, now=_now, ttl_seconds=600).fetch("u")
    old.assert_called_once_with(endpoint=ENDPOINT)
    current = create_autospec(WorkspaceClient)
    current.postgres.get_endpoint.return_value = ws.postgres.get_endpoint.return_value
    current.postgres.generate_database_credential.return_value = old.return_value
    AutoscalingEndpoint(current, ENDPOINT, now=_now, ttl_seconds=600).fetch("u")
    assert current.postgres.generate_database_credential.call_args.kwargs["ttl"].seconds == 600
