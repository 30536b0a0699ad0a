"""The pgbouncer front, for real: Debian's pgbouncer in front of the PostgreSQL rig (SSL, SCRAM, VALID UNTIL),
credentials from the fake workspace, clients with a fixed local password.

pgbouncer refuses to run as root: under root (CI) the config says `run_as: postgres`, and the front's folder is
made under /tmp, where that user can reach it (pytest's own temp folders are private to root).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from databricks.labs.oauth_rotator.app.doctor import check_front
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.files.config_store import load_config
from databricks.labs.oauth_rotator.rotation.front_checks import has_ipv6_loopback
from databricks.labs.oauth_rotator.rotation.state import StateStore
from tests.integration.conftest import USER, UserHome
from tests.rigs.net import free_port, wait_for
from tests.rigs.workspace import DEMO_INSTANCE

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
LOCAL_USER = "lakebase"
LOCAL_PASSWORD = "local-front-password-1"
RUN_AS = "postgres" if os.geteuid() == 0 else None

pytestmark = pytest.mark.skipif(not os.access(PGBOUNCER, os.X_OK), reason="pgbouncer is not installed")


@pytest.fixture
def front_dir() -> Iterator[Path]:
    """A folder the OS user pgbouncer runs as can reach; the product makes `<it>/front` private to that user."""
    base = Path(tempfile.mkdtemp(prefix="oauth-rotator-pgbouncer-", dir="/tmp"))
    base.chmod(0o755)
    yield base / "front"
    pid = _pid(base / "front" / "run" / "pgbouncer.pid")
    if pid:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(base, ignore_errors=True)


def write_config(home: UserHome, front_dir: Path, **front: Any) -> Path:
    block = {
        "password": LOCAL_PASSWORD,
        "dir": str(front_dir),
        "listen_port": free_port(),
        "server_tls_ca_file": str(home.postgres.ca_file),  # verify-full (the default) against the rig's CA
        **front,
    }
    if RUN_AS:
        block.setdefault("run_as", RUN_AS)
    lines = "".join(f"  {key}: {value}\n" for key, value in block.items() if value is not None)
    config = home.root / "config.yml"
    config.write_text(
        f"""version: 1
pgpass_file: {home.pgpass}
log_file: {home.log_file}
targets:
  - name: sales
    instance: {DEMO_INSTANCE}
    port: {home.postgres.port}
    database: postgres
pgbouncer:
{lines}"""
    )
    return config


def front_port(config: Path) -> int:
    return int(next(line.split(":")[1] for line in config.read_text().splitlines() if "listen_port" in line))


def connect_front(port: int, password: str = LOCAL_PASSWORD, host: str = "127.0.0.1") -> psycopg.Connection[Any]:
    return psycopg.connect(host=host, port=port, dbname="sales", user=LOCAL_USER, password=password, connect_timeout=5)


def whoami(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("select current_user").fetchone()
    assert row is not None
    return str(row[0])


def front_logs_in(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with connect_front(port, host=host) as conn:
            return whoami(conn) == USER
    except psycopg.OperationalError:
        return False


def direct_login(home: UserHome, password: str) -> bool:
    try:
        with psycopg.connect(
            host="127.0.0.1",
            port=home.postgres.port,
            dbname="postgres",
            user=USER,
            password=password,
            sslmode="require",
            connect_timeout=5,
        ):
            return True
    except psycopg.OperationalError:
        return False


def _pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_clients_log_in_through_the_front_across_a_rotation_and_a_pgbouncer_crash(home: UserHome, front_dir: Path):
    """20-second credentials: the one pgbouncer first logs in with is dead on the server well within the test."""
    home.workspace.ttl_seconds = 20
    config = write_config(home, front_dir)
    port = front_port(config)
    daemon = home.start("--config", str(config))
    ps_samples: list[str] = []
    try:
        wait_for(lambda: front_logs_in(port), 40, "a first login through pgbouncer")
        assert not Path(f"/tmp/.s.PGSQL.{port}").exists(), "no unix socket unless one is configured"
        for own in (front_dir / "run" / "pgbouncer.pid", front_dir / "run" / "pgbouncer.log"):
            assert stat.S_IMODE(own.stat().st_mode) == 0o600, f"{own.name} is pgbouncer's: 0600, not 0644"
        # A session opened before the rotation, holding its server connection (so the pool has none idle).
        session = connect_front(port)
        assert whoami(session) == USER
        first = home.workspace.issued[-1]
        wait_for(lambda: len(home.workspace.issued) >= 2, 30, "a rotation")
        wait_for(lambda: time.time() > first.expires_at.timestamp() + 1, 30, "the first credential to expire")
        assert not direct_login(home, first.token), "the first credential is dead on the server"
        ps_samples.append(subprocess.run(["ps", "auxww"], capture_output=True, text=True, check=True).stdout)

        with connect_front(port) as fresh:  # a new client: a new server login, with the new credential
            assert whoami(fresh) == USER
        assert whoami(session) == USER, "the session opened before the rotation keeps working"
        session.close()
        with pytest.raises(psycopg.OperationalError):
            connect_front(port, password="not-the-local-password").close()

        pid = _pid(front_dir / "run" / "pgbouncer.pid")
        assert pid is not None and _alive(pid)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: _pid(front_dir / "run" / "pgbouncer.pid") not in {None, pid}, 20, "pgbouncer to be restarted")
        wait_for(lambda: front_logs_in(port), 20, "logins through the restarted pgbouncer")
        ps_samples.append(subprocess.run(["ps", "auxww"], capture_output=True, text=True, check=True).stdout)
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    last = _pid(front_dir / "run" / "pgbouncer.pid")
    assert last is None or not _alive(last), "pgbouncer stops with the service"
    assert "pgbouncer exited (killed by SIGKILL)" in err, "the scheduler saw it die and restarted it"

    tokens = [c.token for c in home.workspace.issued]
    assert _private_files_only(front_dir, home.root, tokens) == []
    pgbouncer_log = (front_dir / "run" / "pgbouncer.log").read_text(errors="replace")
    assert "got SIGHUP" in pgbouncer_log, "the rotation reloaded pgbouncer"
    for text in (pgbouncer_log, home.log_file.read_text(), out, err, *ps_samples):
        assert not [t for t in tokens if t in text]
    assert LOCAL_PASSWORD not in home.log_file.read_text() + out + err
    shown = subprocess.run(
        [sys.executable, "-c", "from databricks_oauth_rotator.scripts import status_main; status_main()"],
        env=home.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert f"pgbouncer front for sales: host=127.0.0.1 port={port} dbname=sales user=lakebase" in shown.stdout, shown


def _private_files_only(front_dir: Path, home: Path, tokens: list[str]) -> list[str]:
    """Files holding an issued credential that the group or others can read, or that the wrong user owns."""
    problems = []
    for folder in (front_dir, home):
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            data = path.read_text(errors="replace")
            if not any(t in data for t in tokens):
                continue
            info = path.stat()
            if stat.S_IMODE(info.st_mode) & 0o077:
                problems.append(f"{path} has mode {stat.S_IMODE(info.st_mode):04o}")
            if folder == front_dir and RUN_AS and info.st_uid != _uid(RUN_AS):
                problems.append(f"{path} belongs to uid {info.st_uid}, not to {RUN_AS}")
    return problems


def _uid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid


@pytest.mark.parametrize(
    ("length", "accepted", "sslmode"),
    [(1024, True, "require"), (1024, True, "verify-full"), (1025, False, "require")],
)
def test_a_credential_longer_than_pgbouncer_takes_is_refused_in_one_line(
    home: UserHome, front_dir: Path, length: int, accepted: bool, sslmode: str
):
    """`manage: false`: the user runs pgbouncer on the files we write; we reload it after a rotation. With
    `verify-full`, pgbouncer checks the server's certificate against the rig's CA (its subjectAltName: 127.0.0.1)."""
    home.workspace.token_length = length
    ca_file = str(home.postgres.ca_file) if sslmode == "verify-full" else None
    socket_dir = front_dir.parent / "sock" if sslmode == "verify-full" else None  # and a unix socket, there
    if socket_dir is not None:
        socket_dir.mkdir(mode=0o755)
        if RUN_AS:
            shutil.chown(socket_dir, RUN_AS, RUN_AS)
    config = write_config(
        home,
        front_dir,
        manage="false",
        server_tls_sslmode=sslmode,
        server_tls_ca_file=ca_file,
        unix_socket_dir=str(socket_dir) if socket_dir else None,
    )
    port = front_port(config)
    result = home.rotator("--once", "--config", str(config))
    token = home.workspace.issued[-1].token
    assert len(token) == length
    ini = (front_dir / "pgbouncer.ini").read_text()
    assert pgpass.lookup(home.pgpass.read_bytes(), "127.0.0.1", str(home.postgres.port), "postgres", USER) == token
    if not accepted:
        assert result.returncode == 1
        refusals = [line for line in result.stderr.splitlines() if "not handed to pgbouncer" in line]
        assert len(refusals) == 1, result.stderr
        assert "1025 bytes" in refusals[0] and "at most 1024 bytes" in refusals[0] and "1.26" in refusals[0]
        assert token not in ini and "sales =" not in ini
        assert "FAIL  pgbouncer sales: the credential is 1025 bytes" in doctor(config, home)
        return
    assert result.returncode == 0, result.stderr
    assert token in ini
    user = ["-u", RUN_AS] if RUN_AS else []
    bouncer = subprocess.Popen([PGBOUNCER, "-q", *user, str(front_dir / "pgbouncer.ini")])
    try:
        wait_for(lambda: front_logs_in(port), 20, "a login through the user's pgbouncer")
        if socket_dir is not None:
            assert (socket_dir / f".s.PGSQL.{port}").is_socket()
            assert front_logs_in(port, host=str(socket_dir)), "a login through its unix socket"
        report = doctor(config, home)
        assert "FAIL" not in report, report
        for finding in ("is pgbouncer 1.", "running (pid", "(1024 bytes) fits pgbouncer's limit (1024)", "answers on"):
            assert finding in report
        again = home.rotator("--once", "--config", str(config))
        assert again.returncode == 0, again.stderr
        assert "reloaded pgbouncer" in home.log_file.read_text()
        wait_for(lambda: "got SIGHUP" in (front_dir / "run" / "pgbouncer.log").read_text(), 10, "pgbouncer to reload")
        assert front_logs_in(port)
    finally:
        bouncer.terminate()
        bouncer.wait(10)


def doctor(config: Path, home: UserHome) -> str:
    """What `doctor` says about the front."""
    findings = check_front(load_config(config), StateStore(home.status_file).load())
    return "\n".join(finding.render() for finding in findings)


@pytest.mark.parametrize(
    ("front", "message"),
    [
        ({"bogus": "1"}, "pgbouncer: unknown key 'bogus'"),
        ({"binary": "/nonexistent/pgbouncer"}, "pgbouncer program is not installed at /nonexistent/pgbouncer"),
        ({"server_tls_sslmode": "disable"}, "pgbouncer.server_tls_sslmode: expected one of require, verify-full"),
        ({"listen_port": "TAKEN"}, "pgbouncer.listen_port: cannot listen on 127.0.0.1:"),
    ],
)
def test_bad_pgbouncer_input_is_one_line_exit_2_and_nothing_written(
    home: UserHome, front_dir: Path, front: dict[str, str], message: str
):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        if front.get("listen_port") == "TAKEN":
            front = {"listen_port": str(taken.getsockname()[1])}
        config = write_config(home, front_dir, **front)
        result = home.rotator("--once", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not home.pgpass.exists() and not home.log_file.exists() and not front_dir.exists()
    assert home.workspace.issued == []


def test_verify_full_refuses_a_server_whose_certificate_another_ca_signed(home: UserHome, front_dir: Path):
    other_ca = front_dir.parent / "other-ca.pem"
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout", str(front_dir.parent / "other.key")]
    argv = ["openssl", "req", "-x509", "-nodes", "-days", "1", *key, "-out", str(other_ca), "-subj", "/CN=127.0.0.1"]
    subprocess.run(argv, capture_output=True, check=True)
    other_ca.chmod(0o644)
    config = write_config(
        home, front_dir, manage="false", server_tls_sslmode="verify-full", server_tls_ca_file=str(other_ca)
    )
    port = front_port(config)
    assert home.rotator("--once", "--config", str(config)).returncode == 0
    user = ["-u", RUN_AS] if RUN_AS else []
    bouncer = subprocess.Popen([PGBOUNCER, "-q", *user, str(front_dir / "pgbouncer.ini")])
    try:
        wait_for(lambda: "listening on" in _read(front_dir / "run" / "pgbouncer.log"), 20, "pgbouncer to listen")
        assert not front_logs_in(port), "no login to a server the configured CA did not sign"
        assert "certificate verify failed" in _read(front_dir / "run" / "pgbouncer.log")
    finally:
        bouncer.terminate()
        bouncer.wait(10)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def start_service(home: UserHome, config: Path, *more: str) -> subprocess.Popen[str]:
    return home.start("--config", str(config), *more)


def stop_service(daemon: subprocess.Popen[str]) -> str:
    daemon.send_signal(signal.SIGTERM)
    _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    return err


def readiness(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readiness", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def front_state(home: UserHome) -> dict[str, Any]:
    try:
        return dict(json.loads((home.root / "state" / "pgbouncer.json").read_text()))
    except (OSError, ValueError):
        return {}


def status_text(home: UserHome) -> str:
    shown = subprocess.run(
        [sys.executable, "-c", "from databricks_oauth_rotator.scripts import status_main; status_main()"],
        env=home.env,
        capture_output=True,
        text=True,
        check=False,
    )
    return shown.stdout


def test_a_taken_front_port_does_not_stop_pgpass_rotation_and_the_front_starts_once_it_is_free(
    home: UserHome, front_dir: Path
):
    """The front is reported failed (log, status, /readiness: the front is required here) and retried with
    backoff; `.pgpass` gets its credential."""
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    config = write_config(home, front_dir, listen_port=str(port), required="true")
    http_port = free_port()
    daemon = start_service(home, config, "--http-port", str(http_port))
    try:
        wait_for(lambda: home.pgpass.exists() and bool(home.workspace.issued), 40, ".pgpass to be rotated")
        wait_for(lambda: front_state(home).get("process") == "failed", 20, "the front to be reported failed")
        assert readiness(http_port) == (503, "the pgbouncer front is failed\n")
        assert "cannot listen on 127.0.0.1" in str(front_state(home).get("error"))
        assert "(failed: could not start pgbouncer: pgbouncer.listen_port: cannot listen" in status_text(home)
        assert home.login().returncode == 0, "clients of .pgpass log in meanwhile"
        taken.close()
        wait_for(lambda: front_logs_in(port), 60, "the front to start once its port is free")
        wait_for(lambda: front_state(home).get("process") == "running", 10, "the front to be reported running")
        assert readiness(http_port) == (200, "ready\n")
        assert "(failed" not in status_text(home)
    finally:
        taken.close()
        err = stop_service(daemon)
    assert "Could not start pgbouncer: pgbouncer.listen_port: cannot listen on 127.0.0.1" in err


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_the_front_owns_both_loopbacks(home: UserHome, front_dir: Path):
    """A client of `localhost` may reach `[::1]` first: that address is the front's too, not a neighbour's."""
    config = write_config(home, front_dir)
    port = front_port(config)
    daemon = start_service(home, config)
    try:
        wait_for(lambda: front_logs_in(port), 40, "a first login through pgbouncer")
        assert front_logs_in(port, host="::1"), "a login through [::1]"
        with pytest.raises(OSError), socket.socket(socket.AF_INET6) as squatter:
            squatter.bind(("::1", port))
    finally:
        stop_service(daemon)


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_a_front_whose_ipv6_loopback_port_is_taken_is_refused_in_one_line(home: UserHome, front_dir: Path):
    with socket.socket(socket.AF_INET6) as squatter:
        squatter.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        squatter.bind(("::1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        config = write_config(home, front_dir, listen_port=str(port))
        result = home.rotator("--once", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"pgbouncer.listen_port: cannot listen on [::1]:{port}" in result.stderr
    assert home.workspace.issued == [] and not front_dir.exists()


@pytest.mark.skipif(RUN_AS is None, reason="root only: the front runs as another user")
def test_under_root_a_front_folder_its_user_cannot_reach_is_refused_in_one_line(home: UserHome, front_dir: Path):
    """The 0.2 documented setup (`run_as: postgres`, the default `dir` in root's private state folder) never
    started pgbouncer: now it is exit 2 at once, naming the folder and the fix."""
    config = write_config(home, front_dir, dir=None)
    result = home.rotator("--once", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "pgbouncer.dir: the service user postgres (pgbouncer.run_as) cannot reach" in result.stderr
    assert "/var/lib/databricks-oauth-rotator/pgbouncer" in result.stderr
    assert home.workspace.issued == [] and not home.pgpass.exists()


def test_a_front_that_keeps_dying_is_shown_down_with_pgbouncers_own_words(
    home: UserHome, front_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    """Its start-up error reaches our log, `status` and `doctor`; `.pgpass` rotation goes on."""
    monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", home.env["DATABRICKS_LABS_STATE_DIR"])
    fake = front_dir.parent / "fake-pgbouncer"
    fake.write_text(
        "#!/bin/sh\necho '2026-12-06 10:00:00.000 UTC [1] FATAL cannot open logfile: Permission denied' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    config = write_config(home, front_dir, binary=str(fake))
    daemon = start_service(home, config)
    try:
        wait_for(home.pgpass.exists, 40, ".pgpass to be rotated")
        wait_for(lambda: front_state(home).get("process") == "down", 20, "the front to be reported down")
        assert "FATAL cannot open logfile" in str(front_state(home).get("error"))
        shown = status_text(home)
        assert "(down: 2026-12-06 10:00:00.000 UTC [1] FATAL cannot open logfile: Permission denied)" in shown, shown
        report = doctor(config, home)
        assert "FAIL  pgbouncer: not running: 2026-12-06 10:00:00.000 UTC [1] FATAL cannot open logfile" in report
    finally:
        err = stop_service(daemon)
    assert "pgbouncer: 2026-12-06 10:00:00.000 UTC [1] FATAL cannot open logfile: Permission denied" in err
    assert "pgbouncer exited (exit code 1); 2026-12-06" in err
