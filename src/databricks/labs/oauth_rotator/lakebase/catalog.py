"""The workspace's Lakebase databases as one list: Provisioned instances and Autoscaling endpoints, their state and
their hosts by role. The installer offers them, target resolution finds a host among them, doctor reports on them.

Only the credential sources and this module talk to the Lakebase APIs; errors are the SDK's, for callers to sort.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from databricks.sdk import WorkspaceClient
from databricks.sdk.service.database import DatabaseInstance
from databricks.sdk.service.postgres import Endpoint

from databricks.labs.oauth_rotator.config import TargetConfig
from databricks.labs.oauth_rotator.text import printable

READ_WRITE, READ_ONLY, POOLED, READ_ONLY_POOLED = "", "-ro", "-pooled", "-ro-pooled"
HOST_ROLES = (READ_WRITE, READ_ONLY, POOLED, READ_ONLY_POOLED)
"""A database's hosts by role, as suffixes of its `pg_service.conf` names: read-write, read-only, pooled."""
READY_STATES = frozenset({"AVAILABLE", "ACTIVE", "IDLE"})
"""States in which a login works (an idle endpoint wakes up on connect), as `databricks psql` accepts them."""


@dataclass(frozen=True)
class Database:
    """One Lakebase database as the workspace describes it."""

    kind: str
    """`instance` (Provisioned) or `endpoint` (Autoscaling)."""
    name: str
    state: str = "unknown"
    hosts: dict[str, str] = field(default_factory=dict)
    """Host name by role (`HOST_ROLES`); only the roles the database has."""

    @property
    def description(self) -> str:
        """`instance NAME` or `endpoint NAME`, for messages: the workspace's name with control characters escaped."""
        return f"{self.kind} {printable(self.name)}"

    @property
    def host(self) -> str | None:
        """The read-write host (for an endpoint: its main host)."""
        return self.hosts.get(READ_WRITE)

    @property
    def ready(self) -> bool:
        return self.state in READY_STATES

    def target(self) -> TargetConfig:
        """The config entry that names this database."""
        return TargetConfig(instance=self.name) if self.kind == "instance" else TargetConfig(endpoint=self.name)

    def serves(self, host: str) -> bool:
        return host.lower() in {h.lower() for h in self.hosts.values()}


class LakebaseCatalog:
    """Reads the databases of one workspace. Every method may raise the SDK's errors."""

    def __init__(self, ws: WorkspaceClient) -> None:
        self._ws = ws

    def instance(self, name: str) -> Database:
        return _instance(self._ws.database.get_database_instance(name))

    def endpoint(self, name: str) -> Database:
        return _endpoint(self._ws.postgres.get_endpoint(name))

    def instances(self) -> Iterator[Database]:
        for found in self._ws.database.list_database_instances():
            if found.name:
                yield _instance(found)

    def endpoints(self) -> Iterator[Database]:
        postgres = self._ws.postgres
        for project in postgres.list_projects():
            for branch in postgres.list_branches(parent=project.name or ""):
                for found in postgres.list_endpoints(parent=branch.name or ""):
                    if found.name:
                        yield _endpoint(found)


def _instance(found: DatabaseInstance) -> Database:
    hosts = {READ_WRITE: found.read_write_dns, READ_ONLY: found.read_only_dns}
    state = found.state.value if found.state else "unknown"
    return Database("instance", found.name or "", state, {role: h for role, h in hosts.items() if h})


def _endpoint(found: Endpoint) -> Database:
    status = found.status
    known = status.hosts if status else None
    hosts = {}
    if known is not None:
        hosts = {
            READ_WRITE: known.host,
            READ_ONLY: known.read_only_host,
            POOLED: known.read_write_pooled_host,
            READ_ONLY_POOLED: known.read_only_pooled_host,
        }
    state = status.current_state.value if status and status.current_state else "unknown"
    return Database("endpoint", found.name or "", state, {role: h for role, h in hosts.items() if h})
