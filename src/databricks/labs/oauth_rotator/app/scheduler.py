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

    from databricks.labs.oauth_rotator.app.reload import ConfigInForce
    from databricks.labs.oauth_rotator.config import RotatorConfig
    from databricks.labs.oauth_rotator.files.lock import FileLock
    from databricks.labs.oauth_rotator.rotation.daemon import Daemon
    from databricks.labs.oauth_rotator.rotation.front_process import Supervisor
    from databricks.labs.oauth_rotator.rotation.health import EndpointsPlan, Health
    from databricks.labs.oauth_rotator.rotation.state import StateStore

    class Closeable(Protocol):
        def close(self) -> None: ...

    HttpStarter = Callable[[EndpointsPlan, Health], Closeable]
    """Binds what the plan asks for and serves the probes and the admin port (the entry point's servers,
    `commands/endpoints.py`)."""

DEFAULT_HTTP_ADDRESS = "127.0.0.1"


def run_scheduler(request: RotationRequest, *, serve_http: HttpStarter | None = None) -> int:
    """The daemon, until SIGTERM or SIGINT (or POST /quitquitquit on the admin port, or `shutdown`); returns its
    exit code: 0 after a clean stop, 2 when the configuration cannot be used. SIGHUP reloads the configuration.
    With a port (`--http-port`, `http.port`), `serve_http` answers the sidecar's probes; with `--quitquitquit`
    (`http.quitquitquit`), the admin port too.

    One scheduler serves a config: a second one of the same config says which process serves it and exits 0,
    so nothing is rotated twice (a service manager that starts it again is told it is done, not that it failed)."""
    config = _prepare(request)
    lock = _serving_lock(request)
    if lock is None:
        return 0
    try:
        return _serve(request, config, serve_http)
    finally:
        lock.release()


def _serving_lock(request: RotationRequest) -> FileLock | None:
    """The config's scheduler lock, held until we exit (`shutdown` finds us by it); None when another holds it."""
    import logging

    from databricks.labs.oauth_rotator.paths import state_dir
    from databricks.labs.oauth_rotator.rotation.scheduler_lock import hold, holder, scheduler_lock_path

    path = scheduler_lock_path(state_dir(), request.config_path)
    os.makedirs(path.parent, mode=0o700, exist_ok=True)  # not files.writer: the scheduler stays small
    lock = hold(path)
    if lock is None:
        pid = holder(path)
        running = f"process {pid}" if pid is not None else "another process"
        logging.getLogger(__name__).warning(
            f"A scheduler already serves this configuration ({running}): not starting a second one"
        )
    return lock


def _serve(request: RotationRequest, config: RotatorConfig, serve_http: HttpStarter | None) -> int:
    """The loop with its collaborators: the endpoints, the configuration in force (and its front), systemd."""
    from databricks.labs.oauth_rotator.paths import status_file
    from databricks.labs.oauth_rotator.rotation.daemon import install_stop_handlers
    from databricks.labs.oauth_rotator.rotation.state import StateStore

    state = StateStore(status_file())
    health, server = _health_endpoints(request, config, state, serve_http)
    daemon, in_force = _daemon(request, config, state, health)
    if health is not None:
        health.on_quit = daemon.request_stop
    install_stop_handlers(daemon.request_stop, reload=daemon.request_reload)
    in_force.start_front()
    try:
        return daemon.run()
    finally:
        in_force.stop_front()  # the front goes with the service: SIGTERM to the scheduler stops pgbouncer too
        if server is not None:
            server.close()


def _daemon(
    request: RotationRequest, config: RotatorConfig, state: StateStore, health: Health | None
) -> tuple[Daemon, ConfigInForce]:
    import threading

    from databricks.labs.oauth_rotator.app.reload import ConfigInForce, worker_request
    from databricks.labs.oauth_rotator.rotation.daemon import Daemon, SubprocessCycleRunner
    from databricks.labs.oauth_rotator.rotation.readiness import SystemdReadiness
    from databricks.labs.oauth_rotator.rotation.schedule import SystemClock
    from databricks.labs.oauth_rotator.rotation.sd_notify import SystemdNotifier

    stop = threading.Event()  # SIGTERM ends a cycle in progress too (launchd kills a job 20 s after SIGTERM)
    runner = SubprocessCycleRunner(worker_request(request, config), stop=stop)
    in_force = ConfigInForce(
        config,
        read=lambda: _read_config(request),
        state=state,
        supervisor_of=front_supervisor,
        use=lambda new: runner.use(worker_request(request, new)),
    )
    daemon = Daemon(
        runner,
        stop=stop,
        clock=SystemClock(),
        state=state,
        watch=request.config_path,
        observer=health,
        reloader=in_force.reload if request.config_path is not None else None,
        readiness=SystemdReadiness(SystemdNotifier(), state),
    )
    return daemon, in_force


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
    # The one reader (which refuses a config someone else could replace), then the one preflight (status.json and
    # every file the config names, the pgbouncer front's machine). Without the front's port: a port someone holds
    # is the supervisor's to report and retry, while `.pgpass` keeps being rotated.
    return _read_config(request)


def _read_config(request: RotationRequest) -> RotatorConfig:
    """The config file read anew with the flags over it, through the one preflight (at start and on each reload);
    once checked, remembered for `password` and `wait` (the workers, which used to, no longer read the file)."""
    from databricks.labs.oauth_rotator.app.preflight import preflight
    from databricks.labs.oauth_rotator.files.config_cache import remember
    from databricks.labs.oauth_rotator.files.config_store import effective_source

    config, source = effective_source(request.config_path, request.overrides)
    preflight(config, port=False)
    if source is not None:
        remember(source)
    return config


def _health_endpoints(
    request: RotationRequest, config: RotatorConfig, state: StateStore, serve_http: HttpStarter | None
) -> tuple[Health | None, Closeable | None]:
    """The sidecar's health and its servers, bound now (a taken port is exit 2 before anything is written); none
    without a port or `--quitquitquit`. The flags win over the config's `http:` block."""
    plan = endpoints_plan(request, config)
    if plan is None or serve_http is None:
        return None, None
    from databricks.labs.oauth_rotator.rotation.health import Health

    margin = config.effective_margin_minutes * 60.0
    health = Health(state, margin_seconds=margin, host_labels=_host_labels(request, config), front=_front_probe(config))
    return health, serve_http(plan, health)


def endpoints_plan(request: RotationRequest, config: RotatorConfig | None) -> EndpointsPlan | None:
    """What to serve over HTTP, from the flags and the config's `http:` block; None when nothing. The admin port
    needs `--quitquitquit` (it serves nothing else), and must differ from the probes' (`ConfigError`, exit 2)."""
    from databricks.labs.oauth_rotator.errors import ConfigError
    from databricks.labs.oauth_rotator.rotation.health import DEFAULT_ADMIN_PORT, EndpointsPlan

    block = config.http if config is not None else None
    port = request.http_port if request.http_port is not None else (block.port if block is not None else None)
    admin_port = request.admin_port if request.admin_port is not None else (block.admin_port if block else None)
    quit_on = request.quitquitquit or bool(block is not None and block.quitquitquit)
    if admin_port is not None and not quit_on:
        raise ConfigError("--admin-port serves only POST /quitquitquit: add --quitquitquit (or http.quitquitquit)")
    if quit_on and admin_port is None:
        admin_port = DEFAULT_ADMIN_PORT
    if admin_port is not None and admin_port == port:
        raise ConfigError(f"--admin-port: {admin_port} is the probes' port (--http-port); administration is apart")
    if port is None and admin_port is None:
        return None
    address = request.http_address or (block.address if block is not None and block.address else DEFAULT_HTTP_ADDRESS)
    return EndpointsPlan(address, port, admin_port)


def _host_labels(request: RotationRequest, config: RotatorConfig | None) -> frozenset[str]:
    """The labels that are a host: targets with no name, instance or endpoint (the endpoints never show them)."""
    targets = list(config.targets) if config is not None else []
    labels = {t.label for t in targets if not (t.name or t.instance or t.endpoint)}
    flagged = request.overrides.get("target") or {}
    if flagged.get("host") and not (flagged.get("instance") or flagged.get("endpoint")):
        labels.add(str(flagged["host"]))
    return frozenset(labels)


def _front_probe(config: RotatorConfig | None) -> Callable[[], str | None] | None:
    """For `/readiness`, when the config says its supervised pgbouncer front is required: why it is not serving."""
    front = config.front if config is not None else None
    if front is None or not front.is_managed or not front.required:
        return None
    from databricks.labs.oauth_rotator.paths import front_file
    from databricks.labs.oauth_rotator.rotation.front_health import front_problem

    path = front_file()
    return lambda: front_problem(path)


def front_supervisor(config: RotatorConfig) -> Supervisor | None:
    """The supervisor of the pgbouncer front when the config has a managed one, else None (its machine was checked
    by the preflight)."""
    if config.front is None or not config.front.is_managed:
        return None
    from databricks.labs.oauth_rotator.paths import pgpass_path_for, status_file
    from databricks.labs.oauth_rotator.rotation.front import Front
    from databricks.labs.oauth_rotator.rotation.state import StateStore

    return Front(config).supervisor(pgpass_path_for(config), StateStore(status_file()))
