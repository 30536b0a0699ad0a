"""A credential source's `fetch`: every answer of the workspace checked before it is used."""

import base64
import json
from datetime import datetime, timedelta, timezone
from unittest.mock import create_autospec

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InternalError, NotFound, PermissionDenied, Unauthenticated
from databricks.sdk.service.database import DatabaseCredential, DatabaseInstance
from databricks.sdk.service.postgres import DatabaseCredential as PostgresCredential
from hypothesis import given, settings
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.errors import CredentialError, NeedsPersonError
from databricks.labs.oauth_rotator.lakebase.expiry import MAX_LIFETIME, UnreadableExpiry, credential_expiry
from databricks.labs.oauth_rotator.lakebase.sources import AutoscalingEndpoint, ProvisionedInstance

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def _now() -> datetime:
    return NOW


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


# ---- a hostile workspace's answers: data, not code (issue 19) --------------------------------------------------


def _jwt_with(payload: str) -> str:
    return f"e30.{base64.urlsafe_b64encode(payload.encode()).rstrip(b'=').decode()}.c2ln"


def _instance_answering(token: object, expiration_time: object = None) -> ProvisionedInstance:
    ws = create_autospec(WorkspaceClient)
    ws.database.generate_database_credential.return_value = DatabaseCredential.from_dict(
        {"token": token, **({"expiration_time": expiration_time} if expiration_time is not None else {})}
    )
    return ProvisionedInstance(ws, "db", hosts=("db.example.com",), now=_now)


@pytest.mark.parametrize(
    ("token", "expiration_time"),
    [
        (_jwt_with('{"exp": 1e20}'), None),
        (_jwt_with('{"exp": 1e400}'), None),
        (_jwt_with('{"exp": ' + str(10**400) + "}"), None),
        (_jwt_with('{"exp": "soon"}'), None),
        (_jwt_with('{"exp": 4102444800}'), None),  # 2100: no credential lives that long
        ("opaque", "2100-01-01T00:00:00Z"),
        ("opaque", "9999-12-31T23:59:59Z"),
        ("opaque", "1970-01-01T00:00:00Z"),
        ("opaque", 5),
        ("opaque", {"seconds": 5}),
        ("opaque", "2026-11-29T13:00:00" + "0" * 10_000 + "Z"),
    ],
)
def test_an_expiry_that_names_no_sane_time_is_an_unreadable_expiry(token, expiration_time):
    with pytest.raises(CredentialError, match="unreadable expiry") as failure:
        _instance_answering(token, expiration_time).fetch("u")
    assert failure.value.retryable
    assert len(str(failure.value)) < 300


def test_the_api_expiry_decides_and_the_jwt_is_not_read_when_it_is_given():
    token = _jwt_with('{"exp": 4102444800}')  # a JWT claiming 2100
    credential = _instance_answering(token, "2026-11-29T13:00:00Z").fetch("u")
    assert credential.expires_at == NOW + timedelta(hours=1)


def test_a_postgres_expire_time_that_is_no_timestamp_is_an_unreadable_expiry():
    ws = create_autospec(WorkspaceClient)
    ws.postgres.generate_database_credential.side_effect = lambda **_: PostgresCredential.from_dict(
        {"token": "t", "expire_time": "garbage"}
    )
    source = AutoscalingEndpoint(ws, "projects/p/branches/b/endpoints/e", hosts=("ep.example.com",), now=_now)
    with pytest.raises(CredentialError, match="unreadable expiry"):
        source.fetch("u")


def test_a_deeply_nested_payload_is_never_parsed():
    """50,000 arrays deep made `json` raise RecursionError; now such a token is refused for its size, and one nested
    2,000 deep (short enough to take) is read as an opaque token: no claims, the default lifetime."""
    with pytest.raises(CredentialError, match="unusable credential"):
        _instance_answering(_jwt_with('{"x": ' + "[" * 50_000 + "]" * 50_000 + "}")).fetch("u")
    credential = _instance_answering(_jwt_with('{"exp": 1, "x": ' + "[" * 2_000 + "]" * 2_000 + "}")).fetch("u")
    assert credential.expires_at == NOW + timedelta(hours=1)


def test_a_ten_megabyte_token_is_refused():
    with pytest.raises(CredentialError, match="unusable credential"):
        _instance_answering("a" * 10_000_000, "2026-11-29T13:00:00Z").fetch("u")


@pytest.mark.parametrize(
    "host",
    [
        "*",
        "db*.example.com",
        "db.example.com\x1b]0;x\x07",
        " db",
        "db\n",
        "db example.com",  # spaces, markup: no server libpq could reach, only text someone wants written
        "<b>db</b>.example.com",
        "db.example.com/../x",
    ],
)
def test_a_host_with_a_wildcard_control_character_or_markup_is_refused(host):
    ws = create_autospec(WorkspaceClient)
    ws.database.get_database_instance.return_value = DatabaseInstance(name="db", read_write_dns=host)
    ws.database.generate_database_credential.return_value = DatabaseCredential(
        token="t", expiration_time="2026-11-29T13:00:00Z"
    )
    with pytest.raises(CredentialError, match="unusable host") as failure:
        ProvisionedInstance(ws, "db", now=_now).fetch("u")
    assert "\x1b" not in str(failure.value) and "\n" not in str(failure.value)


@pytest.mark.parametrize("host", ["instance-1.database.cloud.databricks.com", "127.0.0.1", "[::1]", "ep_x-1.example"])
def test_a_host_name_or_address_is_taken(host):
    ws = create_autospec(WorkspaceClient)
    ws.database.get_database_instance.return_value = DatabaseInstance(name="db", read_write_dns=host)
    ws.database.generate_database_credential.return_value = DatabaseCredential(
        token="t", expiration_time="2026-11-29T13:00:00Z"
    )
    assert ProvisionedInstance(ws, "db", now=_now).fetch("u").hosts == (host,)


@pytest.mark.parametrize("user", ["*", "a*@example.com", "ana\x1b[2J@example.com", "ana\r"])
def test_a_user_name_with_a_wildcard_or_control_character_is_refused(user):
    with pytest.raises(CredentialError, match="unusable user name") as failure:
        _instance_answering("t", "2026-11-29T13:00:00Z").fetch(user)
    assert "\x1b" not in str(failure.value) and "\r" not in str(failure.value)


def test_the_identity_a_wrong_credential_names_is_shown_escaped():
    token = _jwt_with(json.dumps({"sub": "eve\x1b]8;;http://evil\x07@example.com"}))
    with pytest.raises(CredentialError, match=r"not for ana@example\.com") as failure:
        _instance_answering(token, "2026-11-29T13:00:00Z").fetch("ana@example.com")
    assert "\x1b" not in str(failure.value) and "\x07" not in str(failure.value)


_TIMESTAMPS = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.datetimes(timezones=st.just(timezone.utc)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.integers(),
    st.floats(),
)
_CLAIMS = st.one_of(st.integers(), st.floats(), st.text(max_size=10), st.booleans(), st.none())


@settings(max_examples=400, deadline=None)
@given(api_value=_TIMESTAMPS, exp=_CLAIMS, with_exp=st.booleans())
def test_no_exception_but_an_unreadable_expiry_escapes_the_expiry_parser(api_value, exp, with_exp):
    token = _jwt_with(json.dumps({"exp": exp} if with_exp else {}))
    try:
        expires_at = credential_expiry(api_value, token, now=NOW)
    except UnreadableExpiry:
        return
    assert abs(expires_at - NOW) <= MAX_LIFETIME


@settings(max_examples=200, deadline=None)
@given(token=st.text(min_size=1, max_size=300), expiration_time=_TIMESTAMPS)
def test_no_exception_but_a_credential_error_escapes_a_fetch(token, expiration_time):
    try:
        credential = _instance_answering(token, expiration_time).fetch("ana@example.com")
    except CredentialError:
        return
    assert NOW < credential.expires_at <= NOW + MAX_LIFETIME
