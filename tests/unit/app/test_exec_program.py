"""`exec`: the credential had before the program starts, the program's environment, what it is told to connect to."""

from __future__ import annotations

import io
import json
from pathlib import Path
from unittest.mock import create_autospec

import pytest

from databricks.labs.oauth_rotator.app import exec_program
from databricks.labs.oauth_rotator.app.libpq_env import Connection
from databricks.labs.oauth_rotator.app.run_program import ProgramRun
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError, CredentialError
from databricks.labs.oauth_rotator.files.config_store import save_config
from tests.unit.app.test_password import KEY, TOKEN, line, target_state

CONNECTION = Connection("h.example.com", 5433, "someone@example.com", "sales db")


def test_the_program_gets_the_connection_the_schedulers_file_and_no_stale_password():
    caller = {
        "PATH": "/bin",
        "PGPASSWORD": "stale",
        "DATABASE_URL": "postgresql://elsewhere/",
        "PGHOSTADDR": "203.0.113.9",
        "PGSERVICE": "other",
        "PGPASSFILE": "/app/own.pgpass",
        "DATABRICKS_HOST": "https://w.example.com",  # the caller's, for programs that call Databricks too
    }
    env = exec_program.program_environ(caller, CONNECTION, "/home/u/.pgpass")
    assert env == {
        "PATH": "/bin",
        "DATABRICKS_HOST": "https://w.example.com",
        "PGHOST": "h.example.com",
        "PGPORT": "5433",
        "PGUSER": "someone@example.com",
        "PGDATABASE": "sales db",
        "PGSSLMODE": "require",
        "PGPASSFILE": "/home/u/.pgpass",
    }


def test_env_password_hands_over_the_password_and_a_url_without_it():
    env = exec_program.program_environ({"PGSSLMODE": "verify-full"}, CONNECTION, "/p", password=TOKEN)
    assert env["PGPASSWORD"] == TOKEN
    assert env["DATABASE_URL"] == "postgresql://someone%40example.com@h.example.com:5433/sales%20db?sslmode=verify-full"
    assert TOKEN not in env["DATABASE_URL"]


def test_the_connection_is_the_first_line_the_rotation_wrote():
    target = {"keys": [list(KEY), ["ro.example.com", "5432", "*", KEY[3]]]}
    assert exec_program.connection_of("sales", target) == Connection(KEY[0], 5432, KEY[3], "databricks_postgres")
    named = {"keys": [["h", "6543", "analytics", "u"]]}
    assert exec_program.connection_of("a", named) == Connection("h", 6543, "u", "analytics")
    with pytest.raises(CredentialError, match="records no host"):
        exec_program.connection_of("sales", None)


def configured(tmp_path: Path, expires_at: float) -> tuple[str, dict[str, str]]:
    pgpass_file = tmp_path / ".pgpass"
    pgpass_file.write_bytes(line(KEY, TOKEN))
    config = tmp_path / "config.yml"
    save_config(RotatorConfig(targets=[TargetConfig(name="sales", host=KEY[0])], pgpass_file=str(pgpass_file)), config)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "status.json").write_text(json.dumps({"targets": {"sales": target_state(TOKEN, expires_at)}}))
    return str(config), {"HOME": str(tmp_path), "DATABRICKS_LABS_STATE_DIR": str(tmp_path / "state"), "PATH": "/bin"}


def test_a_fresh_credential_on_file_starts_the_program_with_its_expiry_to_watch(tmp_path):
    import time

    expires_at = time.time() + 3000
    config, environ = configured(tmp_path, expires_at)
    runner = create_autospec(ProgramRun)
    runner.return_value.run.return_value = 42
    code = exec_program.exec_program(config, ["psql", "-w"], env_password=True, environ=environ, runner=runner)
    assert code == 42
    (argv, env, refresh), options = runner.call_args
    assert argv == ["psql", "-w"] and TOKEN not in argv
    assert env["PGPASSFILE"] == str(tmp_path / ".pgpass") and env["PGPASSWORD"] == TOKEN
    assert options["handed_expiry"] == expires_at
    assert refresh() == expires_at  # still fresh: read from the file again, nothing minted


def test_no_program_is_bad_usage_before_anything_is_read(tmp_path):
    with pytest.raises(ConfigError, match="give the program to run after --"):
        exec_program.exec_program(str(tmp_path / "missing.yml"), [], environ={}, err=io.StringIO())


def test_a_refresh_that_keeps_failing_is_said_once_not_every_minute():
    from databricks.labs.oauth_rotator.app.password_file import OnFile

    warnings = iter(["warning: could not refresh sales (down)\n"] * 3 + ["", "warning: again\n"])

    def fetch(said):
        said.write(next(warnings))
        return OnFile(TOKEN, 1234.0)

    err = io.StringIO()
    refresh = exec_program.Refresher(fetch, err)
    assert [refresh() for _ in range(5)] == [1234.0] * 5
    assert err.getvalue() == "warning: could not refresh sales (down)\nwarning: again\n"
