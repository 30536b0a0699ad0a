"""A fake Databricks workspace: the few REST routes the SDK and oauth-rotator call, on 127.0.0.1.

The real ``databricks-sdk`` authenticates against it (OAuth M2M or a PAT) and calls the Lakebase APIs
(``w.database`` for Provisioned instances, ``w.postgres`` for Autoscaling endpoints). Fault knobs make the
next N matching requests fail in a chosen way, so tests can exercise retries, bad answers and outages, down to
the socket: an answer that never comes, one that trickles in a byte a second, a connection reset.
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
import logging
import math
import re
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from databricks.sdk.config import Config

from tests.rigs.federation import TOKEN_EXCHANGE, Federation, Policy, Refusal
from tests.rigs.tokens import (
    CredentialKind,
    Identities,
    IssuedCredential,
    mint_jwt,
    rfc3339,
)

logger = logging.getLogger(__name__)

DEMO_INSTANCE = "demo-instance"
"""The Provisioned instance the pytest fixtures and the demo add (``read_write_dns`` 127.0.0.1)."""
DEMO_ENDPOINT = "projects/demo/branches/main/endpoints/primary"
"""The Autoscaling endpoint the pytest fixtures add (host 127.0.0.2, a distinct ``.pgpass`` host key)."""
OTHER_USER = "someone-else@example.com"
"""The JWT subject of credentials minted under ``wrong_user_next``."""

_ERROR_CODES = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
"""``error_code`` per status; none of these is in the SDK's ``ERROR_CODE_MAPPING`` except the 400/404/429
ones (subclasses of the status's class), so the SDK raises the class its ``STATUS_CODE_MAPPING`` gives."""
_CREDENTIAL_FIELDS = {
    "database": frozenset({"instance_names", "request_id", "claims"}),
    "postgres": frozenset({"endpoint", "claims", "expire_time", "ttl", "group_name"}),
}
"""The request fields of each credential API, over every supported SDK (``group_name``: 0.120.0 and 0.167.0 send it
when asked, 0.150.0-0.162.0 cannot). Stricter than it needs to be on purpose: an unknown field is a 400, so a field
that an SDK or the product sends by mistake fails a test rather than passing unnoticed."""
_ENDPOINT_NAME = re.compile(r"projects/([^/]+)/branches/([^/]+)/endpoints/([^/]+)")
_RouteHandler = Callable[["_Request", "re.Match[str]", str], "_Response"]


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    seconds_per_byte: float = 0.0
    """Above 0, the whole answer, status line first, is sent one byte at a time at this pace."""
    reset: bool = False
    """Send nothing: reset the connection (TCP RST)."""


@dataclass
class _Fault:
    kind: str  # fail | malformed | hang | trickle | reset | empty_token | expired_token | wrong_user | claims | expiry
    remaining: int
    path_prefix: str
    status: int = 200
    body: str | None = None
    retry_after: int | None = None
    seconds_per_byte: float = 0.0
    value: Any = None
    """What a crafting fault puts in the answer: JWT claims (``claims``), the expiry field's value (``expiry``)."""


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> _Response:
    return _Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


def _api_error(
    status: int, message: str, error_code: str | None = None, headers: Mapping[str, str] | None = None
) -> _Response:
    """A Databricks REST error body: ``{"error_code": ..., "message": ...}``."""
    code = error_code or _ERROR_CODES.get(status)
    return _json(status, {"error_code": code, "message": message} if code else {"message": message}, headers)


def _oauth_error(status: int, error: str, description: str, headers: Mapping[str, str] | None = None) -> _Response:
    return _json(status, {"error": error, "error_description": description}, headers)


class _Catalog:
    """Provisioned instances and Autoscaling endpoints (with the projects and branches they imply)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.instances: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}

    def instance(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self.instances.get(name)

    def endpoint(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self.endpoints.get(name)

    def put(self, table: dict[str, dict[str, Any]], name: str, resource: dict[str, Any] | None) -> None:
        with self._lock:
            if resource is None:
                table.pop(name, None)
            else:
                table[name] = {k: v for k, v in resource.items() if v is not None}

    def list_instances(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self.instances[name] for name in sorted(self.instances)]

    def postgres(self, owner: str) -> dict[str, dict[str, Any]]:
        """Endpoints plus the projects and branches they imply, keyed by resource name."""
        with self._lock:
            resources = dict(self.endpoints)
        for endpoint in list(resources.values()):
            branch = endpoint["parent"]
            project, _, branch_id = branch.partition("/branches/")
            status = {"current_state": "READY", "branch_id": branch_id}
            resources.setdefault(branch, {"name": branch, "parent": project, "branch_id": branch_id, "status": status})
            project_id = project.split("/")[1]
            status = {"owner": owner, "display_name": project_id}
            resources.setdefault(project, {"name": project, "project_id": project_id, "status": status})
        return resources


class FakeWorkspace:  # pylint: disable=too-many-public-methods  # one method per state change and fault knob
    """A fake workspace on ``http://127.0.0.1:PORT``; use as a context manager or ``start()``/``stop()``.

    Knobs a test may set at any time: ``user_name``; ``ttl_seconds`` (database credentials; a ``w.postgres``
    request asking for a shorter ``ttl`` gets that); ``oauth_ttl_seconds`` (workspace OAuth tokens);
    ``omit_expiry`` (credentials without ``expiration_time``/``expire_time``, the JWT ``exp`` only);
    ``delay_seconds`` before every response under ``delay_path_prefix`` (default: every path; lowering it
    releases requests already waiting);
    ``on_credential(user, token, expires_at)``, called before a credential response is sent (if it raises,
    the client gets a 500); ``token_length`` (credentials of exactly that many characters: the JWT's signature
    part is padded or cut, as claims of another size would make it).
    """

    oauth_ttl_seconds: int = 3600
    omit_expiry: bool = False
    delay_seconds: float = 0.0
    delay_path_prefix: str = ""
    on_credential: Callable[[str, str, datetime], None] | None = None
    token_length: int | None = None
    _LIST = re.compile(r"/api/2\.0/postgres/(projects(?:/[^/]+/branches(?:/[^/]+/endpoints)?)?)")
    _GET = re.compile(r"/api/2\.0/postgres/(projects/[^/]+(?:/branches/[^/]+(?:/endpoints/[^/]+)?)?)")

    def __init__(
        self,
        *,
        user_name: str = "someone@example.com",
        client_id: str = "fake-client-id",
        client_secret: str | None = None,
        ttl_seconds: int = 3600,
        port: int = 0,
    ) -> None:
        self.user_name = user_name
        self.client_id = client_id
        self.client_secret = client_secret or f"dose{secrets.token_hex(16)}"
        self.ttl_seconds = ttl_seconds
        self.issued: list[IssuedCredential] = []
        self.calls: collections.Counter[str] = collections.Counter()
        self._lock = threading.RLock()
        self._faults: list[_Fault] = []
        self._catalog = _Catalog()
        self._identities = Identities()
        self._identities.add_client(client_id, self.client_secret, None)
        self._federation = Federation()
        self._listener = _Listener(self._handle, port)
        self._routes: list[tuple[str, re.Pattern[str], _RouteHandler]] = [
            ("GET", re.compile(r"/api/2\.0/preview/scim/v2/Me"), self._me),
            ("GET", re.compile(r"/api/2\.0/database/instances"), self._list_instances),
            ("GET", re.compile(r"/api/2\.0/database/instances/([^/]+)"), self._get_instance),
            ("POST", re.compile(r"/api/2\.0/database/credentials"), self._database_credential),
            ("POST", re.compile(r"/api/2\.0/postgres/credentials"), self._postgres_credential),
            ("GET", self._LIST, self._list_postgres),
            ("GET", self._GET, self._get_postgres),
        ]

    # ---- lifecycle -------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port; 0 until the first ``start()`` when constructed with ``port=0``."""
        return self._listener.port

    @property
    def host(self) -> str:
        """The workspace URL, ``http://127.0.0.1:PORT`` (the port is fixed by the first ``start()``)."""
        if not self.port:
            raise RuntimeError("FakeWorkspace has no port before start()")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeWorkspace:
        """Starts serving in a background thread; a restart after ``stop()`` binds the same port again."""
        self._listener.start()
        return self

    def stop(self) -> None:
        """Closes the port (clients then get "connection refused"); requests still waiting in a delay are dropped."""
        self._listener.stop()

    def __enter__(self) -> FakeWorkspace:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def sdk_config(self, *, token: str | None = None, **overrides: Any) -> Config:
        """A ``databricks.sdk.config.Config`` for this workspace: OAuth M2M as the default service principal, or
        PAT auth when ``token`` is given; ``http_timeout_seconds=5, retry_timeout_seconds=10`` unless overridden.
        ``auth_type`` is explicit, so ``DATABRICKS_*`` variables in the environment cannot change the method.
        """
        kwargs: dict[str, Any] = {"host": self.host, "http_timeout_seconds": 5, "retry_timeout_seconds": 10}
        if token is not None:
            kwargs.update(auth_type="pat", token=token)
        else:
            kwargs.update(auth_type="oauth-m2m", client_id=self.client_id, client_secret=self.client_secret)
        kwargs.update(overrides)
        return Config(**kwargs)

    # ---- state -------------------------------------------------------------------------------------------------

    def add_instance(
        self,
        name: str,
        *,
        read_write_dns: str = "127.0.0.1",
        read_only_dns: str | None = None,
        state: str = "AVAILABLE",
    ) -> None:
        """Adds (or replaces) a Provisioned database instance, as ``w.database.get_database_instance`` shows it."""
        instance = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "state": state,
            "read_write_dns": read_write_dns,
            "read_only_dns": read_only_dns,
            "pg_version": "PG_VERSION_16",
            "capacity": "CU_1",
            "node_count": 1,
            "creator": self.user_name,
            "creation_time": rfc3339(datetime.now(timezone.utc)),
            "stopped": state == "STOPPED",
            "effective_stopped": state == "STOPPED",
        }
        self._catalog.put(self._catalog.instances, name, instance)

    def remove_instance(self, name: str) -> None:
        """Removes an instance; every route then answers 404 for it."""
        self._catalog.put(self._catalog.instances, name, None)

    def add_endpoint(
        self,
        name: str,
        *,
        host: str = "127.0.0.1",
        read_only_host: str | None = None,
        read_write_pooled_host: str | None = None,
        read_only_pooled_host: str | None = None,
        endpoint_type: str = "ENDPOINT_TYPE_READ_WRITE",
        state: str = "ACTIVE",
    ) -> None:
        """Adds an Autoscaling endpoint ``projects/P/branches/B/endpoints/E``; its project and branch appear too."""
        match = _ENDPOINT_NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"not an endpoint resource name: {name}")
        hosts = {
            "host": host,
            "read_only_host": read_only_host,
            "read_write_pooled_host": read_write_pooled_host,
            "read_only_pooled_host": read_only_pooled_host,
        }
        endpoint = {
            "name": name,
            "parent": name.rsplit("/endpoints/", 1)[0],
            "endpoint_id": match.group(3),
            "uid": str(uuid.uuid4()),
            "create_time": rfc3339(datetime.now(timezone.utc)),
            "spec": {"endpoint_type": endpoint_type},
            "status": {
                "endpoint_id": match.group(3),
                "endpoint_type": endpoint_type,
                "current_state": state,
                "hosts": {k: v for k, v in hosts.items() if v is not None},
            },
        }
        self._catalog.put(self._catalog.endpoints, name, endpoint)

    def remove_endpoint(self, name: str) -> None:
        """Removes an endpoint (its project and branch go too when it was their last endpoint)."""
        self._catalog.put(self._catalog.endpoints, name, None)

    def add_pat(self, token: str, *, user_name: str | None = None) -> None:
        """Accepts ``Authorization: Bearer <token>`` as ``user_name`` (default: the workspace's ``user_name``)."""
        self._identities.add_pat(token, user_name)

    def add_client(self, client_id: str, client_secret: str, *, user_name: str) -> None:
        """Adds a service principal; ``user_name`` is what SCIM ``Me`` returns for it (its application id)."""
        self._identities.add_client(client_id, client_secret, user_name)

    def revoke_client(self, client_id: str) -> None:
        """Deletes a service principal's secret and invalidates every OAuth token issued to it at once."""
        self._identities.revoke_client(client_id)

    def federate(
        self, client_id: str, *, issuer: str, subject: str, audience: str, user_name: str | None = None
    ) -> None:
        """A service principal federation policy: a subject token from `issuer` for `subject` and `audience`
        (a Kubernetes cluster's issuer, `system:serviceaccount:NS:NAME`) is exchanged for an OAuth token of
        `client_id`, whose SCIM ``Me`` is `user_name` (default: the client id, a service principal's application id)."""
        self._federation.federate(client_id, Policy(issuer, subject, audience, user_name or client_id))

    def subject_token(self, *, issuer: str, subject: str, audience: str, expires_in: float) -> str:
        """A JWT as the identity provider `issuer` signs it (a projected service-account token): the exchange
        accepts only tokens made here, as the real one accepts only what the issuer's keys verify."""
        token = self._federation.sign(issuer=issuer, subject=subject, audience=audience, expires_in=expires_in)
        self._identities.remember(token)
        return token

    def issued_secrets(self) -> set[str]:
        """Every token this workspace issued or accepted (OAuth, PATs, database credentials) and every client
        secret, including expired and revoked ones: what must never appear in logs or output."""
        return self._identities.ever_seen()

    # ---- fault knobs -------------------------------------------------------------------------------------------

    def fail_next(
        self,
        count: int,
        *,
        status: int = 503,
        body: str | None = None,
        path_prefix: str = "/api/",
        retry_after: int | None = None,
    ) -> None:
        """The next ``count`` requests under ``path_prefix`` get ``status`` with ``body`` (default: a Databricks
        error JSON, or an OAuth error JSON under ``/oidc/``) and, if given, a ``Retry-After`` header.

        Every knob takes ``count=0`` to cancel what is left of its earlier calls (same ``path_prefix``)."""
        self._add_fault(_Fault("fail", count, path_prefix, status, body, retry_after))

    def malformed_next(self, count: int, *, path_prefix: str = "/api/") -> None:
        """The next ``count`` requests under ``path_prefix`` get 200 with a body that is not valid JSON."""
        self._add_fault(_Fault("malformed", count, path_prefix))

    def hang_next(self, count: int, *, path_prefix: str = "/api/") -> None:
        """The next ``count`` requests under ``path_prefix`` are read and never answered: the connection stays open
        and silent until the workspace stops (an identity provider that accepts the connection and then hangs)."""
        self._add_fault(_Fault("hang", count, path_prefix))

    def trickle_next(self, count: int, *, path_prefix: str = "/api/", seconds_per_byte: float = 1.0) -> None:
        """The next ``count`` answers under ``path_prefix`` are sent one byte every ``seconds_per_byte``, status
        line first: no read timeout ever fires, and an answer takes many minutes (until the workspace stops)."""
        if seconds_per_byte <= 0:
            raise ValueError("seconds_per_byte must be positive")
        self._add_fault(_Fault("trickle", count, path_prefix, seconds_per_byte=seconds_per_byte))

    def reset_next(self, count: int, *, path_prefix: str = "/api/") -> None:
        """The next ``count`` requests under ``path_prefix`` are read, then the connection is reset (TCP RST)."""
        self._add_fault(_Fault("reset", count, path_prefix))

    def empty_token_next(self, count: int) -> None:
        """The next ``count`` credential responses carry ``"token": ""`` (``on_credential`` is not called)."""
        self._add_fault(_Fault("empty_token", count, "/api/"))

    def expired_token_next(self, count: int) -> None:
        """The next ``count`` credentials expired a minute ago (response field and JWT ``exp``)."""
        self._add_fault(_Fault("expired_token", count, "/api/"))

    def wrong_user_next(self, count: int) -> None:
        """The next ``count`` credentials are for ``OTHER_USER`` (JWT ``sub``; ``on_credential`` gets that user)."""
        self._add_fault(_Fault("wrong_user", count, "/api/"))

    def claims_next(self, count: int, **claims: Any) -> None:
        """The next ``count`` credentials carry these JWT claims (``exp=4102444800``, ``sub="*"``, any JSON value),
        over the real ones; the response's expiry field still says when the credential really expires, and the
        credential still works (``on_credential`` gets it, with its real expiry)."""
        self._add_fault(_Fault("claims", count, "/api/", value=dict(claims)))

    def expiry_next(self, count: int, value: Any) -> None:
        """The next ``count`` credential responses carry ``value`` (any JSON value; None: no field) as their
        ``expiration_time``/``expire_time`` instead of the real one; the JWT ``exp`` stays the real one."""
        self._add_fault(_Fault("expiry", count, "/api/", value=value))

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining < 0:
            raise ValueError("count must not be negative")
        with self._lock:
            if fault.remaining == 0:  # cancels what is left of earlier faults of this kind and prefix
                self._faults = [f for f in self._faults if (f.kind, f.path_prefix) != (fault.kind, fault.path_prefix)]
            else:
                self._faults.append(fault)

    def _take_fault(self, path: str, kinds: tuple[str, ...]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind not in kinds or not path.startswith(fault.path_prefix):
                    continue
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return replace(fault)
        return None

    # ---- request handling --------------------------------------------------------------------------------------

    def _handle(self, request: _Request, stopping: threading.Event) -> _Response | None:
        """Answers one request; None means "drop the connection" (the workspace is stopping)."""
        with self._lock:
            self.calls[f"{request.method} {request.path}"] += 1
        started = time.monotonic()
        while request.path.startswith(self.delay_path_prefix) and time.monotonic() - started < self.delay_seconds:
            if stopping.wait(0.05):  # short steps: lowering ``delay_seconds`` releases waiting requests
                return None
        if stopping.is_set():
            return None
        fault = self._take_fault(request.path, ("fail", "malformed", "hang", "trickle", "reset"))
        if fault is not None and fault.kind == "hang":
            stopping.wait()
            return None
        if fault is not None and fault.kind == "reset":
            return _Response(0, b"", reset=True)
        if fault is not None and fault.kind != "trickle":
            return self._fault_response(request.path, fault)
        try:
            response = self._route(request)
        except ValueError as e:
            response = _api_error(400, f"malformed request: {e}")
        return replace(response, seconds_per_byte=fault.seconds_per_byte) if fault is not None else response

    @staticmethod
    def _fault_response(path: str, fault: _Fault) -> _Response:
        if fault.kind == "malformed":
            return _Response(200, b'{"token": "truncated', {"Content-Type": "application/json"})
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        if fault.body is not None:
            return _Response(fault.status, fault.body.encode(), {"Content-Type": "application/json", **headers})
        if path.startswith("/oidc/"):
            error = "invalid_client" if fault.status in {401, 403} else "temporarily_unavailable"
            return _oauth_error(fault.status, error, "injected fault", headers)
        return _api_error(fault.status, "injected fault", headers=headers)

    def _route(self, request: _Request) -> _Response:
        path = request.path
        if request.method == "GET" and path == "/.well-known/databricks-config":
            return _json(200, {"oidc_endpoint": f"{self.host}/oidc", "workspace_id": "123", "cloud": "aws"})
        if request.method == "GET" and path == "/oidc/.well-known/oauth-authorization-server":
            oidc = f"{self.host}/oidc"
            endpoints = {"authorization_endpoint": f"{oidc}/v1/authorize", "token_endpoint": f"{oidc}/v1/token"}
            return _json(200, {"issuer": oidc, **endpoints})
        if request.method == "POST" and path == "/oidc/v1/token":
            return self._token(request)
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None or method != request.method:
                continue
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            valid, user = self._identities.lookup(value.strip()) if scheme.lower() == "bearer" else (False, None)
            if not valid:
                return _api_error(401, "Credential was not sent or was of an unsupported type for this API.")
            return handler(request, match, user or self.user_name)
        return _api_error(404, f"No API found for '{request.method} {path}'", "ENDPOINT_NOT_FOUND")

    def _token(self, request: _Request) -> _Response:
        form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") == TOKEN_EXCHANGE:
            return self._exchange(form)
        client_id, client_secret = _basic_auth(request.headers.get("authorization", ""))
        client_id = client_id or form.get("client_id", "")
        client_secret = client_secret or form.get("client_secret", "")
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
        ttl = self.oauth_ttl_seconds
        token = self._identities.issue(client_id, client_secret, timedelta(seconds=ttl), f"{self.host}/oidc")
        if token is None:
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        scope = form.get("scope", "all-apis")
        return _json(200, {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": scope})

    def _exchange(self, form: Mapping[str, str]) -> _Response:
        """RFC 8693 token exchange (workload identity federation): a subject token for an OAuth token of the
        service principal `client_id`, when a federation policy of that principal matches the token."""
        policy = self._federation.check(form)
        if isinstance(policy, Refusal):
            return _oauth_error(policy.status, policy.error, policy.description)
        ttl = self.oauth_ttl_seconds
        token = self._identities.grant(form["client_id"], policy.user_name, timedelta(seconds=ttl), f"{self.host}/oidc")
        with self._lock:
            self.calls["token exchange"] += 1
        payload = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": form.get("scope", "all-apis"),
        }
        return _json(200, {**payload, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})

    def _me(self, _request: _Request, _match: re.Match[str], user: str) -> _Response:
        me = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, user).int % 10**16),
            "userName": user,
            "displayName": user.split("@", 1)[0],
            "active": True,
        }
        if "@" in user:
            me["emails"] = [{"value": user, "primary": True, "type": "work"}]
        return _json(200, me)

    def _list_instances(self, request: _Request, _match: re.Match[str], _user: str) -> _Response:
        return _page(request, self._catalog.list_instances(), "database_instances")

    def _get_instance(self, _request: _Request, match: re.Match[str], _user: str) -> _Response:
        instance = self._catalog.instance(match.group(1))
        if instance is None:
            return _api_error(404, f"Database instance '{match.group(1)}' does not exist.")
        return _json(200, instance)

    def _list_postgres(self, request: _Request, match: re.Match[str], _user: str) -> _Response:
        parent, _, kind = match.group(1).rpartition("/")
        resources = self._catalog.postgres(self.user_name)
        if parent and parent not in resources:
            return _api_error(404, f"Resource '{parent}' does not exist.")
        prefix = f"{parent}/{kind}/" if parent else f"{kind}/"
        children = [r for n, r in sorted(resources.items()) if n.startswith(prefix) and "/" not in n[len(prefix) :]]
        return _page(request, children, kind)

    def _get_postgres(self, _request: _Request, match: re.Match[str], _user: str) -> _Response:
        resource = self._catalog.postgres(self.user_name).get(match.group(1))
        if resource is None:
            return _api_error(404, f"Resource '{match.group(1)}' does not exist.")
        return _json(200, resource)

    def _database_credential(self, request: _Request, _match: re.Match[str], user: str) -> _Response:
        body = json.loads(request.body or b"{}")
        problem = _body_problem(body, "database")
        if problem is not None:
            return _api_error(400, problem)
        names = body.get("instance_names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            return _api_error(400, "instance_names must be a non-empty list of instance names")
        unknown = [n for n in names if self._catalog.instance(n) is None]
        if unknown:
            return _api_error(404, f"Database instance '{unknown[0]}' does not exist.")
        return self._issue(user, "database", ",".join(names), None)

    def _postgres_credential(self, request: _Request, _match: re.Match[str], user: str) -> _Response:
        body = json.loads(request.body or b"{}")
        problem = _body_problem(body, "postgres")
        if problem is not None:
            return _api_error(400, problem)
        endpoint = body.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            return _api_error(400, "endpoint is required")
        ttl = _requested_ttl(body)
        if ttl is not None and not 300 <= ttl <= 3600:
            return _api_error(400, "ttl/expire_time must be between 300 and 3600 seconds from now")
        if self._catalog.endpoint(endpoint) is None:
            return _api_error(404, f"Endpoint '{endpoint}' does not exist.")
        group = body.get("group_name")
        # As Lakebase does: a credential for the group's Postgres role instead of the caller's own.
        return self._issue(group if isinstance(group, str) and group else user, "postgres", endpoint, ttl)

    def _issue(self, user: str, kind: CredentialKind, target: str, requested_ttl: int | None) -> _Response:
        fault = self._take_fault("/api/", ("empty_token", "expired_token", "wrong_user"))
        effect = fault.kind if fault else None
        ttl = self.ttl_seconds if requested_ttl is None else min(requested_ttl, self.ttl_seconds)
        expires_at = datetime.fromtimestamp(math.ceil(time.time() + ttl), tz=timezone.utc)
        if effect == "expired_token":
            expires_at = datetime.fromtimestamp(math.floor(time.time() - 60), tz=timezone.utc)
        if effect == "wrong_user":
            user = OTHER_USER
        crafted = self._take_fault("/api/", ("claims",))
        claims = {"aud": target, **(crafted.value if crafted is not None else {})}
        token = ""
        if effect != "empty_token":
            token = mint_jwt(user, expires_at=expires_at, issuer=f"{self.host}/oidc", claims=claims)
            if self.token_length is not None:
                token = sized_jwt(token, self.token_length)
            self._identities.remember(token)
            with self._lock:  # one at a time, so the hook sees credentials in the order of ``issued``
                hook = self.on_credential
                if hook is not None:
                    hook(user, token, expires_at)  # if it raises, the listener answers 500
                self.issued.append(IssuedCredential(user, token, expires_at, kind, target))
        payload: dict[str, Any] = {"token": token}
        field_name = "expiration_time" if kind == "database" else "expire_time"
        if not self.omit_expiry:
            payload[field_name] = rfc3339(expires_at)
        crafted = self._take_fault("/api/", ("expiry",))
        if crafted is not None:
            payload.pop(field_name, None)
            if crafted.value is not None:
                payload[field_name] = crafted.value
        return _json(200, payload)


def sized_jwt(token: str, length: int) -> str:
    """`token` with its signature part replaced by random base64url characters so that it is `length` long."""
    head = token.rsplit(".", 1)[0] + "."
    if length <= len(head):
        raise ValueError(f"a JWT with these claims is at least {len(head) + 1} characters")
    signature = ""
    while len(signature) < length - len(head):
        signature += secrets.token_urlsafe(64).replace("=", "")
    return head + signature[: length - len(head)]


def _body_problem(body: Any, kind: CredentialKind) -> str | None:
    """Why a credential request body is refused before its values are read: not an object, or an unknown field."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    unknown = sorted(name for name in body if name not in _CREDENTIAL_FIELDS[kind])
    return f"unknown field {unknown[0]!r} in the credential request" if unknown else None


def _basic_auth(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return "", ""
    client_id, _, client_secret = decoded.partition(":")
    return client_id, client_secret


def _requested_ttl(body: Mapping[str, Any]) -> int | None:
    """Seconds asked for by ``ttl`` ("3600s") or ``expire_time`` (RFC 3339), or None when neither is given."""
    if isinstance(body.get("ttl"), str):
        return math.floor(float(body["ttl"].removesuffix("s")))
    if isinstance(body.get("expire_time"), str):
        wanted = datetime.fromisoformat(body["expire_time"].replace("Z", "+00:00"))
        return math.floor((wanted - datetime.now(timezone.utc)).total_seconds())
    return None


def _page(request: _Request, items: list[dict[str, Any]], key: str) -> _Response:
    """One page of ``items`` per ``page_size``/``page_token``, as the SDK's list iterators read it."""
    size = int(request.query.get("page_size") or 50)
    token = request.query.get("page_token")
    try:
        start = int(base64.urlsafe_b64decode(token).decode()) if token else 0
    except (binascii.Error, UnicodeDecodeError) as e:
        raise ValueError("invalid page_token") from e
    if size < 1 or start < 0:
        return _api_error(400, "page_size must be positive")
    page: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        page["next_page_token"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return _json(200, page)


class _Listener:
    """The HTTP server thread; stop() closes the port, start() binds the same port again."""

    def __init__(self, handler: Callable[[_Request, threading.Event], _Response | None], port: int) -> None:
        self._handler = handler
        self.port = port
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._server is not None:
            return
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def handle(self, request: _Request) -> _Response | None:
        stopping = self.stopping
        try:
            return self._handler(request, stopping)
        # Anything may fail in a test's on_credential hook or in the rig itself; the client must get a 500 that
        # names the problem rather than a dropped connection, which the SDK would retry until it times out.
        except Exception:  # pylint: disable=broad-exception-caught
            logger.exception(f"fake workspace failed on {request.method} {request.path}")
            return _api_error(500, "fake workspace bug; see the test log")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    """socketserver's default listen backlog is 5: 16 clients connecting at once overflow it, and the kernel drops
    their SYNs, which the clients resend only after a second (TCP's initial retransmission timeout)."""

    def __init__(self, address: tuple[str, int], listener: _Listener) -> None:
        self.listener = listener
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, lets the workspace answer it, closes the connection (HTTP/1.0: no keep-alive)."""

    server: _Server
    protocol_version = "HTTP/1.0"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.listener.handle(_Request(self.command, url.path, query, headers, body))
        if response is None:
            self.close_connection = True
            return
        if response.reset:
            self._reset()
            return
        if response.seconds_per_byte:
            self._trickle(response, self.server.listener.stopping)
            return
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug(f"fake workspace: client left before the answer to {self.command} {url.path}")

    def _reset(self) -> None:
        # Closing with a zero linger time sends RST instead of FIN; the server's own shutdown() would send FIN first.
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def _trickle(self, response: _Response, stopping: threading.Event) -> None:
        self.close_connection = True
        reason = self.responses.get(response.status, ("",))[0]
        lines = [f"{self.protocol_version} {response.status} {reason}"]
        lines += [f"{name}: {value}" for name, value in response.headers.items()]
        lines.append(f"Content-Length: {len(response.body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body
        try:
            for offset in range(len(raw)):
                self.wfile.write(raw[offset : offset + 1])
                if stopping.wait(response.seconds_per_byte):
                    return
        except (BrokenPipeError, ConnectionResetError):
            logger.debug(f"fake workspace: client left during a trickled answer to {self.command} {self.path}")

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, *args: Any) -> None:
        logger.debug(f"fake workspace {self.address_string()}: {args[0] % args[1:]}")
