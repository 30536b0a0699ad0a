"""Lakebase credentials, and the sources that mint them through the Databricks SDK's unified auth."""

from __future__ import annotations

import inspect
import logging
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import metadata
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    BadRequest,
    DatabricksError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

from databricks.labs.oauth_rotator.errors import CredentialError, NeedsPersonError, RotatorError
from databricks.labs.oauth_rotator.lakebase.catalog import LakebaseCatalog
from databricks.labs.oauth_rotator.lakebase.tokeninfo import issued_to_someone_else, jwt_expiry, token_fingerprint
from databricks.labs.oauth_rotator.text import one_line

logger = logging.getLogger(__name__)

DEFAULT_LIFETIME = timedelta(minutes=60)
"""Assumed lifetime of a credential that states no expiry and is not a JWT (Lakebase credentials last an hour)."""

_FRACTION = re.compile(r"\.(\d+)")


@dataclass(frozen=True)
class Credential:
    """A database password and what it is good for. The token never appears in `repr` or logs."""

    token: str = field(repr=False)
    expires_at: datetime
    issued_at: datetime
    user: str
    hosts: tuple[str, ...]
    source: str
    """Where it came from, for logs: `instance my-db`, `endpoint projects/...`, `workspace token`."""
    roles: tuple[tuple[str, str], ...] = ()
    """(role, host) for each host: role "" is the read-write host, then `-ro`, `-pooled`, `-ro-pooled`."""

    @property
    def fingerprint(self) -> str:
        """A short SHA-256 digest of the token: enough to recognise it, useless to log in with."""
        return token_fingerprint(self.token)


def parse_timestamp(value: str) -> datetime:
    """RFC 3339 to an aware datetime, on Python 3.10 too (whose `fromisoformat` rejects `Z` and nanoseconds)."""
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def credential_expiry(api_value: Any, token: str, *, now: datetime) -> datetime:
    """The expiry from the API field, else the JWT `exp` claim, else issue time plus an hour."""
    if isinstance(api_value, str) and api_value:
        return parse_timestamp(api_value)
    if api_value is not None and hasattr(api_value, "ToDatetime"):
        return api_value.ToDatetime(tzinfo=timezone.utc)
    from_jwt = jwt_expiry(token)
    if from_jwt is not None:
        return datetime.fromtimestamp(from_jwt, tz=timezone.utc)
    return now + DEFAULT_LIFETIME


class CredentialSource(ABC):
    """One way of minting a Postgres password for a target."""

    def __init__(self, ws: WorkspaceClient, *, now: Callable[[], datetime]) -> None:
        self._ws = ws
        self._now = now

    @property
    @abstractmethod
    def description(self) -> str:
        """What this source mints for, for logs and errors."""

    def hosts(self) -> tuple[str, ...]:
        """The read-write host a credential from this source logs in to."""
        return (self.role_hosts()[""],)

    @abstractmethod
    def role_hosts(self) -> dict[str, str]:
        """Every host the database answers on, by role: "" read-write, `-ro`, `-pooled`, `-ro-pooled`."""

    @abstractmethod
    def _mint(self) -> tuple[str | None, Any]:
        """Ask the workspace for a credential: (token, expiry as the API returns it)."""

    def fetch(self, user: str, *, read_only: bool = False, pooled: bool = False) -> Credential:
        """Mint a fresh credential for `user`; raises `CredentialError` (retry later) or `NeedsPersonError`.

        The credential's hosts are the read-write host, plus the read-only and pooled ones when asked for.
        """
        issued_at = self._now()
        try:
            token, expiry = self._mint()
        except DatabricksError as err:
            raise classify_sdk_error(err, self.description) from err
        if not token:
            raise CredentialError(f"{self.description}: the workspace returned an empty credential")
        try:
            expires_at = credential_expiry(expiry, token, now=issued_at)
        except ValueError as err:
            raise CredentialError(f"{self.description}: unreadable expiry {expiry!r}") from err
        if expires_at <= issued_at:
            raise CredentialError(f"{self.description}: the workspace returned a credential that already expired")
        other = issued_to_someone_else(token, user)
        if other is not None:
            raise CredentialError(
                f"{self.description}: the workspace returned a credential for {other}, not for {user}",
                fix="if this persists, set `user` for this target to the identity you log in as",
            )
        roles = self._selected_roles(read_only=read_only, pooled=pooled)
        return Credential(
            token=token,
            expires_at=expires_at,
            issued_at=issued_at,
            user=user,
            hosts=tuple(host for _, host in roles),
            source=self.description,
            roles=roles,
        )

    def _selected_roles(self, *, read_only: bool, pooled: bool) -> tuple[tuple[str, str], ...]:
        wanted = {"": True, "-ro": read_only, "-pooled": pooled, "-ro-pooled": read_only and pooled}
        found = self.role_hosts()
        missing = [role for role, on in wanted.items() if on and role not in found]
        if missing:
            raise NeedsPersonError(
                f"{self.description} has no {', '.join(r.strip('-') for r in missing)} host",
                fix="turn off read_only / pooled for this target, or enable that host in the workspace",
            )
        return tuple((role, found[role]) for role, on in wanted.items() if on)


class ProvisionedInstance(CredentialSource):
    """A Lakebase Provisioned instance: `w.database.generate_database_credential(instance_names=[name])`."""

    def __init__(
        self, ws: WorkspaceClient, instance: str, *, hosts: tuple[str, ...] = (), now: Callable[[], datetime]
    ) -> None:
        super().__init__(ws, now=now)
        self.instance = instance
        self._hosts = hosts

    @property
    def description(self) -> str:
        return f"instance {self.instance}"

    def role_hosts(self) -> dict[str, str]:
        if self._hosts:
            return {"": self._hosts[0]}
        try:
            found = LakebaseCatalog(self._ws).instance(self.instance)
        except DatabricksError as err:
            raise classify_sdk_error(err, self.description) from err
        if not found.host:
            raise NeedsPersonError(
                f"{self.description} has no read-write DNS name (state: {found.state})",
                fix="check the instance in the workspace, or set `host` for this target",
            )
        return found.hosts

    def _mint(self) -> tuple[str | None, Any]:
        mint = self._ws.database.generate_database_credential
        arguments = sdk_arguments(
            mint,
            "w.database.generate_database_credential",
            required={"instance_names": [self.instance]},
            optional={"request_id": str(uuid.uuid4())},
        )
        issued = mint(**arguments)
        return issued.token, issued.expiration_time


class AutoscalingEndpoint(CredentialSource):
    """A Lakebase Autoscaling endpoint: `w.postgres.generate_database_credential(endpoint=...)`."""

    def __init__(
        self, ws: WorkspaceClient, endpoint: str, *, hosts: tuple[str, ...] = (), now: Callable[[], datetime]
    ) -> None:
        super().__init__(ws, now=now)
        self.endpoint = endpoint
        self._hosts = hosts

    @property
    def description(self) -> str:
        return f"endpoint {self.endpoint}"

    def role_hosts(self) -> dict[str, str]:
        if self._hosts:
            return {"": self._hosts[0]}
        try:
            found = LakebaseCatalog(self._ws).endpoint(self.endpoint)
        except DatabricksError as err:
            raise classify_sdk_error(err, self.description) from err
        if not found.host:
            raise NeedsPersonError(
                f"{self.description} reports no host", fix="check the endpoint, or set `host` for this target"
            )
        return found.hosts

    def _mint(self) -> tuple[str | None, Any]:
        mint = self._ws.postgres.generate_database_credential
        # Never `group_name` (0.120.0 and 0.167.0 have it, 0.150.0-0.162.0 do not): without it the credential
        # is for the caller's own identity, the role the `.pgpass` line names.
        issued = mint(
            **sdk_arguments(mint, "w.postgres.generate_database_credential", required={"endpoint": self.endpoint})
        )
        return issued.token, issued.expire_time


class WorkspaceToken(CredentialSource):
    """The workspace's own OAuth token (or PAT), as the original tool used for a host it could not resolve."""

    def __init__(self, ws: WorkspaceClient, host: str, *, now: Callable[[], datetime]) -> None:
        super().__init__(ws, now=now)
        self._host = host

    @property
    def description(self) -> str:
        return f"workspace token for {self._host}"

    def role_hosts(self) -> dict[str, str]:
        return {"": self._host}

    def _mint(self) -> tuple[str | None, Any]:
        header = self._ws.config.authenticate().get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return (token if scheme.lower() == "bearer" else None), None


def accepted_keywords(method: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword arguments `method` takes, read from its signature; None when it takes any (`**kwargs`).

    The SDK's Lakebase methods gain and lose parameters between releases (`group_name` on
    `w.postgres.generate_database_credential` is in 0.120.0, gone in 0.150.0-0.162.0, back in 0.167.0), so what
    we send is checked against the installed SDK's own signature, never against its version number.
    """
    parameters = inspect.signature(method).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    by_keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(p.name for p in parameters if p.kind in by_keyword)


def sdk_arguments(
    method: Callable[..., Any],
    what: str,
    *,
    required: Mapping[str, Any],
    optional: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyword arguments to call the SDK's `method` with: all of `required`, and what it takes of `optional`.

    An SDK whose `method` lacks a required argument cannot mint for us: a person must install a supported one.
    """
    accepted = accepted_keywords(method)
    wanted = {**required, **(optional or {})}
    if accepted is None:
        return wanted
    missing = [name for name in required if name not in accepted]
    if missing:
        raise NeedsPersonError(
            f"{what} of databricks-sdk {_installed_sdk()} takes no `{missing[0]}` argument",
            fix=f"install a supported databricks-sdk ({_supported_sdk()})",
        )
    return {name: value for name, value in wanted.items() if name in accepted}


def _installed_sdk() -> str:
    try:
        return metadata.version("databricks-sdk")
    except metadata.PackageNotFoundError:
        return "(version unknown)"


def _supported_sdk() -> str:
    """The databricks-sdk requirement this package declares, e.g. `databricks-sdk<0.168,>=0.120.0`."""
    try:
        requirements = metadata.requires("databricks-labs-oauth-rotator") or []
    except metadata.PackageNotFoundError:
        requirements = []
    declared = [r for r in requirements if re.match(r"databricks-sdk\b(?!-)", r)]
    return declared[0] if declared else "see pyproject.toml"


def classify_sdk_error(err: DatabricksError, what: str) -> RotatorError:
    """Sort an SDK error into "retry later" and "a person must act", with the fix where we know it."""
    message = f"{what}: {type(err).__name__}: {one_line(str(err))}"
    if isinstance(err, NotFound):
        return NeedsPersonError(message, fix="check the target name and that it still exists in the workspace")
    if isinstance(err, PermissionDenied):
        return NeedsPersonError(message, fix="ask a workspace admin for access to this database")
    if isinstance(err, Unauthenticated):
        return NeedsPersonError(message, fix="check the login of this profile (`databricks auth login`)")
    if isinstance(err, BadRequest):
        return NeedsPersonError(message)
    return CredentialError(message)
