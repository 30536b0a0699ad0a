"""Rotating now: a cycle assembled from a config and run once (forced for `--once` and labs `rotate`, as due for the
scheduler's worker), then checked with a login when asked; and minting one credential for the one-shot helpers.

Every entry point that rotates in its own process comes here: the console's `--once`, labs `rotate`, the worker the
scheduler starts for each cycle, and the Python API.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TextIO

from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.app.preflight import preflight
from databricks.labs.oauth_rotator.app.request import RotationRequest
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.deadlines import (
    IN_PROCESS_CYCLE_DEADLINE_SECONDS,
    ONCE_DEADLINE_SECONDS,
    run_with_deadline,
)
from databricks.labs.oauth_rotator.errors import ConfigError, RotatorError
from databricks.labs.oauth_rotator.files.config_cache import remember
from databricks.labs.oauth_rotator.files.config_store import effective_source
from databricks.labs.oauth_rotator.files.logs import setup_logging
from databricks.labs.oauth_rotator.lakebase.credentials import Credential
from databricks.labs.oauth_rotator.lakebase.targets import resolve_source
from databricks.labs.oauth_rotator.lakebase.workspace import build_workspace_client, current_user_name
from databricks.labs.oauth_rotator.paths import log_path_for, pg_service_path_for, pgpass_path_for
from databricks.labs.oauth_rotator.rotation.cycle import CycleReport, RotationCycle
from databricks.labs.oauth_rotator.rotation.daemon import CycleResult
from databricks.labs.oauth_rotator.rotation.front import Front
from databricks.labs.oauth_rotator.rotation.hooks import DEFAULT_TIMEOUT_SECONDS, PostRotationHook
from databricks.labs.oauth_rotator.rotation.notify import Notifier
from databricks.labs.oauth_rotator.rotation.schedule import Clock, RefreshPolicy, SystemClock, min_refresh_seconds
from databricks.labs.oauth_rotator.rotation.state import StateStore
from databricks.labs.oauth_rotator.rotation.verify import verify_all

logger = logging.getLogger(__name__)


def default_state_store() -> StateStore:
    return StateStore(paths.status_file())


def policy_for(config: RotatorConfig, environ: Mapping[str, str] | None = None) -> RefreshPolicy:
    """The refresh ladder of `config`, with the refresh floor (`schedule.min_refresh_seconds`) of `environ`."""
    return RefreshPolicy(
        margin_seconds=config.effective_margin_minutes * 60,
        interval_seconds=config.effective_interval_minutes * 60,
        min_refresh_seconds=min_refresh_seconds(os.environ if environ is None else environ),
    )


def build_cycle(
    config: RotatorConfig,
    *,
    clock: Clock | None = None,
    workspace_client: WorkspaceClient | Callable[[], WorkspaceClient] | None = None,
    state: StateStore | None = None,
    policy: RefreshPolicy | None = None,
    notifier: Notifier | None = None,
    front: Front | None = None,
) -> RotationCycle:
    """A rotation cycle for `config`; the workspace client is built lazily, only when a target is due. `front`: the
    pgbouncer front the caller already checked (default: the config's)."""

    def from_config() -> WorkspaceClient:
        if isinstance(workspace_client, WorkspaceClient):
            return workspace_client
        if workspace_client is not None:
            return workspace_client()
        return build_workspace_client(profile=config.profile, host=config.workspace_url)

    front = front or Front.of(config)
    hook = None
    if config.exec_after:
        timeout = config.exec_after_timeout or DEFAULT_TIMEOUT_SECONDS
        hook = PostRotationHook(config.exec_after, timeout=timeout)
    return RotationCycle(
        config,
        from_config,
        front=front.update if front is not None else None,
        pgpass_path=pgpass_path_for(config),
        state=state or default_state_store(),
        clock=clock or SystemClock(),
        policy=policy or policy_for(config),
        hook=hook,
        notifier=(notifier or Notifier()) if config.notify is not False else None,
        pg_service_path=pg_service_path_for(config) if config.pg_service else None,
    )


def pick_target(config: RotatorConfig, name: str | None) -> TargetConfig:
    """The target called `name` (its label), or the only/first one when no name is given."""
    if not name:
        return config.targets[0]
    for target in config.targets:
        if target.label == name:
            return target
    known = ", ".join(t.label for t in config.targets)
    raise ConfigError(f"no target named {name!r} (configured: {known})")


def fresh_credential(
    config: RotatorConfig,
    name: str | None = None,
    *,
    workspace_client: WorkspaceClient | None = None,
    clock: Clock | None = None,
) -> tuple[TargetConfig, Credential]:
    """A credential minted now for one target, written nowhere: for one-shot helpers like `psql` and `env`. The one
    preflight first, as for every entry point (they start no pgbouncer: its port is not theirs to check)."""
    target = pick_target(config, name)
    preflight(config, port=False)
    clock = clock or SystemClock()

    def mint() -> Credential:
        ws = workspace_client or build_workspace_client(profile=config.profile, host=config.workspace_url)
        user = target.user or current_user_name(ws)
        source = resolve_source(
            ws,
            target,
            now=lambda: datetime.fromtimestamp(clock.time(), tz=timezone.utc),
            ttl_seconds=config.credential_ttl_seconds,
        )
        return source.fetch(user)

    return target, run_with_deadline(mint, ONCE_DEADLINE_SECONDS, what="credential")


class InProcessCycleRunner:
    """Runs cycles in this process, each under a deadline: for the Python API and for tests."""

    def __init__(self, cycle: RotationCycle, *, deadline: float = IN_PROCESS_CYCLE_DEADLINE_SECONDS) -> None:
        self._cycle = cycle
        self._deadline = deadline

    def run(self, *, force: bool) -> CycleResult:
        try:
            report = run_with_deadline(lambda: self._cycle.run(force=force), self._deadline)
        except RotatorError as err:
            logger.error(f"Rotation cycle failed: {err}")
            return CycleResult(exit_code=err.exit_code, detail=str(err))
        return CycleResult(exit_code=report.exit_code, next_due=report.next_due)


def raise_for_failures(report: CycleReport) -> CycleReport:
    """Collect-then-fail: every target was attempted; now say which failed, with the most severe exit code."""
    if not report.failed:
        return report
    errors = list(report.failed.values())
    if len(errors) == 1:
        raise errors[0]
    summary = "; ".join(f"{name}: {err}" for name, err in report.failed.items())
    worst = max(errors, key=lambda e: e.exit_code)
    combined = type(worst)(f"{len(errors)} of {len(errors) + len(report.rotated)} targets failed: {summary}")
    raise combined


class RotationOutcome:
    """What `rotate_now` did: the cycle's report, and the exit code once a requested login check ran too."""

    def __init__(self, report: CycleReport, exit_code: int) -> None:
        self.report = report
        self.exit_code = exit_code


def rotate_now(
    request: RotationRequest,
    *,
    force: bool = True,
    deadline: float | None = ONCE_DEADLINE_SECONDS,
    log_stream: TextIO | None = None,
    supervised: bool = False,
) -> RotationOutcome:
    """One cycle for the request's config: checked first (exit 2 before any request), logged to its log file and
    `log_stream` (stderr), bounded by `deadline` (None where a parent process is the watchdog), then verified with
    a psql login when the request asks. `supervised`: a scheduler's worker, whose scheduler runs the front."""
    config, source = effective_source(request.config_path, request.overrides)
    preflight(config, port=not supervised)  # under a scheduler, its supervisor owns the front's port
    if source is not None:
        remember(source)  # the settings `password` reads without PyYAML, now that they passed the preflight
    front = Front.of(config)
    setup_logging(log_path_for(config), level=logging.DEBUG if request.debug else logging.INFO, stream=log_stream)
    cycle = build_cycle(config, front=front)

    def run() -> CycleReport:
        return cycle.run(force=force)

    report = run() if deadline is None else run_with_deadline(run, deadline)
    exit_code = report.exit_code
    if request.verify and report.keys:
        exit_code = max(exit_code, verify_all(report.keys, pgpass_path_for(config)))
    return RotationOutcome(report, exit_code)
