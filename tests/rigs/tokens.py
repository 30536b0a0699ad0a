"""JWT-shaped tokens for the fake workspace, and the registry of who holds which one.

The tokens look like real Databricks tokens (three base64url parts, a payload with ``sub``, ``iat`` and a
real ``exp``) but the signature is random bytes: nothing verifies it. Every token is minted at run time.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

CredentialKind = Literal["database", "postgres"]


@dataclass(frozen=True)
class IssuedCredential:
    """One database credential the fake workspace handed out."""

    user: str
    """The role the credential logs in as (the JWT ``sub``)."""
    token: str
    expires_at: datetime
    """When the credential stops working (UTC), as the response and the JWT ``exp`` say."""
    kind: CredentialKind
    """``database`` for ``w.database`` (Provisioned), ``postgres`` for ``w.postgres`` (Autoscaling)."""
    target: str
    """The instance names (comma-separated) or the endpoint resource name."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_jwt(
    subject: str,
    *,
    expires_at: datetime,
    issuer: str,
    issued_at: datetime | None = None,
    claims: Mapping[str, Any] | None = None,
) -> str:
    """Returns ``base64url(header).base64url(payload).base64url(random signature)`` for ``subject``."""
    now = issued_at or datetime.now(timezone.utc)
    header = {"alg": "RS256", "typ": "JWT", "kid": secrets.token_hex(8)}
    payload: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": secrets.token_hex(16),
        **(claims or {}),
    }
    parts = [
        _b64url(json.dumps(header, separators=(",", ":")).encode()),
        _b64url(json.dumps(payload, separators=(",", ":")).encode()),
        _b64url(secrets.token_bytes(256)),
    ]
    return ".".join(parts)


def jwt_claims(token: str) -> dict[str, Any]:
    """Decodes the payload of a JWT-shaped token without verifying anything (for assertions in tests)."""
    payload = token.split(".")[1]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if not isinstance(decoded, dict):
        raise ValueError("JWT payload is not an object")
    return decoded


def rfc3339(moment: datetime) -> str:
    """Formats an aware datetime as RFC 3339 UTC with a ``Z`` suffix, whole seconds: ``2026-01-02T03:04:05Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _AccessToken:
    user: str | None  # None: the workspace's default user
    client_id: str | None  # None: a PAT
    expires_at: datetime


@dataclass
class _Client:
    secret: str
    user: str | None


class Identities:
    """Who may call the fake workspace: service principals, PATs and the OAuth tokens issued to them.

    A user of ``None`` stands for the workspace's default user name, resolved by the caller at request time.
    It also remembers every secret it ever saw, for leak scans. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._tokens: dict[str, _AccessToken] = {}
        self._ever: set[str] = set()

    def add_client(self, client_id: str, secret: str, user: str | None) -> None:
        """Adds (or replaces) a service principal and its secret."""
        with self._lock:
            self._clients[client_id] = _Client(secret, user)
            self._ever.add(secret)

    def revoke_client(self, client_id: str) -> None:
        """Deletes a service principal's secret and invalidates every OAuth token issued to it."""
        with self._lock:
            self._clients.pop(client_id, None)
            for token in [t for t, v in self._tokens.items() if v.client_id == client_id]:
                del self._tokens[token]

    def add_pat(self, token: str, user: str | None) -> None:
        """Registers a personal access token that never expires."""
        with self._lock:
            self._tokens[token] = _AccessToken(user, None, datetime.max.replace(tzinfo=timezone.utc))
            self._ever.add(token)

    def issue(self, client_id: str, secret: str, ttl: timedelta, issuer: str) -> str | None:
        """Mints an OAuth access token for a client whose secret matches, else returns None."""
        with self._lock:
            client = self._clients.get(client_id)
        if client is None or not hmac.compare_digest(client.secret.encode(), secret.encode()):
            return None
        expires_at = datetime.now(timezone.utc) + ttl
        token = mint_jwt(
            client_id, expires_at=expires_at, issuer=issuer, claims={"aud": client_id, "scope": "all-apis"}
        )
        with self._lock:
            self._tokens[token] = _AccessToken(client.user, client_id, expires_at)
            self._ever.add(token)
        return token

    def grant(self, client_id: str, user: str | None, ttl: timedelta, issuer: str) -> str:
        """Mints an OAuth access token for a client that proved itself another way (a federated subject token)."""
        expires_at = datetime.now(timezone.utc) + ttl
        token = mint_jwt(
            client_id, expires_at=expires_at, issuer=issuer, claims={"aud": client_id, "scope": "all-apis"}
        )
        with self._lock:
            self._tokens[token] = _AccessToken(user, client_id, expires_at)
            self._ever.add(token)
        return token

    def lookup(self, token: str) -> tuple[bool, str | None]:
        """Returns (valid, user) for a bearer token; invalid when unknown, expired or revoked."""
        with self._lock:
            found = self._tokens.get(token)
        if found is None or found.expires_at <= datetime.now(timezone.utc):
            return False, None
        return True, found.user

    def remember(self, secret: str) -> None:
        """Adds a secret handed out elsewhere (a database credential) to ``ever_seen``."""
        with self._lock:
            self._ever.add(secret)

    def ever_seen(self) -> set[str]:
        """Every client secret, PAT, OAuth token and remembered credential, including revoked and expired ones."""
        with self._lock:
            return self._ever - {""}
