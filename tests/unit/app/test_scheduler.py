"""The scheduler's start (`app/scheduler.py`): the config read once, through the one reader, and put through the one
preflight before anything runs; a setup that can never work is exit 2 at start, not a worker's failure later."""

from __future__ import annotations

from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.app import scheduler
from databricks.labs.oauth_rotator.app.request import RotationRequest
from databricks.labs.oauth_rotator.config import PgbouncerConfig, RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files import logs
from databricks.labs.oauth_rotator.files.config_store import save_config


@pytest.fixture(name="home")
def fixture_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("PGPASSFILE", raising=False)
    # The scheduler's own logging setup is not under test: keep this process's handlers as they are.
    monkeypatch.setattr(logs, "setup_logging", lambda *args, **kwargs: None)
    return tmp_path


def test_a_config_whose_files_can_never_be_written_stops_the_scheduler_at_start(home: Path):
    config = save_config(
        RotatorConfig(targets=[TargetConfig(host="h")], pgpass_file=str(home / "gone" / ".pgpass")), home / "c.yml"
    )
    with pytest.raises(ConfigError, match="pgpass_file: cannot write"):
        scheduler.run_scheduler(RotationRequest(config, {}))
    assert not (home / "state").exists()  # nothing written


def test_the_flags_win_over_the_file_in_the_one_read(home: Path):
    config = save_config(RotatorConfig(targets=[TargetConfig(host="h")], interval_minutes=30), home / "c.yml")
    with pytest.raises(ConfigError, match=r"^interval_minutes: expected minutes"):
        scheduler.run_scheduler(RotationRequest(config, {"interval_minutes": 0}))


def test_a_missing_pgbouncer_is_refused_at_start(home: Path):
    front = PgbouncerConfig(binary=str(home / "no-pgbouncer"))
    config = save_config(RotatorConfig(targets=[TargetConfig(host="h")], pgbouncer=front), home / "c.yml")
    with pytest.raises(ConfigError, match="the pgbouncer program is not installed"):
        scheduler.run_scheduler(RotationRequest(config, {}))


def test_without_a_managed_front_there_is_no_supervisor():
    assert scheduler.front_supervisor(RotatorConfig(targets=[TargetConfig(host="h")])) is None
    unmanaged = PgbouncerConfig(manage=False)
    assert scheduler.front_supervisor(RotatorConfig(targets=[TargetConfig(host="h")], pgbouncer=unmanaged)) is None
