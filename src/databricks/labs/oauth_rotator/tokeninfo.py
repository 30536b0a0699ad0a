"""What can be told about a token without trusting it: its fingerprint and its JWT expiry.

Stdlib only (the long-lived scheduler uses it to check `.pgpass` every minute without the SDK). The claims
are read, never verified: a client cannot verify them, and they only schedule refreshes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json


def token_fingerprint(token: str) -> str:
    """A short SHA-256 digest: enough to recognise a token, useless to log in with."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim (seconds since the epoch) of a JWT-shaped token, or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return float(exp)
    return None
