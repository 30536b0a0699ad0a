"""The rotator as a container sidecar: its HTTP endpoints against the real daemon, fake workspace and PostgreSQL."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import UserHome
from tests.rigs.net import call, free_port, listening, wait_for
from tests.rigs.workspace import DEMO_INSTANCE


def start_sidecar(home: UserHome, port: int, *extra: str) -> subprocess.Popen[str]:
    return home.start("--instance", DEMO_INSTANCE, *home.target_flags(), "--http-port", str(port), *extra)


def test_the_probes_follow_the_credential_through_a_workspace_outage_and_quitquitquit_exits_0(home: UserHome):
    """20-second credentials are due after 10 s (half their life, inside the 10-minute margin)."""
    home.workspace.ttl_seconds = 20
    home.workspace.fail_next(3, status=503)  # the first cycle is slowed by SDK retries: /startup is seen at 503
    port, admin = free_port(), free_port()
    daemon = start_sidecar(home, port, "--quitquitquit", "--admin-port", str(admin))
    answers: list[str] = []
    try:
        wait_for(lambda: listening(port), 20, "the endpoints")
        code, body = call(port, "/startup")
        answers.append(body)
        assert code == 503, body
        wait_for(lambda: call(port, "/startup")[0] == 200, 60, "/startup 200")
        assert home.login().returncode == 0
        assert call(port, "/readiness")[0] == 200
        assert call(port, "/liveness")[0] == 200

        home.workspace.fail_next(10_000, status=500)  # answered at once (the SDK retries a 503 for minutes)
        liveness: list[int] = []

        def not_ready() -> bool:
            liveness.append(call(port, "/liveness")[0])
            code, body = call(port, "/readiness")
            answers.append(body)
            return code == 503

        wait_for(not_ready, 40, "/readiness 503 while the workspace is down")
        assert json.loads(home.status_file.read_text())["targets"][DEMO_INSTANCE]["failures"] >= 1
        assert set(liveness) == {200}, "the loop kept turning through the outage"
        home.workspace.fail_next(0)
        wait_for(lambda: call(port, "/readiness")[0] == 200, 60, "/readiness 200 after the outage")

        target = (("target", DEMO_INSTANCE),)
        scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

        def counted() -> bool:
            # status.json is written by the worker; the scheduler counts the cycle once the worker has exited.
            code, metrics = call(port, "/metrics")
            assert code == 200
            answers.append(metrics)
            scraped.clear()
            scraped.update(
                ((s.name, tuple(sorted(s.labels.items()))), s.value)
                for family in text_string_to_metric_families(metrics)
                for s in family.samples
            )
            successes = scraped.get(("oauth_rotator_rotations_total", (("outcome", "success"), *target)), 0)
            failures = scraped.get(("oauth_rotator_rotations_total", (("outcome", "failure"), *target)), 0)
            return successes >= 2 and failures >= 1

        wait_for(counted, 10, "the rotations counted: the first, a failure in the outage, one after")
        status = json.loads(home.status_file.read_text())["targets"][DEMO_INSTANCE]
        assert scraped[("oauth_rotator_credential_expiry_timestamp_seconds", target)] == status["expires_at"]
        assert scraped[("oauth_rotator_last_success_timestamp_seconds", target)] == status["last_success"]
        assert scraped[("oauth_rotator_needs_person", target)] == 0

        code, body = call(admin, "/quitquitquit", method="POST")
        assert code == 200, body
        out, err = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert daemon.returncode == 0, err
    assert not listening(port)
    assert home.secrets_seen(out, err, *answers) == []


def imports_of_the_daemon(home: UserHome, *extra: str) -> str:
    """The scheduler's own imports (`-X importtime`, which its workers do not inherit) until its first rotation, and a
    /metrics scrape when it serves one."""
    argv = [sys.executable, "-X", "importtime", "-m", "databricks.labs.oauth_rotator", "--instance", DEMO_INSTANCE]
    daemon = subprocess.Popen(
        [*argv, *home.target_flags(), *extra],
        env=home.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: home.status_file.exists() and home.pgpass.exists(), 60, "the first rotation")
        if extra:
            assert call(int(extra[-1]), "/metrics")[0] == 200
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    return "\n".join(line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if line.startswith("import time:"))


def test_without_a_port_the_daemon_imports_neither_http_server_nor_prometheus_client(home: UserHome):
    imported = imports_of_the_daemon(home).splitlines()
    assert "http.server" not in imported and "prometheus_client" not in imported
    home.status_file.unlink()
    imported = imports_of_the_daemon(home, "--http-port", str(free_port())).splitlines()
    assert "http.server" in imported and "prometheus_client" in imported, "the control: on, both are loaded"


def test_a_bad_http_port_is_one_line_and_exit_2_with_nothing_written(home: UserHome):
    for flag in ("--http-port", "--admin-port"):
        for port in ("http", "0", "70000", "-1"):
            result = home.rotator("--instance", DEMO_INSTANCE, *home.target_flags(), "--quitquitquit", flag, port)
            assert result.returncode == 2, result.stderr
            assert len(result.stderr.strip().splitlines()) == 1 and flag in result.stderr, result.stderr
    assert not home.pgpass.exists() and not home.status_file.exists()


def test_a_taken_port_is_one_line_and_exit_2_with_nothing_written(home: UserHome):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = home.rotator("--instance", DEMO_INSTANCE, *home.target_flags(), "--http-port", str(port), timeout=30)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and f"{port}" in result.stderr, result.stderr
    assert not home.pgpass.exists() and not home.status_file.exists()
    assert home.workspace.issued == []


def test_the_config_files_http_block_turns_the_endpoints_on(home: UserHome):
    port = free_port()
    config = home.root / "config.yml"
    config.write_text(
        f"version: 1\npgpass_file: {home.pgpass}\nhttp:\n  port: {port}\n"
        f"targets:\n  - instance: {DEMO_INSTANCE}\n    port: {home.postgres.port}\n"
    )
    config.chmod(0o600)
    daemon = home.start("--config", str(config))
    try:
        wait_for(lambda: listening(port) and call(port, "/startup")[0] == 200, 60, "/startup 200")
        assert home.login().returncode == 0
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err


def test_a_bad_port_in_the_config_files_http_block_is_named(home: UserHome):
    config = home.root / "config.yml"
    config.write_text(f"version: 1\nhttp:\n  port: 70000\ntargets:\n  - instance: {DEMO_INSTANCE}\n")
    config.chmod(0o600)
    result = home.rotator("--once", "--config", str(config))
    assert result.returncode == 2
    assert "http.port" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
