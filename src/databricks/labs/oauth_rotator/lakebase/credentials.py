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
from databricks.labs.oauth_rotator.lakebase.tokeninfo import (
    claim_seconds,
    issued_to_someone_else,
    jwt_claims,
    token_fingerprint,
)
from databricks.labs.oauth_rotator.text import has_control_characters, one_line, printable

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


MAX_LIFETIME = timedelta(hours=24)
"""The sane window for an expiry: at most this far from the issue time, either way (Lakebase credentials live an
hour). An expiry beyond it (a JWT `exp` in 2100, `1e20`) is no time we schedule by: "unreadable expiry"."""
MAX_TOKEN_CHARS = 16384
"""The longest credential taken. Lakebase's are a JWT of a few hundred characters; pgbouncer crashes on passwords
over 1024 bytes, and a megabyte answer would be copied into `.pgpass` and read by every libpq connection."""


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


def _show(value: Any) -> str:
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
        raise UnreadableExpiry(f"unreadable expiry {_show(value)}") from err
    raise UnreadableExpiry(f"unreadable expiry {_show(value)}")


def _jwt_expiry(token: str, *, now: datetime) -> datetime:
    """The JWT `exp` claim, else (an opaque token, or a JWT without `exp`) issue time plus an hour."""
    claims = jwt_claims(token)
    if "exp" not in claims:
        return now + DEFAULT_LIFETIME
    seconds = claim_seconds(claims["exp"])
    if seconds is None:
        raise UnreadableExpiry(f"unreadable expiry (JWT exp {_show(claims['exp'])})")
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


def check_name(value: str, what: str, where: str) -> None:
    """A host or user name from the workspace that a `.pgpass` line can name: raises `CredentialError` for a
    wildcard (`*` would offer the credential to every server, or as every user), a control character, or blanks.
    """
    problem = _name_problem(value)
    if problem:
        raise CredentialError(f"{where}: the workspace returned an unusable {what} {_show(value)} ({problem}): refused")


def _name_problem(value: str) -> str | None:
    if not isinstance(value, str) or not value or value != value.strip():
        return "empty or with surrounding blanks"
    if "*" in value:
        return "a wildcard"
    if "\n" in value or "\r" in value:
        return "a newline"
    if has_control_characters(value):
        return "a control character"
    if len(value) > 1024:
        return "longer than 1024 characters"
    return None


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
        host = self.role_hosts()[""]
        check_name(host, "host", self.description)
        return (host,)

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
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            size = len(token) if isinstance(token, str) else type(token).__name__
            raise CredentialError(f"{self.description}: the workspace returned an unusable credential ({size})")
        try:
            expires_at = credential_expiry(expiry, token, now=issued_at)
        except UnreadableExpiry as err:
            raise CredentialError(f"{self.description}: {err}") from err
        if expires_at <= issued_at:
            raise CredentialError(f"{self.description}: the workspace returned a credential that already expired")
        other = issued_to_someone_else(token, user)
        if other is not None:
            raise CredentialError(
                f"{self.description}: the workspace returned a credential for {printable(other[:200])}, "
                f"not for {printable(user)}",
                fix="if this persists, set `user` for this target to the identity you log in as",
            )
        check_name(user, "user name", self.description)
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
        selected = tuple((role, found[role]) for role, on in wanted.items() if on)
        for _, host in selected:
            check_name(host, "host", self.description)
        return selected


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
        arguments = sdk_arguments(mint, "w.postgres.generate_database_credential", required={"endpoint": self.endpoint})
        try:
            issued = mint(**arguments)
        except ValueError as err:
            # The SDK parses `expire_time` into a protobuf Timestamp while reading the answer, and raises
            # ValueError for one that is not a timestamp; any other ValueError (a refused login) is the caller's.
            if "imestamp" not in str(err):
                raise
            raise CredentialError(f"{self.description}: unreadable expiry ({one_line(str(err), limit=120)})") from err
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
