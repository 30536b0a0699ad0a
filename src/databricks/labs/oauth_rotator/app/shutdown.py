"""`shutdown`: stop the scheduler that serves a config and wait until it has exited.

For Jobs whose rotator sidecar is not a native one (its app container ends, the pod would run for ever) and for
scripts. The scheduler is the process holding the config's lock (`rotation/scheduler_lock.py`); only a process of
the same user is signalled, with SIGTERM, the clean stop (status recorded, the pgbouncer front stopped safely).
"""

from __future__ import annotations

import os
from pathlib import Path

from databricks.labs.oauth_rotator.paths import config_file_name, state_dir
from databricks.labs.oauth_rotator.rotation.scheduler_lock import Stopped, scheduler_lock_path, stop_scheduler

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_TIMEOUT_SECONDS = 30.0


def shutdown_scheduler(
    config_path: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    environ: Mapping[str, str] | None = None,
) -> Stopped:
    """Stop the scheduler of `config_path` (the saved config when None) and wait for its exit; `Stopped(None)` when
    none runs. `ShutdownError` (exit 1) when it is another user's or still runs at the timeout."""
    environ = os.environ if environ is None else environ
    path = Path(os.path.expanduser(config_path)) if config_path else Path(config_file_name(environ))
    lock = scheduler_lock_path(state_dir(environ), path)
    return stop_scheduler(lock, timeout=max(0.0, timeout))


def shutdown_message(stopped: Stopped) -> str:
    """The one line `shutdown` prints."""
    if stopped.pid is None:
        return "no scheduler is running for this config"
    return f"stopped the scheduler (process {stopped.pid})"
