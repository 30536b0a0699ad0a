"""When a credential expires: the API's field, else the JWT's `exp`, else an hour; never outside the sane window."""

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from databricks.labs.oauth_rotator.lakebase.expiry import (
    MAX_LIFETIME,
    UnreadableExpiry,
    credential_expiry,
    parse_timestamp,
    show_value,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


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
    exp = datetime(2026, 11, 29, 14, 5, tzinfo=timezone.utc)
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp.timestamp()}).encode()).decode().rstrip("=")
    assert credential_expiry(None, f"e30.{payload}.c2ln", now=NOW) == exp
    assert credential_expiry(None, "opaque", now=NOW) == NOW + timedelta(hours=1)


@pytest.mark.parametrize("api_value", ["2026-11-29T11:59:59Z", "2026-11-29T12:00:00Z"])
def test_an_expiry_in_the_past_is_read_as_given_for_the_caller_to_refuse(api_value):
    assert credential_expiry(api_value, "x", now=NOW) <= NOW


def test_an_expiry_just_inside_the_window_is_taken_and_just_outside_is_not():
    inside = NOW + MAX_LIFETIME
    assert credential_expiry(inside.strftime("%Y-%m-%dT%H:%M:%SZ"), "x", now=NOW) == inside
    outside = NOW + MAX_LIFETIME + timedelta(seconds=1)
    with pytest.raises(UnreadableExpiry, match="more than 24 h from now"):
        credential_expiry(outside.strftime("%Y-%m-%dT%H:%M:%SZ"), "x", now=NOW)


def test_a_jwt_without_exp_lives_the_default_hour_and_an_empty_api_value_counts_as_none():
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "u"}).encode()).decode().rstrip("=")
    assert credential_expiry("", f"e30.{payload}.c2ln", now=NOW) == NOW + timedelta(hours=1)


def test_an_unusable_value_is_shown_short():
    assert show_value("x" * 100) == repr("x" * 100)[:57] + "..."
    assert show_value(5) == "5"
