"""The Python API, compatible with the original tool: `DatabricksOAuthRotator(...).run_once()` / `.run_daemon()`.

An entry point like the console scripts: it turns its keyword arguments into a checked config, then rotates through
the application layer.
"""

from __future__ import annotations

import os
import threading

from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator.app.preflight import preflight
from databricks.labs.oauth_rotator.app.rotate import (
    InProcessCycleRunner,
    build_cycle,
    default_state_store,
    raise_for_failures,
)
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.deadlines import ONCE_DEADLINE_SECONDS, run_with_deadline
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.rotation.daemon import Daemon, install_stop_handlers
from databricks.labs.oauth_rotator.rotation.schedule import Clock, SystemClock

ARGUMENT_NAMES = {
    "interval_minutes": "rotation_interval",
    "targets[0]": "target",
    "targets[0].port": "pg_port",
    "targets[0].database": "pg_database",
    "targets[0].instance": "instance",
    "targets[0].endpoint": "endpoint",
}
"""The `DatabricksOAuthRotator` argument for each config key that is not spelled the same, for error messages."""


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
        self.config = preflight(config, names)
        self._names = names
        self._clock = clock or SystemClock()
        self._state = default_state_store()
        self._cycle = build_cycle(self.config, clock=self._clock, workspace_client=workspace_client, state=self._state)
        self._daemon: Daemon | None = None

    def run_once(self) -> list[str]:
        """Rotate every target now; returns the names rotated. Raises a `RotatorError` if any failed.

        Raises `ConfigError` (exit code 2), before any request, when a file it writes can no longer be written.
        """
        preflight(self.config, self._names)  # a folder removed since __init__ must not cost a credential
        report = run_with_deadline(lambda: self._cycle.run(force=True), ONCE_DEADLINE_SECONDS)
        return raise_for_failures(report).rotated

    def run_daemon(self) -> int:
        """Rotate whenever due until SIGTERM, SIGINT or `stop()`; returns the exit code.

        Raises `ConfigError` (exit code 2), before any request, when a file it writes cannot be written.
        """
        preflight(self.config, self._names)
        self._daemon = Daemon(InProcessCycleRunner(self._cycle), clock=self._clock, state=self._state)
        in_main_thread = threading.current_thread() is threading.main_thread()
        restore = install_stop_handlers(self._daemon.request_stop) if in_main_thread else None
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
            self._daemon.request_stop()
