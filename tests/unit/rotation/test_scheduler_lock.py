"""The scheduler's lock and `shutdown`'s stop, with real processes holding the lock."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from databricks.labs.oauth_rotator.rotation.scheduler_lock import (
    ShutdownError,
    Stopped,
    hold,
    holder,
    scheduler_lock_path,
    stop_scheduler,
)
from tests.rigs.users import reachable_directory, throwaway_user

HOLDER = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    from databricks.labs.oauth_rotator.rotation.scheduler_lock import hold
    lock = hold(Path(sys.argv[1]))
    def stop(*_):
        time.sleep(float(sys.argv[2]))  # a clean stop takes a moment: the lock is held until the very end
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop if sys.argv[2] != "ignore" else signal.SIG_IGN)
    print("held" if lock is not None else "taken", flush=True)
    time.sleep(60)
    """
)


def start_holder(path, on_term="0.3"):
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), on_term], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "held"
    return child


def test_one_lock_per_config_and_one_for_a_flags_only_scheduler(tmp_path):
    config = tmp_path / "config.yml"
    assert scheduler_lock_path(tmp_path, config) == scheduler_lock_path(tmp_path, tmp_path / "." / "config.yml")
    assert scheduler_lock_path(tmp_path, config) != scheduler_lock_path(tmp_path, tmp_path / "other.yml")
    assert scheduler_lock_path(tmp_path, None).parent == tmp_path


def test_no_scheduler_means_no_holder_and_nothing_to_stop(tmp_path):
    path = tmp_path / "scheduler-x.lock"
    assert holder(path) is None
    lock = hold(path)
    assert lock is not None
    lock.release()  # a lock file left behind by a scheduler that exited
    assert holder(path) is None
    assert stop_scheduler(path, timeout=1) == Stopped(None)


def test_a_second_scheduler_finds_the_lock_taken(tmp_path):
    path = tmp_path / "scheduler-x.lock"
    child = start_holder(path)
    try:
        assert hold(path) is None
        assert holder(path) == child.pid
    finally:
        child.kill()
        child.wait()
    assert holder(path) is None  # the OS dropped the lock of the killed process


def test_shutdown_stops_the_scheduler_and_returns_once_it_has_exited(tmp_path):
    path = tmp_path / "scheduler-x.lock"
    child = start_holder(path, on_term="0.5")
    started = time.monotonic()
    assert stop_scheduler(path, timeout=10) == Stopped(child.pid)
    assert time.monotonic() - started >= 0.5  # waited for the clean stop, not only for the signal
    assert child.wait(timeout=5) == 0


def test_a_scheduler_still_running_at_the_timeout_is_exit_1(tmp_path):
    path = tmp_path / "scheduler-x.lock"
    child = start_holder(path, on_term="ignore")
    try:
        with pytest.raises(ShutdownError, match=rf"process {child.pid}\) is still running after 0.5 s") as caught:
            stop_scheduler(path, timeout=0.5)
        assert caught.value.exit_code == 1
    finally:
        child.kill()
        child.wait()


def test_another_users_scheduler_is_never_signalled():
    with throwaway_user() as other, reachable_directory() as folder:
        path = folder / "scheduler-x.lock"
        path.touch(mode=0o600)
        os.chown(path, other.uid, other.gid)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the other user's scheduler
            os.setgroups([])
            os.setgid(other.gid)
            os.setuid(other.uid)
            lock = hold(path)
            os.write(write, b"held" if lock is not None else b"taken")
            time.sleep(30)
            os._exit(0)
        try:
            assert os.read(read, 10) == b"held"
            signalled = []
            with pytest.raises(ShutdownError, match="belongs to another user"):
                stop_scheduler(path, timeout=1, kill=lambda *args: signalled.append(args))
            assert not signalled
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
