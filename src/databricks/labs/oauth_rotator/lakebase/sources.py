"""The credential sources, one per Lakebase flavour: a Provisioned instance, an Autoscaling endpoint (both found in
the workspace's catalog), and the workspace's own token for a host neither serves."""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError

from databricks.labs.oauth_rotator.errors import CredentialError, NeedsPersonError
from databricks.labs.oauth_rotator.lakebase.catalog import Database, LakebaseCatalog
from databricks.labs.oauth_rotator.lakebase.credentials import CredentialSource
from databricks.labs.oauth_rotator.lakebase.sdk_compat import classify_sdk_error, sdk_arguments
from databricks.labs.oauth_rotator.text import one_line


class CatalogSource(CredentialSource):
    """A source whose hosts the workspace's catalog knows (unless the config names one): instance or endpoint."""

    kind: ClassVar[str]
    """`instance` or `endpoint`, as the catalog and messages name the flavour."""

    def __init__(
        self, ws: WorkspaceClient, name: str, *, hosts: tuple[str, ...] = (), now: Callable[[], datetime]
    ) -> None:
        super().__init__(ws, now=now)
        self._name = name
        self._hosts = hosts

    @property
    def description(self) -> str:
        return f"{self.kind} {self._name}"

    def role_hosts(self) -> dict[str, str]:
        if self._hosts:
            return {"": self._hosts[0]}
        try:
            found = self._look_up(LakebaseCatalog(self._ws))
        except DatabricksError as err:
            raise classify_sdk_error(err, self.description) from err
        if not found.host:
            raise self._no_host(found)
        return found.hosts

    @abstractmethod
    def _look_up(self, catalog: LakebaseCatalog) -> Database:
        """The catalog's entry for this source."""

    @abstractmethod
    def _no_host(self, found: Database) -> NeedsPersonError:
        """The error when the catalog's entry names no read-write host."""


class ProvisionedInstance(CatalogSource):
    """A Lakebase Provisioned instance: `w.database.generate_database_credential(instance_names=[name])`."""

    kind = "instance"

    @property
    def instance(self) -> str:
        return self._name

    def _look_up(self, catalog: LakebaseCatalog) -> Database:
        return catalog.instance(self._name)

    def _no_host(self, found: Database) -> NeedsPersonError:
        return NeedsPersonError(
            f"{self.description} has no read-write DNS name (state: {found.state})",
            fix="check the instance in the workspace, or set `host` for this target",
        )

    def _mint(self) -> tuple[str | None, Any]:
        mint = self._ws.database.generate_database_credential
        arguments = sdk_arguments(
            mint,
            "w.database.generate_database_credential",
            required={"instance_names": [self._name]},
            optional={"request_id": str(uuid.uuid4())},
        )
        issued = mint(**arguments)
        return issued.token, issued.expiration_time


class AutoscalingEndpoint(CatalogSource):
    """A Lakebase Autoscaling endpoint: `w.postgres.generate_database_credential(endpoint=...)`, with the `ttl` asked
    for (`credential_ttl_minutes`) when the installed SDK takes one (0.120.0 onwards; `doctor` says when not)."""

    kind = "endpoint"

    def __init__(
        self,
        ws: WorkspaceClient,
        name: str,
        *,
        hosts: tuple[str, ...] = (),
        now: Callable[[], datetime],
        ttl_seconds: int | None = None,
    ) -> None:
        super().__init__(ws, name, hosts=hosts, now=now)
        self._ttl_seconds = ttl_seconds

    @property
    def endpoint(self) -> str:
        return self._name

    def _look_up(self, catalog: LakebaseCatalog) -> Database:
        return catalog.endpoint(self._name)

    def _no_host(self, found: Database) -> NeedsPersonError:
        return NeedsPersonError(
            f"{self.description} reports no host", fix="check the endpoint, or set `host` for this target"
        )

    def _mint(self) -> tuple[str | None, Any]:
        mint = self._ws.postgres.generate_database_credential
        # Never `group_name` (0.120.0 and 0.167.0 have it, 0.150.0-0.162.0 do not): without it the credential
        # is for the caller's own identity, the role the `.pgpass` line names.
        arguments = sdk_arguments(
            mint,
            "w.postgres.generate_database_credential",
            required={"endpoint": self._name},
            optional={"ttl": ttl_duration(self._ttl_seconds)} if self._ttl_seconds else None,
        )
        try:
            issued = mint(**arguments)
        except ValueError as err:
            # The SDK parses `expire_time` into a protobuf Timestamp while reading the answer, and raises
            # ValueError for one that is not a timestamp; any other ValueError (a refused login) is the caller's.
            if "imestamp" not in str(err):
                raise
            raise CredentialError(f"{self.description}: unreadable expiry ({one_line(str(err), limit=120)})") from err
        return issued.token, issued.expire_time


def ttl_duration(seconds: int) -> Any:
    """The SDK's `ttl` value: a protobuf `Duration` (sent as `"600s"`), imported where the SDK has it."""
    # Generated protobuf code defines its classes at run time: pylint cannot see them.
    from google.protobuf.duration_pb2 import Duration  # pylint: disable=no-name-in-module

    return Duration(seconds=seconds)


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
