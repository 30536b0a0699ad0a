"""`doctor`'s checks of what Lakebase itself would refuse or ignore, said before it fails.

- Pooled hosts (`pooled: true`) with an OAuth identity: Lakebase's built-in connection pooler refuses OAuth roles
  ("Connection pooling requires native Postgres password authentication", Databricks' connection pooling docs), and
  every credential oauth-rotator writes is an OAuth token, so those `.pgpass` lines can never log in. The local
  pgbouncer front pools for OAuth roles instead (docs/clients.md).
- `credential_ttl_minutes`: asked of Autoscaling endpoints only where the installed SDK takes `ttl`
  (`w.postgres.generate_database_credential`, databricks-sdk 0.120.0 onwards); Provisioned instances have no ttl.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from databricks.labs.oauth_rotator.app.doctor_findings import OK, WARN, Finding
from databricks.labs.oauth_rotator.config import RotatorConfig
from databricks.labs.oauth_rotator.lakebase.sdk_compat import accepted_keywords, installed_sdk

POOLER_REFUSES = "Connection pooling requires native Postgres password authentication"
"""Lakebase's words for an OAuth role at its built-in pooler."""
FRONT_FIX = (
    "remove `pooled: true` and pool locally: add a `pgbouncer:` block to the config (the pgbouncer front, "
    "docs/clients.md), which logs in to the read-write host with the OAuth credential"
)


def check_lakebase(config: RotatorConfig, *, generate: Callable[..., Any] | None = None) -> list[Finding]:
    """What Lakebase would refuse (pooled hosts for OAuth) or ignore (a ttl the SDK cannot send) in `config`.
    `generate`: the SDK's `w.postgres.generate_database_credential` (default: the installed SDK's)."""
    findings = pooled_findings(config)
    if config.credential_ttl_minutes is not None:
        findings.extend(ttl_findings(config, generate if generate is not None else _installed_generate()))
    return findings


def pooled_findings(config: RotatorConfig) -> list[Finding]:
    """A warning for every target that asks for pooled hosts: their lines hold an OAuth credential."""
    message = (
        "pooled: true writes .pgpass lines for the pooled hosts, but Lakebase's built-in pooler refuses OAuth roles "
        f'("{POOLER_REFUSES}"): those lines cannot log in'
    )
    return [Finding(WARN, f"pooled {target.label}", message, FRONT_FIX) for target in config.targets if target.pooled]


def ttl_findings(config: RotatorConfig, generate: Callable[..., Any]) -> list[Finding]:
    """Whether `credential_ttl_minutes` reaches the API, and which targets it cannot apply to."""
    minutes = f"{config.credential_ttl_minutes:g} minutes"
    accepted = accepted_keywords(generate)
    findings: list[Finding] = []
    if accepted is not None and "ttl" not in accepted:
        findings.append(
            Finding(
                WARN,
                "credential ttl",
                f"credential_ttl_minutes is {minutes}, but databricks-sdk {installed_sdk()} cannot ask for it "
                "(no `ttl` on w.postgres.generate_database_credential): endpoints' credentials live the API's "
                "default, one hour",
                "install databricks-sdk 0.120.0 or later",
            )
        )
    else:
        findings.append(Finding(OK, "credential ttl", f"endpoints' credentials are asked for {minutes}"))
    instances = [target.label for target in config.targets if target.instance]
    if instances:
        findings.append(
            Finding(
                OK,
                "credential ttl",
                f"Provisioned instances have no ttl: {', '.join(instances)} get the API's one-hour credentials",
            )
        )
    return findings


def _installed_generate() -> Callable[..., Any]:
    from databricks.sdk.service.postgres import PostgresAPI

    return PostgresAPI.generate_database_credential
