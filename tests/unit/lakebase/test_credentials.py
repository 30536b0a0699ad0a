import base64
import json
from datetime import datetime, timedelta, timezone
from unittest.mock import create_autospec

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InternalError, NotFound, PermissionDenied, Unauthenticated
from databricks.sdk.service.database import DatabaseCredential, DatabaseInstance
from databricks.sdk.service.postgres import DatabaseCredential as PostgresCredential
from databricks.sdk.service.postgres import Endpoint, EndpointHosts, EndpointStatus
from google.protobuf.timestamp_pb2 import Timestamp

from databricks.labs.oauth_rotator.errors import CredentialError, NeedsPersonError
from databricks.labs.oauth_rotator.lakebase.credentials import (
    AutoscalingEndpoint,
    ProvisionedInstance,
    credential_expiry,
    parse_timestamp,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def _now() -> datetime:
    return NOW


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-29T13:00:00Z",
        "2026-11-29T13:00:00.123456789Z",
        "2026-11-29T13:00:00+00:00",
        "2026-11-29T14:00:00+01:00",
    ],
)
def test_rfc3339_timestamps_parse_on_python_310_too(text):
    assert parse_timestamp(text).replace(microsecond=0) == datetime(2026, 11, 29, 13, 0, tzinfo=timezone.utc)


def test_expiry_falls_back_from_the_api_field_to_the_jwt_to_an_hour():
    stamp = Timestamp()
    stamp.FromJsonString("2026-11-29T12:30:00Z")
    assert credential_expiry(stamp, "x", now=NOW) == NOW + timedelta(minutes=30)
    exp = datetime(2026, 12, 1, 9, 5, tzinfo=timezone.utc)
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp.timestamp()}).encode()).decode().rstrip("=")
    assert credential_expiry(None, f"e30.{payload}.c2ln", now=NOW) == exp
    assert credential_expiry(None, "opaque", now=NOW) == NOW + timedelta(hours=1)


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


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        (DatabaseCredential(token="", expiration_time="2026-11-29T13:00:00Z"), "empty credential"),
        (DatabaseCredential(token="t", expiration_time="2026-11-29T11:00:00Z"), "already expired"),
        (DatabaseCredential(token="t", expiration_time="yesterday"), "unreadable expiry"),
    ],
)
def test_a_bad_credential_is_a_retryable_error(credential, message):
    ws = create_autospec(WorkspaceClient)
    ws.database.generate_database_credential.return_value = credential
    with pytest.raises(CredentialError, match=message) as failure:
        ProvisionedInstance(ws, "db", hosts=("h",), now=_now).fetch("u")
    assert failure.value.retryable


@pytest.mark.parametrize(
    ("error", "needs_person"),
    [
        (NotFound("no such instance"), True),
        (PermissionDenied("no"), True),
        (Unauthenticated("expired"), True),
        (InternalError("boom"), False),
    ],
)
def test_sdk_errors_are_sorted_into_retry_later_and_needs_a_person(error, needs_person):
    ws = create_autospec(WorkspaceClient)
    ws.database.generate_database_credential.side_effect = error
    with pytest.raises(CredentialError) as failure:
        ProvisionedInstance(ws, "db", hosts=("h",), now=_now).fetch("u")
    assert failure.value.needs_person is needs_person
    assert isinstance(failure.value, NeedsPersonError) is needs_person
