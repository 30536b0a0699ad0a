"""The scheduler's life as a Job, a script and systemd see it: `wait`, `shutdown`, one scheduler per config, SIGHUP,
the messages to systemd, and exit code 0 on SIGTERM and SIGINT. The real scheduler process, the fake workspace
through the real SDK, a real PostgreSQL and psql."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.rotation.scheduler_lock import scheduler_lock_path
from tests.integration.conftest import UserHome
from tests.rigs.net import wait_for
from tests.rigs.users import throwaway_user
from tests.rigs.workspace import DEMO_ENDPOINT, DEMO_INSTANCE

FOREIGN_LINE = b"elsewhere.example.com:5432:*:bob:bobs-own-password\n"


def write_config(home: UserHome, *targets: str, extra: str = "") -> Path:
    """The saved config (where `wait` and `shutdown` look by default) with the named targets: `sales` is the
    Provisioned instance, `reports` the Autoscaling endpoint (on another loopback address)."""
    blocks = {
        "sales": f"  - name: sales\n    instance: {DEMO_INSTANCE}\n    port: {home.postgres.port}\n",
        "reports": f"  - name: reports\n    endpoint: {DEMO_ENDPOINT}\n    port: {home.postgres.port}\n",
    }
    config = home.root / "config" / "config.yml"
    config.parent.mkdir(exist_ok=True, mode=0o700)
    text = f"version: 1\npgpass_file: {home.pgpass}\nlog_file: {home.log_file}\n{extra}targets:\n"
    config.write_text(text + "".join(blocks[name] for name in targets))
    return config


def start(home: UserHome, config: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return home.start("--config", str(config), env=env)


def stopped(daemon: subprocess.Popen[str], signum: int = signal.SIGTERM) -> tuple[int, str]:
    if daemon.poll() is None:
        daemon.send_signal(signum)
    _, err = daemon.communicate(timeout=60)
    return daemon.returncode, err


@pytest.fixture
def running(home: UserHome) -> Iterator[list[subprocess.Popen[str]]]:
    """Schedulers a test started, stopped (and killed if need be) afterwards."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for daemon in started:
        if daemon.poll() is None:
            daemon.kill()
        daemon.communicate(timeout=30)


def hosts_on_file(home: UserHome) -> set[str]:
    try:
        data = home.pgpass.read_bytes()
    except OSError:
        return set()
    return {line.entry.host for line in pgpass.parse(data) if line.entry is not None}


def test_wait_answers_1_before_the_first_rotation_and_0_after_it(home: UserHome, running):
    config = write_config(home, "sales")
    began = time.monotonic()
    early = home.rotator("wait", "--timeout", "1")
    assert early.returncode == 1, early.stderr
    assert time.monotonic() - began >= 1.0
    assert early.stderr.strip().splitlines() == [early.stderr.strip()]  # one line
    assert "sales" in early.stderr and "Traceback" not in early.stderr

    running.append(start(home, config))
    ready = home.rotator("wait", "--timeout", "60")
    assert ready.returncode == 0, ready.stderr
    assert home.login().returncode == 0  # ready means a client logs in now
    assert home.rotator("wait", "--target", "sales", "--timeout=0").returncode == 0
    unknown = home.rotator("wait", "--target", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr
    assert not home.secrets_seen(ready.stdout, ready.stderr, early.stderr)


def test_shutdown_stops_the_running_scheduler_and_says_so_when_none_runs(home: UserHome, running):
    config = write_config(home, "sales")
    daemon = start(home, config)
    running.append(daemon)
    assert home.rotator("wait").returncode == 0

    done = home.rotator("shutdown", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert f"process {daemon.pid}" in done.stderr
    assert daemon.poll() == 0  # gone, and with exit code 0, when shutdown returns
    _, err = daemon.communicate(timeout=10)
    assert "scheduler stopped" in err

    again = home.rotator("shutdown")
    assert again.returncode == 0
    assert again.stderr.strip() == "databricks-oauth-rotator: no scheduler is running for this config" or (
        "no scheduler is running" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    )


def test_a_second_scheduler_of_the_same_config_names_the_first_and_rotates_nothing(home: UserHome, running):
    config = write_config(home, "sales")
    first = start(home, config)
    running.append(first)
    assert home.rotator("wait").returncode == 0
    issued = len(home.workspace.issued)

    second = start(home, config)
    code, err = stopped(second, signal.SIGCONT)  # it ends by itself
    assert code == 0, err
    assert f"process {first.pid}" in err
    assert len(home.workspace.issued) == issued
    assert first.poll() is None


def test_shutdown_refuses_another_users_scheduler(home: UserHome):
    """The process holding the config's lock runs as another user: not signalled, exit 1, one line."""
    config = write_config(home, "sales")
    lock = scheduler_lock_path(home.root / "state", config)
    lock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with throwaway_user() as other:
        ready_read, ready_write = os.pipe()
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the other user's process
            try:
                os.setgroups([])
                os.setgid(other.gid)
                os.setuid(other.uid)
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, f"{os.getpid()}\n".encode())
                os.write(ready_write, b"1")
                time.sleep(60)
            finally:
                os._exit(0)
        os.close(fd)
        try:
            assert os.read(ready_read, 1) == b"1"
            refused = home.rotator("shutdown", "--timeout", "2")
            assert refused.returncode == 1
            assert "another user" in refused.stderr and str(pid) in refused.stderr
            assert len(refused.stderr.strip().splitlines()) == 1
            assert os.waitpid(pid, os.WNOHANG) == (0, 0)  # still running: never signalled
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def test_sighup_adds_removes_and_refuses_targets_while_rotations_continue(home: UserHome, running):
    if len(home.postgres.hosts) < 2:
        pytest.skip("two targets need two loopback addresses")
    home.workspace.ttl_seconds = 20  # rotations every ten seconds or so
    config = write_config(home, "sales")
    home.pgpass.write_bytes(FOREIGN_LINE)
    home.pgpass.chmod(0o600)
    daemon = start(home, config)
    running.append(daemon)
    assert home.rotator("wait").returncode == 0
    endpoint_host = home.postgres.hosts[1]

    write_config(home, "sales", "reports")
    daemon.send_signal(signal.SIGHUP)
    wait_for(lambda: endpoint_host in hosts_on_file(home), 15, "the added target's line")
    assert home.rotator("wait", "--target", "reports").returncode == 0

    write_config(home, "reports")
    daemon.send_signal(signal.SIGHUP)
    wait_for(lambda: "127.0.0.1" not in hosts_on_file(home), 15, "the removed target's line to go")
    assert FOREIGN_LINE in home.pgpass.read_bytes()  # not ours: untouched

    config.write_text(config.read_text() + "no_such_setting: 1\n")
    daemon.send_signal(signal.SIGHUP)
    issued = len(home.workspace.issued)
    wait_for(lambda: len(home.workspace.issued) > issued, 30, "a rotation with the configuration in force")
    assert daemon.poll() is None
    assert endpoint_host in hosts_on_file(home) and FOREIGN_LINE in home.pgpass.read_bytes()
    code, err = stopped(daemon)
    assert code == 0, err
    refusals = [line for line in err.splitlines() if "was not reloaded" in line]
    assert len(refusals) == 1 and "no_such_setting" in refusals[0]  # one line, naming what is wrong
    assert not home.secrets_seen(err)


class NotifySocket:
    """A datagram socket standing in for systemd's `NOTIFY_SOCKET`: every message, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._done.is_set():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def states(self) -> list[str]:
        return [line for message in self.messages for line in message.splitlines() if not line.startswith("MONO")]

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        self.sock.close()


def test_systemd_is_told_ready_after_the_first_cycle_then_reloads_and_the_stop_in_order(
    home: UserHome, tmp_path: Path, running
):
    config = write_config(home, "sales")
    notify = NotifySocket(tmp_path / "notify")
    try:
        daemon = start(home, config, env={"NOTIFY_SOCKET": str(notify.path)})
        running.append(daemon)
        wait_for(lambda: "READY=1" in notify.states(), 60, "READY=1")
        first = notify.states()
        assert first[0] == "READY=1" and first[1].startswith("STATUS=next refresh at ")
        assert home.login().returncode == 0  # READY=1 came after the credential was on file

        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: notify.states().count("READY=1") == 2, 30, "READY=1 after the reload")
        config.write_text("version: 1\ntargets: [\n")
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: notify.states().count("READY=1") == 3, 30, "READY=1 after the refused reload")
        code, err = stopped(daemon)
        assert code == 0, err
        time.sleep(0.3)
    finally:
        notify.close()
    states = notify.states()
    reloads = [i for i, line in enumerate(states) if line == "RELOADING=1"]
    assert len(reloads) == 2
    assert states[reloads[0] + 1] == "READY=1"  # the good reload: ready again after its cycle
    assert states[reloads[1] + 1 : reloads[1] + 3][0] == "READY=1"
    assert states[reloads[1] + 2].startswith("STATUS=configuration not reloaded")
    assert states[-1] == "STOPPING=1"
    assert not home.secrets_seen("\n".join(states))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_end_the_scheduler_with_exit_code_0_and_the_status_recorded(
    home: UserHome, running, signum: int
):
    config = write_config(home, "sales")
    daemon = start(home, config)
    running.append(daemon)
    assert home.rotator("wait").returncode == 0
    code, err = stopped(daemon, signum)
    assert code == 0, err
    assert "scheduler stopped" in err
    assert home.status_file.exists()
    assert home.rotator("wait", "--timeout", "0").returncode == 0  # what it wrote stays usable
