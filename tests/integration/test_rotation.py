"""The rotator as users run it: the real SDK against the fake workspace, real .pgpass, real psql logins."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.files import pgpass
from tests.integration.conftest import USER, LoginProbe, UserHome, without
from tests.rigs.workspace import DEMO_ENDPOINT, DEMO_INSTANCE


def test_m2m_rotation_of_a_provisioned_instance_lets_psql_log_in(home: UserHome):
    result = home.rotator("--once", "--instance", DEMO_INSTANCE, *home.target_flags())
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"rotated {DEMO_INSTANCE}\n"
    assert stat.S_IMODE(home.pgpass.stat().st_mode) == 0o600
    assert home.login().returncode == 0
    status = json.loads(home.status_file.read_text())["targets"][DEMO_INSTANCE]
    assert status["user"] == USER and status["last_error"] is None
    assert "Rotated demo-instance" in home.log_file.read_text()
    assert home.secrets_seen(result.stdout, result.stderr) == []


def test_a_personal_access_token_rotates_too(home: UserHome):
    pat = "dapi" + os.urandom(16).hex()
    home.workspace.add_pat(pat)
    env = {**without(home.env, ["DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"]), "DATABRICKS_TOKEN": pat}
    home.env = env
    result = home.rotator("--once", "--instance", DEMO_INSTANCE, *home.target_flags())
    assert result.returncode == 0, result.stderr
    assert home.login().returncode == 0
    assert pat not in home.log_file.read_text()


def test_a_databrickscfg_profile_is_used_by_name(home: UserHome):
    (home.root / ".databrickscfg").write_text(
        f"[lakebase]\nhost = {home.workspace.host}\n"
        f"client_id = {home.workspace.client_id}\nclient_secret = {home.workspace.client_secret}\n"
    )
    home.env = without(home.env, ["DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"])
    result = home.rotator("--once", "--profile", "lakebase", "--instance", DEMO_INSTANCE, *home.target_flags())
    assert result.returncode == 0, result.stderr
    assert home.login().returncode == 0


def test_a_databricks_cli_profile_authenticates_through_the_cli(home: UserHome, tmp_path: Path):
    """U2M users log in with `databricks auth login`; the SDK then asks `databricks auth token` for tokens."""
    token = "u2m-" + os.urandom(16).hex()
    home.workspace.add_pat(token)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cli = bin_dir / "databricks"
    cli.write_text(
        f"""#!{sys.executable}
import json, sys
args = sys.argv[1:]
if args[:1] == ["version"]:
    print(json.dumps({{"Version": "0.299.0"}}))
elif args[:2] == ["auth", "token"]:
    print(json.dumps({{"access_token": "{token}", "token_type": "Bearer", "expiry": "2099-01-01T00:00:00Z"}}))
else:
    sys.exit(1)
"""
        # Padded past 1 MiB, as the Go CLI is: older SDKs (0.150.0, for one) take a smaller `databricks` for the
        # legacy Python CLI and refuse it.
        + "#" * (1024 * 1024)
        + "\n"
    )
    cli.chmod(0o755)
    (home.root / ".databrickscfg").write_text(f"[u2m]\nhost = {home.workspace.host}\nauth_type = databricks-cli\n")
    env = without(home.env, ["DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"])
    home.env = {**env, "PATH": f"{bin_dir}:{env['PATH']}"}
    result = home.rotator("--once", "--profile", "u2m", "--instance", DEMO_INSTANCE, *home.target_flags())
    assert result.returncode == 0, result.stderr
    assert home.login().returncode == 0


def test_an_autoscaling_endpoint_and_a_plain_host_resolve_to_their_database(home: UserHome):
    endpoint_host = home.postgres.hosts[1]
    result = home.rotator("--once", "--endpoint", DEMO_ENDPOINT, *home.target_flags())
    assert result.returncode == 0, result.stderr
    assert home.login(host=endpoint_host).returncode == 0
    assert home.workspace.calls["POST /api/2.0/postgres/credentials"] == 1

    result = home.rotator("--once", "--pg-host", "127.0.0.1", *home.target_flags())
    assert result.returncode == 0, result.stderr
    assert home.workspace.calls["POST /api/2.0/database/credentials"] == 1, "the host resolved to the instance"
    assert home.login().returncode == 0


def test_two_targets_on_two_hosts_in_one_run_and_one_failing_target_does_not_stop_the_other(home: UserHome):
    config = home.root / "config.yml"
    config.write_text(
        f"""version: 1
pgpass_file: {home.pgpass}
targets:
  - name: provisioned
    instance: {DEMO_INSTANCE}
    port: {home.postgres.port}
  - name: autoscaling
    endpoint: {DEMO_ENDPOINT}
    port: {home.postgres.port}
  - name: gone
    instance: deleted-instance
    host: 127.0.0.3
    port: {home.postgres.port}
"""
    )
    result = home.rotator("--once", "--config", str(config))
    assert result.returncode == 1
    assert "gone" in result.stderr and "deleted-instance" in result.stderr
    # One role on one test server holds one password, so each line is checked against what was issued for its
    # database, and the role's current password (the last one issued) logs in.
    issued = {c.kind: c.token for c in home.workspace.issued}
    written = home.pgpass.read_bytes()
    port = str(home.postgres.port)
    assert pgpass.lookup(written, "127.0.0.1", port, "postgres", USER) == issued["database"]
    assert pgpass.lookup(written, home.postgres.hosts[1], port, "postgres", USER) == issued["postgres"]
    last_host = "127.0.0.1" if home.workspace.issued[-1].kind == "database" else home.postgres.hosts[1]
    assert home.login(host=last_host).returncode == 0
    status = json.loads(home.status_file.read_text())["targets"]
    assert status["gone"]["needs_person"] is True and status["provisioned"]["last_error"] is None
    assert len(home.pgpass.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        ([], {}, 2, "no target"),
        (["--workspace-url", "not a url", "--instance", "x"], {}, 2, "--workspace-url: not a workspace URL"),
        (["--pg-port", "abc", "--instance", "x"], {}, 2, "expected a port number"),
        (["--pg-port", "99999", "--instance", "x"], {}, 2, "expected a port number"),
        (["--interval", "0", "--instance", "x"], {}, 2, "expected minutes"),
        (["--instance", "a", "--endpoint", "projects/p/branches/b/endpoints/e"], {}, 2, "not allowed with"),
        (["--endpoint", "projects/p"], {}, 2, "expected projects/<p>/branches/<b>/endpoints/<e>"),
        (["--pgpass-file", "/nonexistent/dir/.pgpass", "--instance", "x"], {}, 2, "does not exist"),
        (["--config", "/nonexistent/config.yml"], {}, 2, "no such file"),
        (["--pg-username", "u"], {}, 2, "needs a target"),
        (["--profile", "missing", "--instance", DEMO_INSTANCE], {}, 2, "profile 'missing' is not in"),
        (["--instance", DEMO_INSTANCE], {"DATABRICKS_HOST": ""}, 2, "no Databricks workspace configured"),
        (["--bogus"], {}, 2, "unrecognized arguments"),
        (["--instance", DEMO_INSTANCE], {"DATABRICKS_CLIENT_SECRET": "wrong-secret"}, 1, "failed"),
        (["--instance", "no-such-instance"], {}, 1, "no-such-instance"),
    ],
)
def test_bad_input_is_one_clear_line_the_right_exit_code_and_nothing_written(home: UserHome, args, env, code, message):
    home.pgpass.write_text("# my own line\nother:5432:*:me:pw\n")
    home.pgpass.chmod(0o600)
    before = home.pgpass.read_bytes()
    flags = args if "--pgpass-file" in args or "--config" in args else [*args, "--pgpass-file", str(home.pgpass)]
    result = home.rotator("--once", *flags, env=env)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert home.pgpass.read_bytes() == before
    if code == 2:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not home.log_file.exists(), "a usage error writes nothing, not even the log"
    assert home.secrets_seen(result.stdout, result.stderr) == []


@pytest.mark.parametrize("hanging", ["/oidc/v1/token", "/api/"])
def test_once_against_a_hanging_workspace_fails_within_about_30_seconds(home: UserHome, hanging: str):
    """The SDK posts to the OIDC token endpoint with no timeout at all: only our watchdog bounds it."""
    home.workspace.delay_seconds = 120
    home.workspace.delay_path_prefix = hanging
    started = time.monotonic()
    result = home.rotator("--once", "--instance", DEMO_INSTANCE, *home.target_flags(), timeout=90)
    elapsed = time.monotonic() - started
    home.workspace.delay_seconds = 0
    assert result.returncode == 1
    assert elapsed < 40
    assert not home.pgpass.exists()


def test_the_daemon_keeps_psql_logging_in_while_short_lived_credentials_expire(home: UserHome):
    """20-second credentials: without rotation psql would fail after 20 s; the server refuses stale tokens."""
    home.workspace.ttl_seconds = 20
    daemon = start_daemon(home)
    logins = LoginProbe(home)
    ps_samples: list[str] = []
    try:
        deadline = time.monotonic() + 75
        while not home.pgpass.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        while time.monotonic() < deadline:
            logins.attempt()
            if logins.attempts % 10 == 0:
                ps_samples.append(subprocess.run(["ps", "auxww"], capture_output=True, text=True, check=True).stdout)
            time.sleep(0.5)
    finally:
        daemon.terminate()
        out, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert logins.attempts > 60
    assert logins.failures == [], f"{len(logins.failures)} of {logins.attempts} logins failed: {logins.failures}"
    assert len(home.workspace.issued) >= 6, "several rotations happened"
    assert home.secrets_seen(out, err, *ps_samples) == []


def test_logins_keep_working_through_a_workspace_outage_and_rotation_resumes_after(home: UserHome):
    """50-second credentials are due after 25 s; the workspace answers 503 for 30 s from the first rotation."""
    home.workspace.ttl_seconds = 50
    daemon = start_daemon(home)
    try:
        # The outage starts once the first credential is written and logs in (a loaded machine may take longer
        # than 20 s to start the scheduler and its first worker): before that there is nothing to keep working.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (home.workspace.issued and home.login().returncode == 0):
            time.sleep(0.5)
        assert home.workspace.issued, "the first rotation happened before the outage"
        issued_before = len(home.workspace.issued)
        home.workspace.fail_next(10_000, status=503)
        logins = LoginProbe(home)
        for _ in _every(0.5, seconds=30):
            logins.attempt()
        assert len(home.workspace.issued) == issued_before, "nothing was issued during the outage"
        home.workspace.fail_next(0)
        deadline = time.monotonic() + 20
        while len(home.workspace.issued) == issued_before and time.monotonic() < deadline:
            logins.attempt()
            time.sleep(0.5)
        assert len(home.workspace.issued) > issued_before, "rotation resumed after the outage"
        logins.attempt()
        assert logins.failures == [], logins.failures
    finally:
        daemon.terminate()
        daemon.communicate(timeout=30)
    api_calls = sum(n for call, n in home.workspace.calls.items() if " /api/" in call)
    assert api_calls > 2 * len(home.workspace.issued), "requests were refused during the outage and retried"


def start_daemon(home: UserHome) -> subprocess.Popen[str]:
    """`databricks-oauth-rotator run` in the background, for one provisioned target."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "databricks.labs.oauth_rotator",
            "run",
            "--instance",
            DEMO_INSTANCE,
            *home.target_flags(),
        ],
        env=home.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _every(interval: float, *, seconds: float):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        yield
        time.sleep(interval)
