"""No service definition ever holds a secret, and none is ever writable by other users."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.service.base import ServiceManager, ServiceSpec
from databricks.labs.oauth_rotator.service.launchd import LaunchdServiceManager
from databricks.labs.oauth_rotator.service.systemd import SystemdServiceManager
from databricks.labs.oauth_rotator.service.windows import WindowsServiceManager
from tests.unit.service.conftest import RecordingRunner, fake_secret, make_spec


def _env_file(tmp_path: Path, secret: str) -> Path:
    env_file = tmp_path / "oauth-rotator.env"
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"DATABRICKS_CLIENT_ID=app-id\nDATABRICKS_CLIENT_SECRET={secret}\n")
    return env_file


def _managers(tmp_path: Path) -> list[ServiceManager]:
    runner = RecordingRunner()
    return [
        SystemdServiceManager(runner, home=tmp_path, environ={}, user="ana"),
        LaunchdServiceManager(runner, home=tmp_path, uid=501),
        WindowsServiceManager(runner, home=tmp_path, user="PC\\ana"),
    ]


def _spellings(secret: str) -> list[bytes]:
    return [secret.encode("utf-8"), secret.encode("utf-16-le"), secret.encode("utf-16-be"), secret[:16].encode()]


def test_no_definition_contains_the_secret_from_the_env_file(tmp_path):
    secret = fake_secret()
    env_file = _env_file(tmp_path, secret)
    spec = make_spec(tmp_path, env_file=env_file)
    for manager in _managers(tmp_path):
        data = manager.render(spec)
        assert [s for s in _spellings(secret) if s in data] == [], type(manager).__name__
    systemd, launchd, _ = (manager.render(spec) for manager in _managers(tmp_path))
    assert f"EnvironmentFile=-{env_file}".encode() in systemd  # referenced by path, never inlined
    assert str(env_file).encode() in launchd


def test_installed_definitions_hold_no_secret(tmp_path):
    secret = fake_secret()
    spec = make_spec(tmp_path, env_file=_env_file(tmp_path, secret))
    systemd, launchd, windows = _managers(tmp_path)
    systemd.install(spec)
    launchd.install(spec)
    windows.install(make_spec(tmp_path))  # a task cannot reference an env file at all
    for manager in (systemd, launchd, windows):
        data = manager.definition_path.read_bytes()
        assert [s for s in _spellings(secret) if s in data] == []


def test_the_client_secret_in_the_environment_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="DATABRICKS_CLIENT_SECRET"):
        make_spec(tmp_path, environment={"DATABRICKS_CLIENT_SECRET": fake_secret()})


def test_create_never_copies_secrets_from_the_calling_environment(tmp_path):
    secret = fake_secret()
    source = {"DATABRICKS_CLIENT_SECRET": secret, "DATABRICKS_TOKEN": secret, "PGPASSWORD": secret, "PGPASSFILE": "/p"}
    spec = ServiceSpec.create(tmp_path / "config.yml", home=tmp_path, cli_path="", source_environ=source)
    assert dict(spec.environment) == {"PGPASSFILE": "/p"}


@pytest.mark.usefixtures("umask_000")
def test_definitions_and_logs_are_never_group_or_world_writable_under_umask_000(tmp_path):
    spec = make_spec(tmp_path, stdout_log=tmp_path / "logs" / "out.log", stderr_log=tmp_path / "logs" / "err.log")
    for manager in _managers(tmp_path):
        manager.install(spec)
        assert stat.S_IMODE(manager.definition_path.stat().st_mode) == 0o644, type(manager).__name__
        parent = manager.definition_path.parent
        while parent != tmp_path:  # every directory we created on the way
            assert stat.S_IMODE(parent.stat().st_mode) & 0o022 == 0, parent
            parent = parent.parent
    for log in (spec.stdout_log, spec.stderr_log):
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "logs").stat().st_mode) == 0o700


def test_existing_log_files_are_left_alone(tmp_path):
    log = tmp_path / ".databricks_oauth_rotator_stderr.log"
    log.write_text("earlier run\n")
    log.chmod(0o640)
    SystemdServiceManager(RecordingRunner(), home=tmp_path, environ={}, user="ana").install(make_spec(tmp_path))
    assert log.read_text() == "earlier run\n"
    assert stat.S_IMODE(log.stat().st_mode) == 0o640
