"""What can be told about a token without trusting it: its fingerprint and its JWT expiry.

Stdlib only (the long-lived scheduler uses it to check `.pgpass` every minute without the SDK). The claims
are read, never verified: a client cannot verify them, and they only schedule refreshes.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

from databricks.labs.oauth_rotator.pgpass_fields import token_fingerprint  # noqa: F401  # pylint: disable=unused-import  # re-exported

MAX_PAYLOAD_CHARS = 8192
"""The longest JWT payload (base64url) read. A Lakebase credential's is a few hundred characters; a workspace that
answers with megabytes gets no claims read, rather than a parser's time and memory."""
MAX_PAYLOAD_DEPTH = 16
"""The deepest nesting of arrays and objects read in a payload: `json` recurses once per level, and a payload
nested 50,000 deep would raise `RecursionError` (claims are a flat object)."""
MAX_CLAIM_SECONDS = 100_000_000_000
"""The largest time claim taken as a time (the year 5138): beyond it `exp` is no time a credential expires."""


def _nesting_depth(text: str, limit: int) -> int:
    """How deep arrays and objects nest in the JSON `text` (strings skipped), counting up to `limit + 1`."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT-shaped token, or {} when it is not one, or is too large or too deeply nested to read.

    Never raises: the token comes from the workspace's answer (or from a `.pgpass` line anyone may have written).
    """
    if token.count(".") != 2:
        return {}
    payload = token.split(".")[1]
    if len(payload) > MAX_PAYLOAD_CHARS:
        return {}
    try:
        text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8")
        brackets = text.count("[") + text.count("{")
        if brackets > MAX_PAYLOAD_DEPTH and _nesting_depth(text, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH:
            return {}
        claims = json.loads(text)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return {}
    return claims if isinstance(claims, dict) else {}


def claim_seconds(value: Any) -> float | None:
    """A time claim (`exp`, `iat`: seconds since the epoch) as a float, or None when it is no usable time: not a
    number, a boolean, NaN or infinite, negative, or beyond `MAX_CLAIM_SECONDS` (`1e20`, `10**400`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return float(value) if 0 <= value <= MAX_CLAIM_SECONDS else None  # compared as int: 10**400 is no float
    return value if math.isfinite(value) and 0 <= value <= MAX_CLAIM_SECONDS else None


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim (seconds since the epoch) of a JWT-shaped token, or None when it has no usable one."""
    return claim_seconds(jwt_claims(token).get("exp"))


def jwt_issued_at(token: str) -> float | None:
    """The `iat` claim (seconds since the epoch) of a JWT-shaped token, or None when it has no usable one."""
    return claim_seconds(jwt_claims(token).get("iat"))


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def _is_identity(value: str) -> bool:
    """An email (a user) or a UUID (a service principal's application id): what Lakebase roles are named."""
    return "@" in value or bool(_UUID.match(value))


def issued_to_someone_else(token: str, user: str) -> str | None:
    """The identity a credential names in its `sub` claim when that is plainly not `user`, else None.

    Only two identities of the kinds Lakebase roles are named after (emails, application ids) are compared: a
    `sub` in any other form (an opaque id) says nothing about the role, and such a credential is accepted.
    """
    subject = jwt_claims(token).get("sub")
    if not isinstance(subject, str) or not subject or not user:
        return None
    if subject.lower() == user.lower() or not (_is_identity(subject) and _is_identity(user)):
        return None
    return subject
