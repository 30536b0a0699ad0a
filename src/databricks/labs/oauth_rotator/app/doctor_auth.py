"""`doctor`'s workspace checks: the login, then every target at once, all within one deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError

from databricks.labs.oauth_rotator.app.doctor_findings import FAIL, OK, WARN, Finding, message_of
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.deadlines import map_on_daemon_threads, run_with_deadline
from databricks.labs.oauth_rotator.errors import CredentialError, RotatorError
from databricks.labs.oauth_rotator.lakebase.catalog import LakebaseCatalog
from databricks.labs.oauth_rotator.lakebase.sdk_compat import classify_sdk_error
from databricks.labs.oauth_rotator.lakebase.sources import WorkspaceToken
from databricks.labs.oauth_rotator.lakebase.targets import resolve_host
from databricks.labs.oauth_rotator.lakebase.workspace import auth_type_in_use, current_user_name
from databricks.labs.oauth_rotator.rotation.cycle import MAX_CONCURRENT_FETCHES
from databricks.labs.oauth_rotator.text import one_line, printable

WorkspaceClientFactory = Callable[[RotatorConfig], WorkspaceClient]


def check_workspace(config: RotatorConfig, client: WorkspaceClientFactory, deadline: float) -> list[Finding]:
    """The login, then every target at once, all within one deadline: a workspace that never answers (or
    answers a byte a second) costs the deadline once, not once per check. Each target's check gives up when
    the deadline passes, so waiting for them all ends then too."""
    ends_at = time.monotonic() + deadline
    login, ws = check_login(config, client, deadline)
    if ws is None:
        return [login]
    targets = map_on_daemon_threads(
        lambda target: check_target(ws, target, ends_at),
        config.targets,
        limit=MAX_CONCURRENT_FETCHES,
        name="oauth-rotator-doctor",
    )
    return [login, *targets]


def check_login(
    config: RotatorConfig, client: WorkspaceClientFactory, deadline: float
) -> tuple[Finding, WorkspaceClient | None]:
    """Who the config logs in as, and the client to go on with; no client when the login fails."""

    def who_am_i() -> tuple[WorkspaceClient, str]:
        ws = client(config)
        return ws, current_user_name(ws)

    try:
        ws, me = run_with_deadline(who_am_i, deadline, what="login check")
    except RotatorError as err:
        return Finding(FAIL, "login", message_of(err), err.fix), None
    return Finding(OK, "login", f"authenticated as {me} at {ws.config.host} (auth type {auth_type_in_use(ws)})"), ws


def check_target(ws: WorkspaceClient, target: TargetConfig, ends_at: float) -> Finding:
    """Whether the target's instance or endpoint exists and runs, or what a bare host resolves to."""
    check = f"target {target.label}"
    seconds = max(0.0, ends_at - time.monotonic())
    try:
        level, message = run_with_deadline(lambda: _describe(ws, target), seconds, what=check)
    except RotatorError as err:
        return Finding(FAIL, check, message_of(err), err.fix)
    fix = None
    if level != OK:
        named = target.instance or target.endpoint
        fix = "start it in the workspace" if named else "set `instance` or `endpoint` for this target"
    return Finding(level, check, message, fix)


def _describe(ws: WorkspaceClient, target: TargetConfig) -> tuple[str, str]:
    try:
        catalog = LakebaseCatalog(ws)
        if target.instance or target.endpoint:
            found = catalog.instance(target.instance) if target.instance else catalog.endpoint(target.endpoint or "")
            where = printable(str(found.host))
            return (OK if found.ready else WARN), f"{found.description} is {printable(found.state)} at {where}"
        source = resolve_host(ws, target.host or "", now=lambda: datetime.now(timezone.utc))
    except DatabricksError as err:
        what = f"instance {target.instance}" if target.instance else f"endpoint {target.endpoint}"
        raise classify_sdk_error(err, what if target.instance or target.endpoint else str(target.host)) from err
    except OSError as err:  # the network, or the SDK's retries running out (TimeoutError)
        raise CredentialError(f"{type(err).__name__}: {one_line(str(err))}") from err
    if isinstance(source, WorkspaceToken):
        return WARN, (
            f"{target.host} matches no Lakebase instance or endpoint here: its password is the workspace token, "
            "which a Lakebase login may refuse"
        )
    return OK, f"{target.host} is served by {source.description}"
