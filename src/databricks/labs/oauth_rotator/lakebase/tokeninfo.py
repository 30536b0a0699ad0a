"""What can be told about a token without trusting it: its fingerprint and its JWT expiry.

Stdlib only (the long-lived scheduler uses it to check `.pgpass` every minute without the SDK). The claims
are read, never verified: a client cannot verify them, and they only schedule refreshes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

try:
    # The interpreter's own SHA-256 (`_sha2` from Python 3.12, `_sha256` before), not hashlib's: hashlib loads
    # OpenSSL's libcrypto, about 3.5 MiB resident, into the long-lived scheduler, which fingerprints `.pgpass`
    # lines every minute and otherwise stays under twice the size of an idle Python. The digest is the same.
    from _sha2 import sha256  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # Python 3.10 and 3.11
    try:
        from _sha256 import sha256  # type: ignore[import-not-found, no-redef, unused-ignore]
    except ImportError:  # a build without the built-in hashes
        from hashlib import sha256  # type: ignore[assignment, unused-ignore]


def token_fingerprint(token: str) -> str:
    """A short SHA-256 digest: enough to recognise a token, useless to log in with."""
    return sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT-shaped token, or {} when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim (seconds since the epoch) of a JWT-shaped token, or None."""
    exp = jwt_claims(token).get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return float(exp)
    return None


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
