"""`exec` as a user runs a job with it: the real console script, the real SDK against the fake workspace, and a real
`psql -w` as the program, logging in to the real PostgreSQL through the password file (or `PGPASSWORD`)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.app import exec_program
from databricks.labs.oauth_rotator.app.run_program import ProgramRun
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files.config_store import save_config
from tests.integration.conftest import USER, UserHome
from tests.rigs.workspace import DEMO_INSTANCE

PSQL = ["psql", "-w", "-X", "-A", "-t", "-c", "select current_user"]


def configure(home: UserHome, **fields: object) -> Path:
    """The saved config: the demo instance on the rig's port, database `postgres` (the rig has no other)."""
    path = home.root / "config" / "config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    target = TargetConfig(name="sales", instance=DEMO_INSTANCE, port=home.postgres.port, database="postgres")
    save_config(RotatorConfig(targets=[target], pgpass_file=str(home.pgpass), **fields), path)  # type: ignore[arg-type]
    return path


def hostile_caller(home: UserHome) -> dict[str, str]:
    """A caller's environment with everything that would send psql elsewhere or shadow the file."""
    return {
        "PGPASSWORD": "stale-from-an-hour-ago",
        "PGPASSFILE": str(home.root / "app-own.pgpass"),
        "PGHOSTADDR": "203.0.113.9",
        "PGSERVICE": "nowhere",
    }


def test_psql_logs_in_through_the_schedulers_password_file(home: UserHome):
    configure(home)
    result = home.rotator("exec", "--", *PSQL, env=hostile_caller(home))
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{USER}\n", "")
    assert not (home.root / "app-own.pgpass").exists()  # minted into the scheduler's file, not the caller's
    assert home.login().returncode == 0  # and that file holds it for every other client too
    assert home.secrets_seen(result.stdout, result.stderr) == []


def test_env_password_hands_psql_the_password_and_a_url_without_it(home: UserHome):
    configure(home)
    # PGPASSFILE=/dev/null inside: the login can only come from PGPASSWORD.
    script = "import os, sys; print(os.environ['DATABASE_URL']); sys.stdout.flush(); os.execvp('psql', sys.argv[1:])"
    result = home.rotator(
        "exec", "--env-password", "--", "env", "PGPASSFILE=/dev/null", sys.executable, "-c", script, *PSQL
    )
    assert result.returncode == 0, result.stderr
    url, user = result.stdout.splitlines()
    assert url == f"postgresql://someone%40example.com@127.0.0.1:{home.postgres.port}/postgres?sslmode=require"
    assert user == USER
    assert home.secrets_seen(url, result.stderr) == []


def test_a_program_that_outlives_its_credential_still_logs_in_through_the_file(home: UserHome, monkeypatch):
    """Short credentials (8 s): the file is renewed while the program runs, so its second login, after the first
    credential expired, works; the PGPASSWORD it was handed has expired, and stderr says so once."""
    home.workspace.ttl_seconds = 8
    config = configure(home)
    for name, value in home.env.items():
        monkeypatch.setenv(name, value)
    script = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        psql = {PSQL!r}
        first = subprocess.run(psql, capture_output=True, text=True)
        time.sleep(10)
        second = subprocess.run(psql, env={{**os.environ, "PGPASSWORD": ""}}, capture_output=True, text=True)
        sys.exit(first.returncode * 10 + second.returncode)
        """
    )
    err = io.StringIO()

    def quick_refresh(*args, **kwargs):
        return ProgramRun(*args, **{**kwargs, "refresh_every": 0.5})

    code = exec_program.exec_program(
        str(config),
        [sys.executable, "-c", script],
        env_password=True,
        environ=dict(os.environ),
        err=err,
        runner=quick_refresh,
    )
    assert code == 0, err.getvalue()
    assert len(home.workspace.issued) >= 2
    assert err.getvalue().count("the PGPASSWORD handed to the program has expired") == 1
    assert home.secrets_seen(err.getvalue()) == []


@pytest.mark.parametrize(("script", "code"), [("exit 3", 3), ("kill -TERM $$", 143)])
def test_the_exit_code_is_the_programs(home: UserHome, script: str, code: int):
    configure(home)
    assert home.rotator("exec", "--", "sh", "-c", script).returncode == code


def test_a_missing_program_is_127_after_the_credential(home: UserHome):
    configure(home)
    result = home.rotator("exec", "--", "no-such-program-here")
    assert (result.returncode, result.stderr) == (
        127,
        "databricks-oauth-rotator exec: no-such-program-here: command not found\n",
    )


def test_sigterm_reaches_the_program_and_no_credential_is_on_any_command_line(home: UserHome):
    configure(home)
    ready = home.root / "ready"
    child = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(42)); "
        f"open({str(ready)!r}, 'w').close(); time.sleep(60)"
    )
    argv = [sys.executable, "-m", "databricks.labs.oauth_rotator", "exec", "--env-password", "--"]
    with subprocess.Popen(
        [*argv, sys.executable, "-c", child], env=home.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            deadline = time.monotonic() + 60
            while not ready.exists() and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.1)
            assert ready.exists(), process.communicate(timeout=5)
            command_lines = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
            assert home.secrets_seen(command_lines) == []
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 42, stderr
    assert home.secrets_seen(stderr) == []


def test_no_credential_to_be_had_is_one_line_and_exit_1_before_the_program_starts(home: UserHome):
    configure(home, workspace_url="http://127.0.0.1:9")  # nothing listens on the discard port
    marker = home.root / "started"
    result = home.rotator("exec", "--", "touch", str(marker))
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert not marker.exists()
