"""The rotator: assembling a rotation cycle from a config, and the Python API compatible with the original tool."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timezone

from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.config import (
    RotatorConfig,
    TargetConfig,
    check_config,
    check_paths,
    pg_service_path_for,
    pgpass_path_for,
)
from databricks.labs.oauth_rotator.deadlines import (
    IN_PROCESS_CYCLE_DEADLINE_SECONDS,
    ONCE_DEADLINE_SECONDS,
    run_with_deadline,
)
from databricks.labs.oauth_rotator.errors import ConfigError, RotatorError
from databricks.labs.oauth_rotator.lakebase.credentials import Credential
from databricks.labs.oauth_rotator.lakebase.targets import resolve_source
from databricks.labs.oauth_rotator.lakebase.workspace import build_workspace_client, current_user_name
from databricks.labs.oauth_rotator.rotation.cycle import CycleReport, RotationCycle
from databricks.labs.oauth_rotator.rotation.daemon import CycleResult, Daemon, install_stop_handlers
from databricks.labs.oauth_rotator.rotation.hooks import DEFAULT_TIMEOUT_SECONDS, PostRotationHook
from databricks.labs.oauth_rotator.rotation.notify import Notifier
from databricks.labs.oauth_rotator.rotation.schedule import Clock, RefreshPolicy, SystemClock
from databricks.labs.oauth_rotator.rotation.state import StateStore

logger = logging.getLogger(__name__)

ARGUMENT_NAMES = {
    "interval_minutes": "rotation_interval",
    "targets[0]": "target",
    "targets[0].port": "pg_port",
    "targets[0].database": "pg_database",
    "targets[0].instance": "instance",
    "targets[0].endpoint": "endpoint",
}
"""The `DatabricksOAuthRotator` argument for each config key that is not spelled the same, for error messages."""


def default_state_store() -> StateStore:
    return StateStore(paths.state_dir() / "status.json")


def policy_for(config: RotatorConfig) -> RefreshPolicy:
    return RefreshPolicy(
        margin_seconds=config.effective_margin_minutes * 60,
        interval_seconds=config.effective_interval_minutes * 60,
    )


def build_cycle(
    config: RotatorConfig,
    *,
    clock: Clock | None = None,
    workspace_client: WorkspaceClient | Callable[[], WorkspaceClient] | None = None,
    state: StateStore | None = None,
    policy: RefreshPolicy | None = None,
    notifier: Notifier | None = None,
) -> RotationCycle:
    """A rotation cycle for `config`; the workspace client is built lazily, only when a target is due."""

    def from_config() -> WorkspaceClient:
        if isinstance(workspace_client, WorkspaceClient):
            return workspace_client
        if workspace_client is not None:
            return workspace_client()
        return build_workspace_client(profile=config.profile, host=config.workspace_url)

    hook = None
    if config.exec_after:
        timeout = config.exec_after_timeout or DEFAULT_TIMEOUT_SECONDS
        hook = PostRotationHook(config.exec_after, timeout=timeout)
    return RotationCycle(
        config,
        from_config,
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
    """A credential minted now for one target, written nowhere: for one-shot helpers like `psql` and `env`."""
    target = pick_target(config, name)
    clock = clock or SystemClock()

    def mint() -> Credential:
        ws = workspace_client or build_workspace_client(profile=config.profile, host=config.workspace_url)
        user = target.user or current_user_name(ws)
        source = resolve_source(ws, target, now=lambda: datetime.fromtimestamp(clock.time(), tz=timezone.utc))
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


class DatabricksOAuthRotator:
    """Keeps `.pgpass` supplied with fresh Lakebase credentials (the original tool's API, plus targets and profiles).

    Args:
        workspace_url: the workspace (else `DATABRICKS_HOST`, or the profile's host).
        pg_host: a Lakebase host; resolved to its instance or endpoint (else `DATABRICKS_PG_HOST`).
        pg_username: the Postgres role (else the authenticated identity, from `current_user.me()`).
        rotation_interval: refresh at least this often, in minutes.
        instance / endpoint: name the database directly instead of by host.
        config: a full `RotatorConfig` (several targets); the target arguments are then ignored.
        workspace_client: an SDK client to use instead of building one from the unified auth chain.
        clock: the clock the daemon reads (tests pass a fake one).
    """

    def __init__(  # pylint: disable=too-many-arguments  # the original tool's keyword arguments, plus targets
        self,
        workspace_url: str | None = None,
        pg_host: str | None = None,
        pg_username: str | None = None,
        rotation_interval: float = 50,
        *,
        pg_port: int = 5432,
        pg_database: str = "*",
        pgpass_file: str | None = None,
        log_file: str | None = None,
        profile: str | None = None,
        instance: str | None = None,
        endpoint: str | None = None,
        config: RotatorConfig | None = None,
        workspace_client: WorkspaceClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        names: dict[str, str] = {}
        if config is None:
            host = pg_host or os.environ.get("DATABRICKS_PG_HOST") or None
            user = pg_username or os.environ.get("DATABRICKS_PG_USERNAME") or None
            if not (host or instance or endpoint):
                raise ConfigError("no target: give pg_host, instance or endpoint (or set DATABRICKS_PG_HOST)")
            names = {
                **ARGUMENT_NAMES,
                "targets[0].host": "pg_host" if pg_host else "DATABRICKS_PG_HOST",
                "targets[0].user": "pg_username" if pg_username else "DATABRICKS_PG_USERNAME",
            }
            target = TargetConfig(
                instance=instance, endpoint=endpoint, host=host, port=pg_port, database=pg_database, user=user
            )
            config = RotatorConfig(
                targets=[target],
                profile=profile,
                workspace_url=workspace_url,
                pgpass_file=pgpass_file,
                log_file=log_file,
                interval_minutes=rotation_interval,
            )
        # Everything the console checks, before anything is requested or written (the state folder included).
        self.config = check_config(config, names)
        self._names = names
        self._clock = clock or SystemClock()
        self._state = default_state_store()
        self._cycle = build_cycle(self.config, clock=self._clock, workspace_client=workspace_client, state=self._state)
        self._daemon: Daemon | None = None

    def run_once(self) -> list[str]:
        """Rotate every target now; returns the names rotated. Raises a `RotatorError` if any failed.

        Raises `ConfigError` (exit code 2), before any request, when a file it writes can no longer be written.
        """
        check_paths(self.config, self._names)  # a folder removed since __init__ must not cost a credential
        report = run_with_deadline(lambda: self._cycle.run(force=True), ONCE_DEADLINE_SECONDS)
        return raise_for_failures(report).rotated

    def run_daemon(self) -> int:
        """Rotate whenever due until SIGTERM, SIGINT or `stop()`; returns the exit code.

        Raises `ConfigError` (exit code 2), before any request, when a file it writes cannot be written.
        """
        check_paths(self.config, self._names)
        self._daemon = Daemon(InProcessCycleRunner(self._cycle), clock=self._clock, state=self._state)
        in_main_thread = threading.current_thread() is threading.main_thread()
        restore = install_stop_handlers(self._daemon.stop) if in_main_thread else None
        try:
            return self._daemon.run()
        except KeyboardInterrupt:
            return 0
        finally:
            if restore is not None:
                restore()

    def stop(self) -> None:
        """Ask a running `run_daemon()` to return after its current step."""
        if self._daemon is not None:
            self._daemon.stop.set()
