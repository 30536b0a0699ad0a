"""Workload identity federation as the fake workspace does it: service principal federation policies, the subject
tokens "the identity provider" signed (a Kubernetes cluster's projected service-account tokens), and the checks
the RFC 8693 token exchange at ``/oidc/v1/token`` makes before it issues an OAuth token."""

from __future__ import annotations

import base64
import binascii
import json
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tests.rigs.tokens import mint_jwt

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"


@dataclass(frozen=True)
class Policy:
    """A service principal federation policy: who may log in as the principal, and its SCIM ``userName``."""

    issuer: str
    subject: str
    audience: str
    user_name: str


@dataclass(frozen=True)
class Refusal:
    """An OAuth error answer: status, ``error`` and ``error_description``."""

    status: int
    error: str
    description: str


class Federation:
    """Policies per service principal (client id) and the subject tokens the identity providers signed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policies: dict[str, Policy] = {}
        self._signed: set[str] = set()

    def federate(self, client_id: str, policy: Policy) -> None:
        with self._lock:
            self._policies[client_id] = policy

    def sign(self, *, issuer: str, subject: str, audience: str, expires_in: float) -> str:
        """A JWT as `issuer` signs it: only tokens made here verify, as only what the issuer's keys signed does."""
        expires_at = datetime.fromtimestamp(math.floor(time.time() + expires_in), tz=timezone.utc)
        token = mint_jwt(subject, expires_at=expires_at, issuer=issuer, claims={"aud": audience})
        with self._lock:
            self._signed.add(token)
        return token

    def check(self, form: Mapping[str, str]) -> Policy | Refusal:
        """The policy a token-exchange request logs in under, or why it is refused (as the real exchange does: a
        missing subject token, an unknown client, a signature, an expiry or claims that do not match)."""
        subject_token = form.get("subject_token", "")
        if form.get("subject_token_type") != JWT_TOKEN_TYPE or not subject_token:
            return Refusal(400, "invalid_request", "subject_token (a JWT) is required")
        with self._lock:
            policy = self._policies.get(form.get("client_id", ""))
            signed = subject_token in self._signed
        if policy is None:
            return Refusal(401, "invalid_client", "no federation policy for this client_id")
        claims = _claims(subject_token) if signed else None
        if claims is None:
            return Refusal(400, "invalid_grant", "the subject token's signature does not verify")
        if float(claims.get("exp", 0)) <= time.time():
            return Refusal(400, "invalid_grant", "the subject token has expired")
        if (claims.get("iss"), claims.get("sub"), claims.get("aud")) != (
            policy.issuer,
            policy.subject,
            policy.audience,
        ):
            return Refusal(400, "invalid_grant", "the subject token matches no federation policy")
        return policy


def _claims(token: str) -> dict[str, Any] | None:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None
