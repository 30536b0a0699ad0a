"""Where `password` and `exec` read the credential: the scheduler's file, whatever `PGPASSFILE` the caller has."""

from __future__ import annotations

import json
from pathlib import Path

from databricks.labs.oauth_rotator.app import password, password_file
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files.config_store import save_config
from tests.unit.app.test_password import KEY, NOW, TOKEN, line, target_state


def test_the_configured_file_then_the_recorded_one_then_libpqs_default_never_the_callers():
    caller = {"HOME": "/home/u", "PGPASSFILE": "/srv/app/.pgpass"}
    assert password_file.scheduler_pgpass_file("/etc/own.pgpass", caller, "/recorded") == "/etc/own.pgpass"
    assert password_file.scheduler_pgpass_file(None, caller, "/var/x/.pgpass") == "/var/x/.pgpass"
    assert password_file.scheduler_pgpass_file(None, caller) == "/home/u/.pgpass"


def test_status_json_says_which_file_the_last_rotation_wrote(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "status.json").write_text(json.dumps({"pgpass_file": "/p/.pgpass", "targets": {"a": {"keys": []}}}))
    environ = {"HOME": str(tmp_path), "DATABRICKS_LABS_STATE_DIR": str(state)}
    assert password_file.read_status(environ) == ({"a": {"keys": []}}, "/p/.pgpass")
    (state / "status.json").write_text("[1]")
    assert password_file.read_status(environ) == ({}, None)


def test_a_caller_with_its_own_pgpassfile_gets_the_schedulers_credential(tmp_path: Path):
    scheduler_file = tmp_path / "scheduler.pgpass"
    scheduler_file.write_bytes(line(KEY, TOKEN))
    config = tmp_path / "config.yml"
    save_config(RotatorConfig(targets=[TargetConfig(name="sales", host=KEY[0])]), config)  # no pgpass_file
    (tmp_path / "state").mkdir()
    status = {"pgpass_file": str(scheduler_file), "targets": {"sales": target_state(TOKEN, NOW + 3000)}}
    (tmp_path / "state" / "status.json").write_text(json.dumps(status))
    own = tmp_path / "app.pgpass"
    environ = {"HOME": str(tmp_path), "DATABRICKS_LABS_STATE_DIR": str(tmp_path / "state"), "PGPASSFILE": str(own)}
    assert password.current_credential(str(config), environ=environ, now=NOW)[1].password == TOKEN
    assert not own.exists()
