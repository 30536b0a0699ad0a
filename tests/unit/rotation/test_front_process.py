"""The front's process: its pid, its reload, and the supervisor, with small programs standing in for pgbouncer."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from databricks.labs.oauth_rotator.rotation import front_process
from databricks.labs.oauth_rotator.rotation.front_folder import FrontFiles, ServiceUser
from databricks.labs.oauth_rotator.rotation.front_process import Supervisor


def wait_for(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def a_process_named_pgbouncer(tmp_path: Path) -> subprocess.Popen[bytes]:
    """`sleep`, copied under pgbouncer's name: /proc says `pgbouncer`."""
    fake = tmp_path / "pgbouncer"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    child = subprocess.Popen([str(fake), "30"])
    wait_for(lambda: Path(f"/proc/{child.pid}/comm").read_text().strip() == "pgbouncer")  # once it has exec'd
    return child


@pytest.mark.skipif(not Path("/proc/self/comm").exists(), reason="needs /proc")
def test_a_pid_is_ours_to_signal_only_when_it_is_pgbouncer_run_by_the_service_user(tmp_path: Path):
    child = a_process_named_pgbouncer(tmp_path)
    try:
        pidfile = tmp_path / "pgbouncer.pid"
        pidfile.write_text(f"{child.pid}\n")
        assert front_process.running_pid(pidfile) == child.pid
        assert front_process.running_pid(pidfile, owner=os.geteuid()) == child.pid
        assert front_process.running_pid(pidfile, owner=os.geteuid() + 12345) is None, "another user's process"
        pidfile.write_text(f"{os.getpid()}\n")
        assert front_process.running_pid(pidfile) is None, "alive, but not pgbouncer"
    finally:
        child.kill()
        child.wait()


def test_the_pid_is_asked_about_never_signalled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """os.kill(pid, 0) terminates the process on Windows: `running_pid` asks `hostos.process_alive` (whose Windows
    branch asks kernel32, tests/unit/test_hostos.py), and sends no signal itself."""
    killed: list[Any] = []
    asked: list[int] = []
    monkeypatch.setattr(os, "kill", lambda *args: killed.append(args))
    (tmp_path / "pgbouncer.pid").write_text(f"{os.getpid()}\n")

    def alive(pid: int) -> bool:
        asked.append(pid)
        return False

    assert front_process.running_pid(tmp_path / "pgbouncer.pid", alive=alive) is None
    assert asked == [os.getpid()] and killed == []


def test_pgbouncer_runs_in_the_foreground_with_its_stderr_ours_and_as_the_service_user(tmp_path: Path):
    files = FrontFiles(tmp_path)
    argv = front_process.argv_for("/usr/sbin/pgbouncer", files, ServiceUser("postgres", 1, 1))
    assert argv == ["/usr/sbin/pgbouncer", "-u", "postgres", str(files.ini)] and "-q" not in argv


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "fake-pgbouncer"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return [str(path)]


def test_a_pgbouncer_that_dies_at_start_is_recorded_down_in_its_own_words(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    records: list[dict[str, Any]] = []
    argv = script(tmp_path, "echo '2026-01-01 00:00:00 UTC [9] FATAL cannot load config file' >&2; exit 1")
    supervisor = Supervisor(argv, FrontFiles(tmp_path), record=records.append, delays=(5.0,))
    with caplog.at_level(logging.DEBUG):
        supervisor.start()
        wait_for(lambda: any(r.get("process") == "down" for r in records))
        supervisor.stop()
    down = next(r for r in records if r.get("process") == "down")
    assert "FATAL cannot load config file" in down["error"] and down["failures"] == 1
    assert "pgbouncer: 2026-01-01 00:00:00 UTC [9] FATAL cannot load config file" in caplog.text
    assert "pgbouncer exited (exit code 1); 2026-01-01" in caplog.text
    assert records[-1]["process"] == "stopped"


def test_a_pgbouncer_that_is_up_is_recorded_running(tmp_path: Path):
    records: list[dict[str, Any]] = []
    argv = script(tmp_path, "echo 'LOG process up: PgBouncer 1.18.0' >&2; exec sleep 30")
    supervisor = Supervisor(argv, FrontFiles(tmp_path), record=records.append)
    supervisor.start()
    try:
        wait_for(lambda: any(r.get("process") == "running" for r in records))
        assert supervisor.pid is not None and supervisor.starts == 1
    finally:
        supervisor.stop()
    assert supervisor.pid is None


def test_a_pgbouncer_on_one_loopback_only_is_stopped(tmp_path: Path):
    """It warns and keeps running when [::1] is taken since our check: clients of `localhost` would reach the
    other listener. A failed start instead, retried."""
    records: list[dict[str, Any]] = []
    body = "echo 'WARNING cannot listen on [::1]:6432: bind(): Address already in use' >&2; exec sleep 30"
    supervisor = Supervisor(script(tmp_path, body), FrontFiles(tmp_path), record=records.append, delays=(5.0,))
    supervisor.start()
    try:
        wait_for(lambda: any(r.get("process") == "down" for r in records))
    finally:
        supervisor.stop()
    down = next(r for r in records if r.get("process") == "down")
    assert "cannot listen on [::1]" in down["error"]
    assert json.dumps(records)  # plain values: they go to state/pgbouncer.json


def test_a_start_that_its_preparation_refuses_is_a_failed_start(tmp_path: Path):
    from databricks.labs.oauth_rotator.errors import ConfigError

    records: list[dict[str, Any]] = []

    def refuse() -> None:
        raise ConfigError("pgbouncer.listen_port: cannot listen on 127.0.0.1:6432: Address already in use")

    supervisor = Supervisor(["/bin/false"], FrontFiles(tmp_path), prepare=refuse, record=records.append)
    supervisor.start()
    wait_for(lambda: any(r.get("process") == "failed" for r in records))
    supervisor.stop()
    assert supervisor.starts == 0
    assert "cannot listen on 127.0.0.1:6432" in next(r for r in records if r["process"] == "failed")["error"]


def test_a_stop_asks_pgbouncer_for_its_safe_shutdown_first(tmp_path: Path):
    """SIGINT is pgbouncer's safe shutdown (pgbouncer(1)): a front that takes it exits on it, not on SIGTERM."""
    got = tmp_path / "signals"
    body = f"trap 'echo INT >> {got}; exit 0' INT; trap 'echo TERM >> {got}; exit 0' TERM; while :; do sleep 0.05; done"
    supervisor = Supervisor(script(tmp_path, body), FrontFiles(tmp_path))
    supervisor.start()
    wait_for(lambda: supervisor.pid is not None)
    time.sleep(0.3)  # the traps are set
    supervisor.stop()
    assert got.read_text() == "INT\n"


def test_a_stop_is_bounded_when_pgbouncer_ignores_its_safe_shutdown(tmp_path: Path):
    """Clients that never finish keep a safe shutdown waiting: after its bound, the fast exit (SIGTERM)."""
    got = tmp_path / "signals"
    body = f"trap 'echo INT >> {got}' INT; trap 'echo TERM >> {got}; exit 0' TERM; while :; do sleep 0.05; done"
    supervisor = Supervisor(script(tmp_path, body), FrontFiles(tmp_path), safe_stop_seconds=0.5)
    supervisor.start()
    wait_for(lambda: supervisor.pid is not None)
    time.sleep(0.3)
    began = time.monotonic()
    supervisor.stop()
    assert time.monotonic() - began < front_process.STOP_SECONDS
    assert got.read_text() == "INT\nTERM\n"


def test_an_adopted_preparation_is_the_one_the_next_start_runs(tmp_path: Path):
    prepared: list[str] = []
    old = Supervisor(["/bin/false"], FrontFiles(tmp_path), prepare=lambda: prepared.append("old"), delays=(0.1,))
    old.adopt(Supervisor(["/bin/false"], FrontFiles(tmp_path), prepare=lambda: prepared.append("new")))
    old.start()
    wait_for(lambda: len(prepared) >= 2)
    old.stop()
    assert set(prepared) == {"new"}
