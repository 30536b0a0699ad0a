"""The one preflight (`app/preflight.py`): the settings, the files, their trust and the machine, in one call."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.app.preflight import preflight
from databricks.labs.oauth_rotator.config import PgbouncerConfig, RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError


def environ_for(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path), "DATABRICKS_LABS_STATE_DIR": str(tmp_path / "state")}


def test_a_usable_config_passes_and_nothing_is_written(tmp_path):
    config = RotatorConfig(targets=[TargetConfig(host="h")], pgpass_file=str(tmp_path / ".pgpass"))
    assert preflight(config, environ=environ_for(tmp_path)) is config
    assert list(tmp_path.iterdir()) == []


def test_a_bad_setting_is_named_as_the_caller_spells_it(tmp_path):
    config = RotatorConfig(targets=[TargetConfig(host="h")], interval_minutes=0)
    with pytest.raises(ConfigError, match=r"^rotation_interval: expected minutes"):
        preflight(config, {"interval_minutes": "rotation_interval"}, environ_for(tmp_path))


def test_a_front_whose_program_is_missing_is_refused_before_anything_is_requested(tmp_path):
    """The machine's checks are part of the one preflight (the Python API and `password` skipped them)."""
    front = PgbouncerConfig(binary=str(tmp_path / "no-pgbouncer"), dir=str(tmp_path / "front"))
    config = RotatorConfig(targets=[TargetConfig(host="h")], pgpass_file=str(tmp_path / ".pgpass"), pgbouncer=front)
    with pytest.raises(ConfigError, match="the pgbouncer program is not installed"):
        preflight(config, environ=environ_for(tmp_path))


@pytest.mark.skipif(
    shutil.which("pgbouncer") is None and not Path("/usr/sbin/pgbouncer").exists(), reason="no pgbouncer"
)
def test_a_front_port_taken_is_refused_unless_the_caller_starts_no_front(tmp_path):
    import socket

    from tests.rigs.users import reachable_directory

    # The front's folder where its service user can reach it (pytest's tmp_path sits under a 0700 folder of root's).
    with reachable_directory() as reachable, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        front = PgbouncerConfig(listen_port=port, dir=str(reachable / "front"), run_as="nobody")
        config = RotatorConfig(targets=[TargetConfig(host="h")], pgpass_file=str(tmp_path / ".pgpass"), pgbouncer=front)
        with pytest.raises(ConfigError, match=r"pgbouncer\.listen_port: cannot listen"):
            preflight(config, environ=environ_for(tmp_path))
        preflight(config, environ=environ_for(tmp_path), port=False)


def test_psql_and_env_reach_the_preflight_before_a_credential_is_requested(tmp_path, monkeypatch):
    from unittest.mock import create_autospec

    from databricks.sdk import WorkspaceClient

    from databricks.labs.oauth_rotator.app.rotate import fresh_credential

    for name, value in environ_for(tmp_path).items():
        monkeypatch.setenv(name, value)
    workspace = create_autospec(WorkspaceClient)
    config = RotatorConfig(targets=[TargetConfig(host="h")], pgpass_file=str(tmp_path / "gone" / ".pgpass"))
    with pytest.raises(ConfigError, match="pgpass_file: cannot write"):
        fresh_credential(config, workspace_client=workspace)
    assert workspace.method_calls == []
