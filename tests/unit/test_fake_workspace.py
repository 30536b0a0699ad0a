"""The fake workspace, driven through the installed databricks-sdk (no PostgreSQL needed).

What the SDK does with faults (``_base_client.py``, ``retries.py``), as these tests pin down:
* 429 and 503 are retried, sleeping ``Retry-After`` (1 s when absent) plus up to 1 s of jitter, until
  ``retry_timeout_seconds``; then ``TimeoutError`` chained to the last error.
* Connection errors and read timeouts are retried the same way (sleep ``min(attempt, 10)`` s + jitter); the
  deadline is only checked between attempts, so the total can overshoot ``retry_timeout_seconds``.
* 400/401/403/404/500/502/504 are raised at once as the typed error for the status or ``error_code``.
* A 200 with invalid JSON raises ``requests.JSONDecodeError`` (a ``ValueError``) at once.
* The OAuth token endpoint is never retried: any error there is a plain ``ValueError("<error>: <description>")``.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import (
    BadRequest,
    InternalError,
    NotFound,
    PermissionDenied,
    ResourceDoesNotExist,
    Unauthenticated,
)
from databricks.sdk.oauth import Token
from databricks.sdk.service.postgres import EndpointStatusState, EndpointType
from google.protobuf.duration_pb2 import Duration

from tests.rigs.tokens import jwt_claims
from tests.rigs.workspace import (
    DEMO_ENDPOINT,
    DEMO_INSTANCE,
    OTHER_USER,
    FakeWorkspace,
)

ME = "GET /api/2.0/preview/scim/v2/Me"


@pytest.fixture
def sdk_config(fake_workspace: FakeWorkspace) -> Config:
    """Overrides the conftest fixture of the same name: M2M, but no PostgreSQL behind the workspace."""
    return fake_workspace.sdk_config()


def _client(ws: FakeWorkspace, **overrides: Any) -> WorkspaceClient:
    return WorkspaceClient(config=ws.sdk_config(**overrides))


def _credential(w: WorkspaceClient, instance: str = DEMO_INSTANCE) -> tuple[str, str | None]:
    credential = w.database.generate_database_credential(instance_names=[instance], request_id=str(uuid4()))
    assert credential.token is not None
    return credential.token, credential.expiration_time


def _parse(rfc3339: str) -> datetime:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))


# ---- auth ------------------------------------------------------------------------------------------------------


def test_m2m_login_fetches_one_token_and_reports_the_user(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    w = WorkspaceClient(config=sdk_config)
    assert w.current_user.me().user_name == "someone@example.com"
    assert w.current_user.me().user_name == "someone@example.com"
    assert fake_workspace.calls["GET /.well-known/databricks-config"] == 1
    assert fake_workspace.calls["POST /oidc/v1/token"] == 1
    assert fake_workspace.calls[ME] == 2
    access_token = sdk_config.oauth_token().access_token
    assert Token(access_token=access_token).jwt_claims()["sub"] == fake_workspace.client_id


def test_wrong_secret_is_refused_before_any_api_call(fake_workspace: FakeWorkspace) -> None:
    w = _client(fake_workspace, client_secret="not-the-secret")
    with pytest.raises(ValueError, match="invalid_client"):
        w.current_user.me()
    assert fake_workspace.calls[ME] == 0


@pytest.mark.parametrize("use_basic", [True, False])
def test_token_endpoint_takes_basic_auth_or_form_fields(fake_workspace: FakeWorkspace, use_basic: bool) -> None:
    ws = fake_workspace
    form = {"grant_type": "client_credentials", "scope": "all-apis"}
    if use_basic:
        ok = requests.post(f"{ws.host}/oidc/v1/token", form, auth=(ws.client_id, ws.client_secret), timeout=5)
        bad = requests.post(f"{ws.host}/oidc/v1/token", form, auth=(ws.client_id, "wrong"), timeout=5)
    else:
        ok = requests.post(
            f"{ws.host}/oidc/v1/token",
            {**form, "client_id": ws.client_id, "client_secret": ws.client_secret},
            timeout=5,
        )
        bad = requests.post(f"{ws.host}/oidc/v1/token", {**form, "client_id": ws.client_id}, timeout=5)
    assert ok.status_code == 200
    assert ok.json()["token_type"] == "Bearer"
    assert ok.json()["expires_in"] == 3600
    assert (bad.status_code, bad.json()["error"]) == (401, "invalid_client")
    me = requests.get(
        f"{ws.host}/api/2.0/preview/scim/v2/Me",
        headers={"Authorization": f"Bearer {ok.json()['access_token']}"},
        timeout=5,
    )
    assert me.json()["userName"] == ws.user_name


def test_api_without_valid_auth_is_401(fake_workspace: FakeWorkspace) -> None:
    url = f"{fake_workspace.host}/api/2.0/database/instances"
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        response = requests.get(url, headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json()["error_code"] == "UNAUTHENTICATED"


def test_expired_workspace_token_is_refused(fake_workspace: FakeWorkspace) -> None:
    ws = fake_workspace
    ws.oauth_ttl_seconds = 0
    form = {"grant_type": "client_credentials"}
    token = requests.post(f"{ws.host}/oidc/v1/token", form, auth=(ws.client_id, ws.client_secret), timeout=5)
    response = requests.get(
        f"{ws.host}/api/2.0/preview/scim/v2/Me",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=5,
    )
    assert response.status_code == 401


def test_pat_auth_maps_to_its_user(fake_workspace: FakeWorkspace) -> None:
    fake_workspace.add_pat("dapi-known", user_name="pat-user@example.com")
    assert _client(fake_workspace, token="dapi-known").current_user.me().user_name == "pat-user@example.com"
    with pytest.raises(Unauthenticated):
        _client(fake_workspace, token="dapi-unknown").current_user.me()
    assert fake_workspace.calls["POST /oidc/v1/token"] == 0


def test_service_principal_is_known_by_its_application_id(fake_workspace: FakeWorkspace) -> None:
    fake_workspace.add_client("sp-client", "sp-secret", user_name="00000000-aaaa-bbbb-cccc-000000000001")
    w = _client(fake_workspace, client_id="sp-client", client_secret="sp-secret")
    assert w.current_user.me().user_name == "00000000-aaaa-bbbb-cccc-000000000001"
    token, _ = _credential(w)
    assert jwt_claims(token)["sub"] == "00000000-aaaa-bbbb-cccc-000000000001"


def test_revoked_client_loses_its_tokens_and_its_secret(fake_workspace: FakeWorkspace) -> None:
    fake_workspace.add_client("sp-client", "sp-secret", user_name="sp-app-id")
    w = _client(fake_workspace, client_id="sp-client", client_secret="sp-secret")
    w.current_user.me()
    fake_workspace.revoke_client("sp-client")
    with pytest.raises(Unauthenticated):
        w.current_user.me()  # the SDK still holds the (now revoked) token
    with pytest.raises(ValueError, match="invalid_client"):
        _client(fake_workspace, client_id="sp-client", client_secret="sp-secret").current_user.me()
    assert _client(fake_workspace).current_user.me().user_name == "someone@example.com"


# ---- Provisioned instances -------------------------------------------------------------------------------------


def test_instances_are_listed_page_by_page(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    for i in range(4):
        fake_workspace.add_instance(f"inst-{i}")
    names = [i.name for i in WorkspaceClient(config=sdk_config).database.list_database_instances(page_size=2)]
    assert names == sorted([DEMO_INSTANCE, "inst-0", "inst-1", "inst-2", "inst-3"])
    assert fake_workspace.calls["GET /api/2.0/database/instances"] == 3


def test_instance_details_and_404(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    fake_workspace.add_instance("replicated", read_write_dns="rw.example", read_only_dns="ro.example", state="STARTING")
    w = WorkspaceClient(config=sdk_config)
    instance = w.database.get_database_instance("replicated")
    assert (instance.read_write_dns, instance.read_only_dns) == ("rw.example", "ro.example")
    assert instance.state is not None and instance.state.value == "STARTING"
    fake_workspace.remove_instance("replicated")
    with pytest.raises(ResourceDoesNotExist):
        w.database.get_database_instance("replicated")
    with pytest.raises(NotFound):
        _credential(w, "replicated")


def test_database_credential_is_a_jwt_for_the_user(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    seen: list[tuple[str, str, datetime]] = []
    fake_workspace.on_credential = lambda user, token, expires_at: seen.append((user, token, expires_at))
    fake_workspace.ttl_seconds = 20
    before = datetime.now(timezone.utc)
    token, expiration_time = _credential(WorkspaceClient(config=sdk_config))
    assert expiration_time is not None and expiration_time.endswith("Z")
    expires_at = _parse(expiration_time)
    assert before + timedelta(seconds=19) <= expires_at <= before + timedelta(seconds=22)
    claims = jwt_claims(token)
    assert claims["sub"] == "someone@example.com"
    assert claims["exp"] == int(expires_at.timestamp())
    assert token.count(".") == 2
    assert seen == [("someone@example.com", token, expires_at)]
    (issued,) = fake_workspace.issued
    assert (issued.user, issued.token, issued.kind, issued.target) == (
        "someone@example.com",
        token,
        "database",
        DEMO_INSTANCE,
    )
    assert token in fake_workspace.issued_secrets()


def test_every_credential_is_new(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    w = WorkspaceClient(config=sdk_config)
    assert _credential(w)[0] != _credential(w)[0]
    assert FakeWorkspace().client_secret != fake_workspace.client_secret


def test_failing_on_credential_hook_is_a_500(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    def refuse(_user: str, _token: str, _expires_at: datetime) -> None:
        raise RuntimeError("database down")

    fake_workspace.on_credential = refuse
    with pytest.raises(InternalError):
        _credential(WorkspaceClient(config=sdk_config))
    assert fake_workspace.issued == []


def test_credential_without_expiry_field_still_has_jwt_exp(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    fake_workspace.omit_expiry = True
    w = WorkspaceClient(config=sdk_config)
    token, expiration_time = _credential(w)
    assert expiration_time is None
    assert jwt_claims(token)["exp"] > time.time() + 3500
    assert w.postgres.generate_database_credential(endpoint=DEMO_ENDPOINT).expire_time is None


# ---- Autoscaling (w.postgres) ----------------------------------------------------------------------------------


def test_postgres_resources_as_the_sdk_parses_them(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    fake_workspace.add_endpoint(
        "projects/demo/branches/main/endpoints/replica",
        host="ro.example",
        read_only_pooled_host="ro-pooled.example",
        endpoint_type="ENDPOINT_TYPE_READ_ONLY",
        state="IDLE",
    )
    fake_workspace.add_endpoint("projects/other/branches/dev/endpoints/e1")
    pg = WorkspaceClient(config=sdk_config).postgres
    assert [p.name for p in pg.list_projects()] == ["projects/demo", "projects/other"]
    assert pg.get_project("projects/demo").project_id == "demo"
    assert [b.name for b in pg.list_branches(parent="projects/demo")] == ["projects/demo/branches/main"]
    assert pg.get_branch("projects/demo/branches/main").branch_id == "main"
    endpoints = list(pg.list_endpoints(parent="projects/demo/branches/main", page_size=1))
    assert [e.name for e in endpoints] == [DEMO_ENDPOINT, "projects/demo/branches/main/endpoints/replica"]
    replica = pg.get_endpoint("projects/demo/branches/main/endpoints/replica")
    assert replica.status is not None and replica.status.hosts is not None
    assert (replica.status.hosts.host, replica.status.hosts.read_only_pooled_host) == (
        "ro.example",
        "ro-pooled.example",
    )
    assert replica.status.hosts.read_write_pooled_host is None
    assert replica.status.endpoint_type == EndpointType.ENDPOINT_TYPE_READ_ONLY
    assert replica.status.current_state == EndpointStatusState.IDLE
    with pytest.raises(NotFound):
        pg.get_endpoint("projects/demo/branches/main/endpoints/nope")
    with pytest.raises(NotFound):
        list(pg.list_endpoints(parent="projects/demo/branches/nope"))


def test_postgres_credential_honours_ttl_within_limits(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    pg = WorkspaceClient(config=sdk_config).postgres
    before = datetime.now(timezone.utc)
    credential = pg.generate_database_credential(endpoint=DEMO_ENDPOINT, ttl=Duration(seconds=600))
    assert credential.expire_time is not None and credential.token is not None
    expires_at = credential.expire_time.ToDatetime(tzinfo=timezone.utc)
    assert before + timedelta(seconds=599) <= expires_at <= before + timedelta(seconds=602)
    assert jwt_claims(credential.token)["exp"] == int(expires_at.timestamp())
    assert fake_workspace.issued[-1].kind == "postgres"
    assert fake_workspace.issued[-1].target == DEMO_ENDPOINT
    with pytest.raises(BadRequest):
        pg.generate_database_credential(endpoint=DEMO_ENDPOINT, ttl=Duration(seconds=60))
    with pytest.raises(NotFound):
        pg.generate_database_credential(endpoint="projects/demo/branches/main/endpoints/nope")


# ---- fault knobs -----------------------------------------------------------------------------------------------


def test_503_and_429_are_retried_by_the_sdk(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    w = WorkspaceClient(config=sdk_config)
    fake_workspace.fail_next(1, status=503, retry_after=0)
    fake_workspace.fail_next(1, status=429, retry_after=0)
    assert w.current_user.me().user_name == "someone@example.com"
    assert fake_workspace.calls[ME] == 3


def test_503_until_the_retry_budget_ends_is_a_timeout(fake_workspace: FakeWorkspace) -> None:
    w = _client(fake_workspace, retry_timeout_seconds=1)
    w.current_user.me()
    fake_workspace.fail_next(100, retry_after=0)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        w.current_user.me()
    assert time.monotonic() - started < 5
    assert fake_workspace.calls[ME] >= 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, Unauthenticated), (403, PermissionDenied), (404, NotFound), (500, InternalError)],
)
def test_other_statuses_raise_typed_errors_at_once(
    fake_workspace: FakeWorkspace, sdk_config: Config, status: int, error: type[Exception]
) -> None:
    w = WorkspaceClient(config=sdk_config)
    fake_workspace.fail_next(1, status=status, path_prefix="/api/2.0/database/")
    with pytest.raises(error):
        _credential(w)
    assert fake_workspace.calls["POST /api/2.0/database/credentials"] == 1
    assert fake_workspace.issued == []
    _credential(w)  # the fault was used up


def test_token_endpoint_errors_are_not_retried(fake_workspace: FakeWorkspace) -> None:
    fake_workspace.fail_next(1, status=503, path_prefix="/oidc/v1/token", retry_after=0)
    with pytest.raises(ValueError, match="temporarily_unavailable"):
        _client(fake_workspace).current_user.me()
    assert fake_workspace.calls["POST /oidc/v1/token"] == 1


def test_malformed_json_is_raised_not_retried(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    w = WorkspaceClient(config=sdk_config)
    fake_workspace.malformed_next(1)
    with pytest.raises(ValueError):
        _credential(w)
    assert fake_workspace.calls["POST /api/2.0/database/credentials"] == 1


def test_credential_faults(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    seen: list[str] = []
    fake_workspace.on_credential = lambda user, _token, _expires_at: seen.append(user)
    w = WorkspaceClient(config=sdk_config)
    fake_workspace.empty_token_next(1)
    fake_workspace.expired_token_next(1)
    fake_workspace.wrong_user_next(1)
    assert _credential(w)[0] == ""
    token, expiration_time = _credential(w)
    assert expiration_time is not None and _parse(expiration_time) < datetime.now(timezone.utc)
    assert jwt_claims(token)["exp"] < time.time()
    token = w.postgres.generate_database_credential(endpoint=DEMO_ENDPOINT).token or ""
    assert jwt_claims(token)["sub"] == OTHER_USER
    token = _credential(w)[0]
    assert jwt_claims(token)["sub"] == "someone@example.com"
    assert seen == ["someone@example.com", OTHER_USER, "someone@example.com"]
    assert "" not in fake_workspace.issued_secrets()


def test_delay_is_added_before_answers_on_matching_paths(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    w = WorkspaceClient(config=sdk_config)
    w.current_user.me()
    fake_workspace.delay_seconds = 0.6
    fake_workspace.delay_path_prefix = "/api/2.0/database/"
    started = time.monotonic()
    w.current_user.me()
    assert time.monotonic() - started < 0.5
    started = time.monotonic()
    _credential(w)
    assert time.monotonic() - started >= 0.6


def test_count_zero_cancels_a_fault_and_lowering_the_delay_releases_requests(
    fake_workspace: FakeWorkspace, sdk_config: Config
) -> None:
    w = WorkspaceClient(config=sdk_config)
    fake_workspace.fail_next(10_000, status=500)
    with pytest.raises(InternalError):
        w.current_user.me()
    fake_workspace.fail_next(0)
    w.current_user.me()
    fake_workspace.delay_seconds = 60
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        pending = pool.submit(w.current_user.me)
        time.sleep(0.2)
        fake_workspace.delay_seconds = 0
        assert pending.result(timeout=5).user_name == "someone@example.com"
    assert time.monotonic() - started < 2


def test_delay_beyond_the_http_timeout_is_a_timeout(fake_workspace: FakeWorkspace) -> None:
    w = _client(fake_workspace, http_timeout_seconds=0.5, retry_timeout_seconds=1)
    w.current_user.me()
    fake_workspace.delay_seconds = 3
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        w.current_user.me()
    assert isinstance(caught.value.__cause__, requests.Timeout)
    assert time.monotonic() - started < 4


def test_stop_refuses_connections_and_start_reuses_the_port(fake_workspace: FakeWorkspace) -> None:
    w = _client(fake_workspace, retry_timeout_seconds=1)
    w.current_user.me()
    port = fake_workspace.port
    fake_workspace.stop()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        w.current_user.me()
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert time.monotonic() - started < 5
    fake_workspace.start()
    assert fake_workspace.port == port
    assert w.current_user.me().user_name == "someone@example.com"


def test_unknown_route_is_404(fake_workspace: FakeWorkspace) -> None:
    response = requests.get(f"{fake_workspace.host}/api/2.0/clusters/list", timeout=5)
    assert (response.status_code, response.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")


def test_issued_secrets_cover_everything_handed_out(fake_workspace: FakeWorkspace, sdk_config: Config) -> None:
    fake_workspace.add_pat("dapi-leak-check")
    token, _ = _credential(WorkspaceClient(config=sdk_config))
    secrets = fake_workspace.issued_secrets()
    assert {fake_workspace.client_secret, "dapi-leak-check", token, sdk_config.oauth_token().access_token} <= secrets


def test_hang_reads_the_request_and_never_answers(fake_workspace: FakeWorkspace) -> None:
    fake_workspace.hang_next(1, path_prefix="/oidc/")
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{fake_workspace.host}/oidc/v1/token", timeout=1)
    assert time.monotonic() - started >= 1
    assert fake_workspace.calls["POST /oidc/v1/token"] == 1
    assert requests.post(f"{fake_workspace.host}/oidc/v1/token", timeout=5).status_code == 400  # only the next one


def test_trickle_sends_the_answer_a_byte_at_a_time_so_no_read_timeout_fires(fake_workspace: FakeWorkspace) -> None:
    whole = requests.get(f"{fake_workspace.host}/api/2.0/clusters/list", timeout=5)
    fake_workspace.trickle_next(1, path_prefix="/api/2.0/clusters/", seconds_per_byte=0.01)
    started = time.monotonic()
    trickled = requests.get(f"{fake_workspace.host}/api/2.0/clusters/list", timeout=0.5)  # far below the total
    assert (trickled.status_code, trickled.content) == (whole.status_code, whole.content)
    assert time.monotonic() - started >= 0.01 * len(whole.content)


def test_reset_reads_the_request_and_resets_the_connection(fake_workspace: FakeWorkspace) -> None:
    fake_workspace.reset_next(1, path_prefix="/oidc/")
    with pytest.raises(requests.ConnectionError) as caught:
        requests.post(f"{fake_workspace.host}/oidc/v1/token", timeout=5)
    assert "ConnectionResetError" in repr(caught.value)
    assert fake_workspace.calls["POST /oidc/v1/token"] == 1


def test_token_exchange_checks_the_subject_token_and_the_client_as_the_real_one_does(
    fake_workspace: FakeWorkspace,
) -> None:
    issuer, subject, audience = "https://cluster.example", "system:serviceaccount:ns:app", "databricks"
    fake_workspace.federate("sp-app", issuer=issuer, subject=subject, audience=audience)
    url = f"{fake_workspace.host}/oidc/v1/token"

    def exchange(token: str | None, client_id: str = "sp-app") -> requests.Response:
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "client_id": client_id}
        form["subject_token_type"] = "urn:ietf:params:oauth:token-type:jwt"
        if token is not None:
            form["subject_token"] = token
        return requests.post(url, data=form, timeout=10)

    def subject_token(**overrides: Any) -> str:
        claims = {"issuer": issuer, "subject": subject, "audience": audience, "expires_in": 600, **overrides}
        return fake_workspace.subject_token(**claims)

    good = exchange(subject_token())
    assert good.status_code == 200, good.text
    assert fake_workspace.calls["token exchange"] == 1
    refused = {
        "missing": (exchange(None), "invalid_request"),
        "unknown client": (exchange(subject_token(), "someone-else"), "invalid_client"),
        "expired": (exchange(subject_token(expires_in=-1)), "invalid_grant"),
        "another subject": (exchange(subject_token(subject="system:serviceaccount:ns:x")), "invalid_grant"),
        "another audience": (exchange(subject_token(audience="https://kubernetes.default.svc")), "invalid_grant"),
        "not signed by the issuer": (exchange(subject_token().rsplit(".", 1)[0] + ".forged"), "invalid_grant"),
    }
    for what, (answer, error) in refused.items():
        assert answer.status_code in {400, 401} and answer.json()["error"] == error, what
    assert fake_workspace.calls["token exchange"] == 1
