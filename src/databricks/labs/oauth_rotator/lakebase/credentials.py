"""Lakebase credentials, and the base of the sources that mint them through the Databricks SDK's unified auth.

`fetch` checks every answer of the workspace before it is used: a token of a sane size and expiry, issued to the
user asked for, and host and user names a `.pgpass` line can hold. The sources, one per flavour, are in `sources`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError

from databricks.labs.oauth_rotator.errors import CredentialError, NeedsPersonError
from databricks.labs.oauth_rotator.lakebase.expiry import UnreadableExpiry, credential_expiry, show_value
from databricks.labs.oauth_rotator.lakebase.sdk_compat import classify_sdk_error
from databricks.labs.oauth_rotator.lakebase.tokeninfo import issued_to_someone_else, token_fingerprint
from databricks.labs.oauth_rotator.text import has_control_characters, printable


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


MAX_TOKEN_CHARS = 16384
"""The longest credential taken. Lakebase's are a JWT of a few hundred characters; pgbouncer crashes on passwords
over 1024 bytes, and a megabyte answer would be copied into `.pgpass` and read by every libpq connection."""


def check_name(value: str, what: str, where: str) -> None:
    """A host or user name from the workspace that a `.pgpass` line can name: raises `CredentialError` for a
    wildcard (`*` would offer the credential to every server, or as every user), a control character, or blanks;
    a host must also look like one (letters, digits, `.`, `-`, `_`, or an IPv6 address's `:` and brackets): a host
    with spaces or markup is no server libpq could reach, only text someone wants shown or written.
    """
    problem = _name_problem(value) or (_host_problem(value) if what == "host" else None)
    if problem:
        raise CredentialError(
            f"{where}: the workspace returned an unusable {what} {show_value(value)} ({problem}): refused"
        )


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


_HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]")


def _host_problem(value: str) -> str | None:
    odd = sorted(set(value) - _HOST_CHARACTERS)
    return f"not a host name: {''.join(odd)!r} in it" if odd else None


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
