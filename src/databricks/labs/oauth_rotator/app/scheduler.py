"""Running the rotation loop: the long-lived scheduler, which runs each cycle in a child worker process.

Stdlib and our plain modules only: the scheduler lives for weeks, so it never imports the Databricks SDK (each
worker does, rotates, and exits).
"""

from __future__ import annotations

import os

from databricks.labs.oauth_rotator.app.request import RotationRequest


def run_scheduler(request: RotationRequest) -> int:
    """The daemon, until SIGTERM or SIGINT; returns its exit code (2 when the configuration cannot be used)."""
    from logging import DEBUG, INFO
    from pathlib import Path

    from databricks.labs.oauth_rotator.files.logs import setup_logging
    from databricks.labs.oauth_rotator.paths import ENV_FILE_VARIABLE, status_file
    from databricks.labs.oauth_rotator.rotation.daemon import Daemon, SubprocessCycleRunner, install_stop_handlers
    from databricks.labs.oauth_rotator.rotation.schedule import SystemClock
    from databricks.labs.oauth_rotator.rotation.state import StateStore

    setup_logging(None, level=DEBUG if request.debug else INFO)
    env_file = os.environ.get(ENV_FILE_VARIABLE)
    if env_file:
        from databricks.labs.oauth_rotator.files.env_file import read_environment_file

        # launchd cannot read an EnvironmentFile itself; the worker children inherit what we load here.
        os.environ.update(read_environment_file(Path(env_file)))
    from databricks.labs.oauth_rotator.trust import check_trusted

    # Refused at start (exit 2), not cycle after cycle: a config or status file someone else could replace.
    if request.config_path is not None:
        check_trusted(request.config_path, for_write=False)
    check_trusted(status_file(), for_write=True)
    daemon = Daemon(
        SubprocessCycleRunner(request.to_worker()),
        clock=SystemClock(),
        state=StateStore(status_file()),
        watch=request.config_path,
    )
    install_stop_handlers(daemon.stop)
    return daemon.run()
