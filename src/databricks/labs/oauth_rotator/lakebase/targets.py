"""Turning a configured target (an instance, an endpoint, or only a host) into a credential source."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError

from databricks.labs.oauth_rotator.config import TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.lakebase.catalog import Database, LakebaseCatalog
from databricks.labs.oauth_rotator.lakebase.credentials import CredentialSource
from databricks.labs.oauth_rotator.lakebase.sources import AutoscalingEndpoint, ProvisionedInstance, WorkspaceToken
from databricks.labs.oauth_rotator.text import one_line

logger = logging.getLogger(__name__)


def resolve_source(
    ws: WorkspaceClient, target: TargetConfig, *, now: Callable[[], datetime], ttl_seconds: int | None = None
) -> CredentialSource:
    """The credential source for a target; a bare host is looked up among the workspace's databases. `ttl_seconds`:
    the lifetime to ask for an endpoint's credentials (`credential_ttl_minutes`)."""
    hosts = (target.host,) if target.host else ()
    if target.instance:
        return ProvisionedInstance(ws, target.instance, hosts=hosts, now=now)
    if target.endpoint:
        return AutoscalingEndpoint(ws, target.endpoint, hosts=hosts, now=now, ttl_seconds=ttl_seconds)
    if not target.host:
        raise ConfigError(f"{target.label}: needs an instance, an endpoint or a host")
    return resolve_host(ws, target.host, now=now, ttl_seconds=ttl_seconds)


def resolve_host(
    ws: WorkspaceClient, host: str, *, now: Callable[[], datetime], ttl_seconds: int | None = None
) -> CredentialSource:
    """Find the instance or endpoint serving `host`; else fall back to the workspace token, and say so."""
    found = _serving(LakebaseCatalog(ws), host)
    if found is not None:
        logger.info(f"{host} is served by {found.description}")
        if found.kind == "instance":
            return ProvisionedInstance(ws, found.name, hosts=(host,), now=now)
        return AutoscalingEndpoint(ws, found.name, hosts=(host,), now=now, ttl_seconds=ttl_seconds)
    logger.warning(
        f"{host} matches no Lakebase instance or endpoint in this workspace: using the workspace OAuth token "
        "as its password, as the original tool did; configure `instance` or `endpoint` for a database credential"
    )
    return WorkspaceToken(ws, host, now=now)


def _serving(catalog: LakebaseCatalog, host: str) -> Database | None:
    """The database with `host` among its hosts; a product this login cannot list is skipped."""
    for listing, what in ((catalog.instances, "database instances"), (catalog.endpoints, "postgres endpoints")):
        try:
            for database in listing():
                if database.serves(host):
                    return database
        except DatabricksError as err:
            logger.debug(f"Cannot list {what}: {one_line(str(err))}")
    return None
