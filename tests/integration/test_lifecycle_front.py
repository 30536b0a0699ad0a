"""The scheduler's stop and reload with the pgbouncer front: a safe shutdown and exit code 0 on SIGTERM and SIGINT;
the `pgbouncer:` block added or removed by SIGHUP starts or stops the front; a setting pgbouncer reloads reaches it
without dropping an open client session."""

from __future__ import annotations

import signal

import psycopg
import pytest

from tests.integration import test_pgbouncer
from tests.integration.conftest import UserHome
from tests.integration.test_pgbouncer import (
    LOCAL_PASSWORD,
    _alive,
    _pid,
    connect_front,
    front_logs_in,
    front_port,
    pytestmark,  # noqa: F401  # skipped where pgbouncer is not installed
    start_service,
    whoami,
    write_config,
)
from tests.rigs.net import wait_for

front_dir = test_pgbouncer.front_dir  # the fixture: a folder pgbouncer's user can reach, cleaned up afterwards


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_stop_the_front_safely_and_end_with_exit_code_0(home: UserHome, front_dir, signum):
    config = write_config(home, front_dir)
    port = front_port(config)
    daemon = start_service(home, config)
    try:
        wait_for(lambda: front_logs_in(port), 60, "a login through the front")
        pid = _pid(front_dir / "run" / "pgbouncer.pid")
        assert pid is not None and _alive(pid)
    finally:
        daemon.send_signal(signum)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "pgbouncer stopped" in err and "scheduler stopped" in err
    assert not _alive(pid)
    assert not front_logs_in(port)
    assert not home.secrets_seen(err)


def test_sighup_starts_stops_and_reloads_the_front_without_dropping_a_session(home: UserHome, front_dir):
    config = write_config(home, front_dir)
    with_front = config.read_text()
    without_front = with_front[: with_front.index("pgbouncer:")]
    port = front_port(config)
    config.write_text(without_front)
    daemon = start_service(home, config)
    try:
        assert home.rotator("wait", "--config", str(config), "--timeout", "60").returncode == 0
        assert not front_logs_in(port)

        config.write_text(with_front)
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: front_logs_in(port), 60, "the front added by a reload")
        pid = _pid(front_dir / "run" / "pgbouncer.pid")

        with connect_front(port) as session:
            config.write_text(with_front.replace(LOCAL_PASSWORD, "local-front-password-2"))
            daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: not front_logs_in(port), 30, "the old local password refused")
            assert whoami(session) == "someone@example.com"  # the open session was not dropped
        with connect_front(port, password="local-front-password-2") as conn:
            assert whoami(conn) == "someone@example.com"
        assert _pid(front_dir / "run" / "pgbouncer.pid") == pid  # reloaded, not restarted

        config.write_text(without_front)
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: pid is None or not _alive(pid), 30, "the front removed by a reload")
        with pytest.raises(psycopg.OperationalError):
            connect_front(port, password="local-front-password-2").close()
        assert daemon.poll() is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert not home.secrets_seen(err)
