"""When a Lakebase credential expires: the API's field, else the JWT `exp` claim, else issue time plus an hour,
and never a time outside a sane window around now."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from databricks.labs.oauth_rotator.lakebase.tokeninfo import claim_seconds, jwt_claims

DEFAULT_LIFETIME = timedelta(minutes=60)
"""Assumed lifetime of a credential that states no expiry and is not a JWT (Lakebase credentials last an hour)."""

_FRACTION = re.compile(r"\.(\d+)")


MAX_LIFETIME = timedelta(hours=24)
"""The sane window for an expiry: at most this far from the issue time, either way (Lakebase credentials live an
hour). An expiry beyond it (a JWT `exp` in 2100, `1e20`) is no time we schedule by: "unreadable expiry"."""


class UnreadableExpiry(ValueError):
    """The workspace's answer says no usable time at which the credential expires."""


def parse_timestamp(value: str) -> datetime:
    """RFC 3339 to an aware datetime, on Python 3.10 too (whose `fromisoformat` rejects `Z` and nanoseconds)."""
    if len(value) > 64:
        raise ValueError("not an RFC 3339 timestamp (too long)")
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def show_value(value: Any) -> str:
    """`repr(value)`, cut to 60 characters: how an unusable value from the workspace appears in a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _api_expiry(value: Any) -> datetime:
    """The expiry the API gave: an RFC 3339 string (`w.database`) or a protobuf Timestamp (`w.postgres`)."""
    try:
        if isinstance(value, str):
            return parse_timestamp(value)
        if hasattr(value, "ToDatetime"):
            converted = value.ToDatetime(tzinfo=timezone.utc)
            if isinstance(converted, datetime):
                return converted
    except (ValueError, OverflowError, OSError, TypeError, AttributeError) as err:
        raise UnreadableExpiry(f"unreadable expiry {show_value(value)}") from err
    raise UnreadableExpiry(f"unreadable expiry {show_value(value)}")


def _jwt_expiry(token: str, *, now: datetime) -> datetime:
    """The JWT `exp` claim, else (an opaque token, or a JWT without `exp`) issue time plus an hour."""
    claims = jwt_claims(token)
    if "exp" not in claims:
        return now + DEFAULT_LIFETIME
    seconds = claim_seconds(claims["exp"])
    if seconds is None:
        raise UnreadableExpiry(f"unreadable expiry (JWT exp {show_value(claims['exp'])})")
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def credential_expiry(api_value: Any, token: str, *, now: datetime) -> datetime:
    """The expiry from the API field, else the JWT `exp` claim, else issue time plus an hour.

    Raises `UnreadableExpiry` (a `ValueError`) for an answer that names no usable time: an API field that is not a
    timestamp, a JWT `exp` that is not a finite number, or either more than `MAX_LIFETIME` from `now`. The JWT is
    read only when the API gives no expiry: the API's answer is what the server enforces.
    """
    given = api_value is not None and api_value != ""
    expires_at = _api_expiry(api_value) if given else _jwt_expiry(token, now=now)
    if abs(expires_at - now) > MAX_LIFETIME:
        raise UnreadableExpiry(
            f"unreadable expiry {expires_at.isoformat()} (more than {MAX_LIFETIME.total_seconds() / 3600:g} h from now)"
        )
    return expires_at
