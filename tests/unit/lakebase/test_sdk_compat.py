"""Any supported databricks-sdk: what we send is read from the installed SDK's signatures, never its version.

The methods under test are the installed SDK's own (`make test` runs these on the newest SDK pyproject.toml allows;
the integration tests run on the oldest too), driven against the fake workspace over HTTP.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    BadRequest,
    DatabricksError,
    InternalError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

from databricks.labs.oauth_rotator.errors import NeedsPersonError
from databricks.labs.oauth_rotator.lakebase.sdk_compat import accepted_keywords, classify_sdk_error, sdk_arguments
from databricks.labs.oauth_rotator.lakebase.sources import AutoscalingEndpoint, ProvisionedInstance
from databricks.labs.oauth_rotator.lakebase.tokeninfo import jwt_claims
from tests.rigs.workspace import DEMO_ENDPOINT, DEMO_INSTANCE, FakeWorkspace

USER = "someone@example.com"
GROUP = "analysts"


def _now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def w(fake_workspace: FakeWorkspace) -> Iterator[WorkspaceClient]:
    yield WorkspaceClient(config=fake_workspace.sdk_config())


# Signatures copied from the SDK releases that differ (self dropped, as on a bound method).
def postgres_0_161(endpoint: str, *, claims: Any = None, expire_time: Any = None, ttl: Any = None) -> None:
    """w.postgres.generate_database_credential of 0.150.0-0.162.0: no group_name."""


def postgres_0_167(
    endpoint: str, *, claims: Any = None, expire_time: Any = None, group_name: Any = None, ttl: Any = None
) -> None:
    """w.postgres.generate_database_credential of 0.120.0 and 0.167.0: group_name."""


def postgres_renamed(name: str, *, claims: Any = None) -> None:
    """A future SDK that renamed `endpoint`."""


def database_without_request_id(*, claims: Any = None, instance_names: Any = None) -> None:
    """A future SDK that dropped the optional `request_id`."""


def test_the_installed_sdk_takes_what_we_send(w: WorkspaceClient) -> None:
    postgres = sdk_arguments(w.postgres.generate_database_credential, "pg", required={"endpoint": DEMO_ENDPOINT})
    assert postgres == {"endpoint": DEMO_ENDPOINT}
    database = sdk_arguments(
        w.database.generate_database_credential,
        "db",
        required={"instance_names": [DEMO_INSTANCE]},
        optional={"request_id": "r-1"},
    )
    assert database == {"instance_names": [DEMO_INSTANCE], "request_id": "r-1"}


def test_detection_reads_the_real_methods_keywords_without_self(w: WorkspaceClient) -> None:
    method = w.postgres.generate_database_credential
    accepted = accepted_keywords(method)
    assert accepted is not None
    assert {"endpoint", "claims", "expire_time", "ttl"} <= accepted
    assert "self" not in accepted
    assert ("group_name" in accepted) == (
        "group_name" in inspect.signature(type(w.postgres).generate_database_credential).parameters
    )


@pytest.mark.parametrize("method", [postgres_0_161, postgres_0_167], ids=["0.161-no-group_name", "0.167-group_name"])
def test_group_name_coming_and_going_does_not_change_what_we_send(method: Any) -> None:
    assert sdk_arguments(method, "pg", required={"endpoint": DEMO_ENDPOINT}) == {"endpoint": DEMO_ENDPOINT}


def test_an_optional_argument_the_sdk_lacks_is_left_out() -> None:
    arguments = sdk_arguments(
        database_without_request_id, "db", required={"instance_names": ["i"]}, optional={"request_id": "r-1"}
    )
    assert arguments == {"instance_names": ["i"]}


def test_a_required_argument_the_sdk_lacks_needs_a_person_and_names_the_supported_range() -> None:
    with pytest.raises(NeedsPersonError) as caught:
        sdk_arguments(postgres_renamed, "w.postgres.generate_database_credential", required={"endpoint": "e"})
    message = str(caught.value)
    assert "w.postgres.generate_database_credential of databricks-sdk " in message
    assert "takes no `endpoint` argument" in message
    assert caught.value.fix is not None
    assert re.search(r"install a supported databricks-sdk \(databricks-sdk[<>=,.0-9]*>=0\.\d+", caught.value.fix)


def test_a_method_taking_any_keyword_gets_everything() -> None:
    def anything(**kwargs: Any) -> None:
        """What `create_autospec` makes of the SDK's service properties."""

    assert accepted_keywords(anything) is None
    assert sdk_arguments(anything, "x", required={"a": 1}, optional={"b": 2}) == {"a": 1, "b": 2}


def test_both_sources_mint_through_the_installed_sdk(fake_workspace: FakeWorkspace, w: WorkspaceClient) -> None:
    """The fake workspace refuses unknown request fields, so this fails if we send one the API does not take."""
    endpoint = AutoscalingEndpoint(w, DEMO_ENDPOINT, now=_now).fetch(USER)
    instance = ProvisionedInstance(w, DEMO_INSTANCE, now=_now).fetch(USER)
    assert jwt_claims(endpoint.token)["sub"] == USER
    assert jwt_claims(instance.token)["sub"] == USER
    assert [(c.kind, c.target) for c in fake_workspace.issued] == [
        ("postgres", DEMO_ENDPOINT),
        ("database", DEMO_INSTANCE),
    ]


# ---- the fake workspace accepts what every supported SDK sends -----------------------------------------------


def _post(fake_workspace: FakeWorkspace, path: str, body: Any) -> requests.Response:
    token = "dapi-compat-test"
    fake_workspace.add_pat(token, user_name=USER)
    return requests.post(
        f"{fake_workspace.host}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_the_fake_scopes_a_group_name_credential_to_the_group(fake_workspace: FakeWorkspace) -> None:
    answer = _post(fake_workspace, "/api/2.0/postgres/credentials", {"endpoint": DEMO_ENDPOINT, "group_name": GROUP})
    assert answer.status_code == 200, answer.text
    assert jwt_claims(answer.json()["token"])["sub"] == GROUP


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/2.0/postgres/credentials", {"endpoint": DEMO_ENDPOINT, "role": "x"}, "unknown field 'role'"),
        ("/api/2.0/database/credentials", {"instance_names": [DEMO_INSTANCE], "group_name": GROUP}, "'group_name'"),
        ("/api/2.0/database/credentials", [DEMO_INSTANCE], "must be a JSON object"),
    ],
)
def test_the_fake_refuses_a_field_its_api_does_not_take(
    fake_workspace: FakeWorkspace, path: str, body: Any, message: str
) -> None:
    answer = _post(fake_workspace, path, body)
    assert answer.status_code == 400
    assert message in answer.json()["message"]
    assert fake_workspace.issued == []


def test_an_sdk_with_group_name_sends_it_and_the_fake_honours_it(
    fake_workspace: FakeWorkspace, w: WorkspaceClient
) -> None:
    method = w.postgres.generate_database_credential
    accepted = accepted_keywords(method)
    if accepted is not None and "group_name" not in accepted:
        pytest.skip("this databricks-sdk has no group_name on w.postgres.generate_database_credential")
    credential = method(endpoint=DEMO_ENDPOINT, group_name=GROUP)
    assert jwt_claims(credential.token or "")["sub"] == GROUP


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        (NotFound("no such instance"), "check the target name and that it still exists in the workspace"),
        (PermissionDenied("no"), "ask a workspace admin for access to this database"),
        (Unauthenticated("expired"), "check the login of this profile (`databricks auth login`)"),
        (BadRequest("bad"), None),
    ],
)
def test_errors_a_person_must_fix_say_how(error: DatabricksError, fix: str | None) -> None:
    classified = classify_sdk_error(error, "instance db")
    assert isinstance(classified, NeedsPersonError)
    assert classified.fix == fix
    assert str(classified).startswith(f"instance db: {type(error).__name__}: ")


def test_any_other_sdk_error_is_retried_later_on_one_line() -> None:
    classified = classify_sdk_error(InternalError("boom\nsecond line"), "endpoint e")
    assert not isinstance(classified, NeedsPersonError)
    assert classified.retryable
    assert "\n" not in str(classified)
