"""Running the rotation loop: the long-lived scheduler, which runs each cycle in a child worker process.

Stdlib and our plain modules only: the scheduler lives for weeks, so it never imports the Databricks SDK (each
worker does, rotates, and exits).
"""

from __future__ import annotations

import os

from databricks.labs.oauth_rotator.app.request import RotationRequest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    from databricks.labs.oauth_rotator.config import RotatorConfig
    from databricks.labs.oauth_rotator.rotation.health import Health
    from databricks.labs.oauth_rotator.rotation.pgbouncer import Supervisor
    from databricks.labs.oauth_rotator.rotation.state import StateStore

    class Closeable(Protocol):
        def close(self) -> None: ...

    HttpStarter = Callable[[str, int, Health, Callable[[], None]], Closeable]
    """Binds address and port and serves the health endpoints (the front door's server, `commands/endpoints.py`)."""

DEFAULT_HTTP_ADDRESS = "127.0.0.1"


def run_scheduler(request: RotationRequest, *, serve_http: HttpStarter | None = None) -> int:
    """The daemon, until SIGTERM or SIGINT (or POST /quitquitquit); returns its exit code (2 when the configuration
    cannot be used). With a port (`--http-port`, `http.port`), `serve_http` answers the sidecar's endpoints."""
    from databricks.labs.oauth_rotator.paths import status_file
    from databricks.labs.oauth_rotator.rotation.daemon import Daemon, SubprocessCycleRunner, install_stop_handlers
    from databricks.labs.oauth_rotator.rotation.schedule import SystemClock
    from databricks.labs.oauth_rotator.rotation.state import StateStore

    config = _prepare(request)
    state = StateStore(status_file())
    health, server = _health_endpoints(request, config, state, serve_http)
    daemon = Daemon(
        SubprocessCycleRunner(request.to_worker()),
        clock=SystemClock(),
        state=state,
        watch=request.config_path,
        observer=health,
    )
    if health is not None:
        health.on_quit = daemon.stop.set
    supervisor = front_supervisor(config)
    install_stop_handlers(daemon.stop)
    if supervisor is not None:
        supervisor.start()
    try:
        return daemon.run()
    finally:
        if supervisor is not None:
            supervisor.stop()  # the front goes with the service: SIGTERM to the scheduler stops pgbouncer too
        if server is not None:
            server.close()


def _prepare(request: RotationRequest) -> RotatorConfig:
    """Logging, the service's environment file, then the config read once and put through the one preflight: a
    setup that could never work is exit 2 now, not a worker's failure cycle after cycle."""
    from logging import DEBUG, INFO
    from pathlib import Path

    from databricks.labs.oauth_rotator.files.logs import setup_logging
    from databricks.labs.oauth_rotator.paths import ENV_FILE_VARIABLE

    setup_logging(None, level=DEBUG if request.debug else INFO)
    env_file = os.environ.get(ENV_FILE_VARIABLE)
    if env_file:
        from databricks.labs.oauth_rotator.files.env_file import read_environment_file

        # launchd cannot read an EnvironmentFile itself; the worker children inherit what we load here.
        os.environ.update(read_environment_file(Path(env_file)))
    from databricks.labs.oauth_rotator.app.preflight import preflight
    from databricks.labs.oauth_rotator.files.config_store import effective_config

    # The one reader (which refuses a config someone else could replace), then the one preflight (status.json and
    # every file the config names, the pgpass front's machine and port).
    return preflight(effective_config(request.config_path, request.overrides))


def _health_endpoints(
    request: RotationRequest, config: RotatorConfig, state: StateStore, serve_http: HttpStarter | None
) -> tuple[Health | None, Closeable | None]:
    """The sidecar's health and its server, bound now (a taken port is exit 2 before anything is written); none
    without a port. The flags win over the config's `http:` block."""
    block = config.http
    port = request.http_port if request.http_port is not None else (block.port if block is not None else None)
    if port is None or serve_http is None:
        return None, None
    address = request.http_address or (block.address if block is not None and block.address else DEFAULT_HTTP_ADDRESS)
    from databricks.labs.oauth_rotator.rotation.health import Health

    margin = config.effective_margin_minutes * 60.0
    health = Health(state, margin_seconds=margin)
    return health, serve_http(address, port, health, health.quit)


def front_supervisor(config: RotatorConfig) -> Supervisor | None:
    """The supervisor of the pgbouncer front when the config has a managed one, else None (its machine was checked
    by the preflight)."""
    front = config.front
    if front is None or not front.is_managed:
        return None
    from databricks.labs.oauth_rotator.paths import pgpass_path_for, status_file
    from databricks.labs.oauth_rotator.rotation.pgbouncer import (
        Supervisor,
        binary_version,
        find_binary,
        read_pgpass,
        write_front,
    )
    from databricks.labs.oauth_rotator.rotation.state import StateStore

    binary = find_binary(front)
    version = binary_version(binary) if binary else None
    state = StateStore(status_file())

    def prepare() -> None:
        # Before each start: the ini pgbouncer reads at start, with the credentials on file now.
        write_front(config, read_pgpass(pgpass_path_for(config)), state.load(), version=version)

    return Supervisor(config, prepare=prepare)
