"""Turning a configured target (an instance, an endpoint, or only a host) into a credential source."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError

from databricks.labs.oauth_rotator.config import TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.lakebase.credentials import (
    AutoscalingEndpoint,
    CredentialSource,
    ProvisionedInstance,
    WorkspaceToken,
)

logger = logging.getLogger(__name__)


def resolve_source(ws: WorkspaceClient, target: TargetConfig, *, now: Callable[[], datetime]) -> CredentialSource:
    """The credential source for a target; a bare host is looked up among the workspace's databases."""
    hosts = (target.host,) if target.host else ()
    if target.instance:
        return ProvisionedInstance(ws, target.instance, hosts=hosts, now=now)
    if target.endpoint:
        return AutoscalingEndpoint(ws, target.endpoint, hosts=hosts, now=now)
    if not target.host:
        raise ConfigError(f"{target.label}: needs an instance, an endpoint or a host")
    return resolve_host(ws, target.host, now=now)


def resolve_host(ws: WorkspaceClient, host: str, *, now: Callable[[], datetime]) -> CredentialSource:
    """Find the instance or endpoint serving `host`; else fall back to the workspace token, and say so."""
    wanted = host.lower()
    for name, hostnames in _instances(ws):
        if wanted in hostnames:
            logger.info(f"{host} is served by instance {name}")
            return ProvisionedInstance(ws, name, hosts=(host,), now=now)
    for name, hostnames in _endpoints(ws):
        if wanted in hostnames:
            logger.info(f"{host} is served by endpoint {name}")
            return AutoscalingEndpoint(ws, name, hosts=(host,), now=now)
    logger.warning(
        f"{host} matches no Lakebase instance or endpoint in this workspace: using the workspace OAuth token "
        "as its password, as the original tool did; configure `instance` or `endpoint` for a database credential"
    )
    return WorkspaceToken(ws, host, now=now)


def _instances(ws: WorkspaceClient) -> Iterator[tuple[str, set[str]]]:
    try:
        for instance in ws.database.list_database_instances():
            names = {h.lower() for h in (instance.read_write_dns, instance.read_only_dns) if h}
            if instance.name:
                yield instance.name, names
    except DatabricksError as err:
        logger.debug(f"Cannot list database instances: {err}")


def _endpoints(ws: WorkspaceClient) -> Iterator[tuple[str, set[str]]]:
    try:
        for project in ws.postgres.list_projects():
            for branch in ws.postgres.list_branches(parent=project.name or ""):
                for endpoint in ws.postgres.list_endpoints(parent=branch.name or ""):
                    found = endpoint.status.hosts if endpoint.status else None
                    if not (endpoint.name and found):
                        continue
                    candidates = (
                        found.host,
                        found.read_only_host,
                        found.read_write_pooled_host,
                        found.read_only_pooled_host,
                    )
                    yield endpoint.name, {h.lower() for h in candidates if h}
    except DatabricksError as err:
        logger.debug(f"Cannot list postgres endpoints: {err}")
