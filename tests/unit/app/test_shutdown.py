"""`shutdown`: the lock of the config it is given (or the saved one's), and its one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from databricks.labs.oauth_rotator.app import shutdown
from databricks.labs.oauth_rotator.rotation.scheduler_lock import Stopped, hold, scheduler_lock_path


def test_none_running_is_a_stop_of_nothing(tmp_path: Path):
    environ = {"HOME": str(tmp_path), "DATABRICKS_LABS_STATE_DIR": str(tmp_path / "state")}
    stopped = shutdown.shutdown_scheduler(str(tmp_path / "config.yml"), timeout=1, environ=environ)
    assert stopped == Stopped(None)
    assert shutdown.shutdown_message(stopped) == "no scheduler is running for this config"


def test_the_holder_of_the_saved_configs_lock_is_stopped_and_waited_for(tmp_path: Path):
    environ = {
        "HOME": str(tmp_path),
        "DATABRICKS_LABS_STATE_DIR": str(tmp_path / "state"),
        "DATABRICKS_LABS_CONFIG_DIR": str(tmp_path / "config"),
    }
    lock = scheduler_lock_path(tmp_path / "state", tmp_path / "config" / "config.yml")
    lock.parent.mkdir()
    holder = subprocess.Popen(  # a process that holds the lock until SIGTERM, as the scheduler does
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\n"
            "from databricks.labs.oauth_rotator.rotation.scheduler_lock import hold\n"
            f"lock = hold(Path({str(lock)!r}))\nprint('held', flush=True)\ntime.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        stopped = shutdown.shutdown_scheduler(None, timeout=10, environ=environ)
        assert stopped == Stopped(holder.pid)
        assert holder.poll() is not None
        assert shutdown.shutdown_message(stopped) == f"stopped the scheduler (process {holder.pid})"
        assert hold(lock) is not None  # free again
    finally:
        holder.kill()
        holder.wait()
