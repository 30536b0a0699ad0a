"""The Python API, as the original tool's users call it."""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient

import databricks_oauth_rotator
from databricks.labs.oauth_rotator import DatabricksOAuthRotator
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError, NeedsPersonError
from tests.rigs.workspace import DEMO_INSTANCE

USER = "someone@example.com"


@pytest.fixture
def api_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_the_original_import_path_still_works():
    assert databricks_oauth_rotator.DatabricksOAuthRotator is DatabricksOAuthRotator


def rotator_for(api_home, workspace, postgres, **target: Any) -> DatabricksOAuthRotator:
    return DatabricksOAuthRotator(
        **target,
        pg_port=postgres.port,
        pgpass_file=str(api_home / ".pgpass"),
        workspace_client=WorkspaceClient(config=workspace.sdk_config()),
    )


def test_run_once_rotates_with_a_given_workspace_client_and_psql_logs_in(api_home, workspace, postgres):
    rotator = rotator_for(api_home, workspace, postgres, pg_host="127.0.0.1")
    assert rotator.run_once() == ["127.0.0.1"]
    assert postgres.psql_login(user=USER, passfile=api_home / ".pgpass").returncode == 0


def test_run_once_raises_a_typed_error_that_says_what_to_fix(api_home, workspace, postgres):
    rotator = rotator_for(api_home, workspace, postgres, instance="no-such-instance")
    with pytest.raises(NeedsPersonError, match="no-such-instance") as failure:
        rotator.run_once()
    assert failure.value.fix


def test_run_daemon_rotates_until_stopped(api_home, workspace, postgres):
    rotator = rotator_for(api_home, workspace, postgres, instance=DEMO_INSTANCE)
    outcome: list[int] = []
    runner = threading.Thread(target=lambda: outcome.append(rotator.run_daemon()))
    runner.start()
    deadline = time.monotonic() + 20
    while not (api_home / ".pgpass").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    rotator.stop()
    runner.join(timeout=70)
    assert outcome == [0]
    assert postgres.psql_login(user=USER, passfile=api_home / ".pgpass").returncode == 0


# ---- bad input: checked before anything is asked or written -------------------------------------------------------


class NotificationProbe:
    """A `notify-send` first on PATH that records each notification, so a test sees whether one was sent."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "probe-bin"
        self.record = root / "probe-notifications"
        self.bin.mkdir()
        script = self.bin / "notify-send"
        script.write_text(f'#!/bin/sh\necho "$@" >> "{self.record}"\n')
        script.chmod(0o755)

    @property
    def sent(self) -> list[str]:
        return self.record.read_text().splitlines() if self.record.exists() else []


@pytest.fixture
def probe(tmp_path, monkeypatch) -> NotificationProbe:
    found = NotificationProbe(tmp_path)
    monkeypatch.setenv("PATH", f"{found.bin}{os.pathsep}{os.environ.get('PATH', '')}")
    return found


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


BAD_ARGUMENTS = [
    pytest.param({"rotation_interval": 0}, "rotation_interval: expected minutes between 1 and 1440", id="interval-0"),
    pytest.param({"rotation_interval": 1441}, "rotation_interval: expected minutes between 1", id="interval-1441"),
    pytest.param({"rotation_interval": math.nan}, "rotation_interval: expected minutes", id="interval-nan"),
    pytest.param({"rotation_interval": -5}, "rotation_interval: expected minutes", id="interval-negative"),
    pytest.param({"rotation_interval": "50"}, "rotation_interval: expected int", id="interval-text"),
    pytest.param({"pg_port": 0}, "pg_port: expected a port number 1-65535, got 0", id="port-0"),
    pytest.param({"pg_port": 70000}, "pg_port: expected a port number 1-65535", id="port-70000"),
    pytest.param({"pg_port": "5432"}, "pg_port: expected int", id="port-text"),
    pytest.param({"pg_host": None}, "no target: give pg_host, instance or endpoint", id="no-target"),
    pytest.param({"pg_host": "db\nevil:5432:*:*:pw"}, "pg_host: must be non-empty", id="host-newline"),
    pytest.param({"pg_host": " db "}, "pg_host: must be non-empty", id="host-spaces"),
    pytest.param({"pg_database": ""}, "pg_database: must be non-empty", id="database-empty"),
    pytest.param({"pg_database": "host=evil"}, "pg_database: expected a database name", id="database-conninfo"),
    pytest.param({"pg_username": "me\rx"}, "pg_username: must be non-empty", id="username-cr"),
    pytest.param({"pg_host": None, "instance": " sales "}, "instance: must be non-empty", id="instance-spaces"),
    pytest.param({"pg_host": None, "endpoint": "projects/p"}, "endpoint: expected projects/", id="endpoint-short"),
    pytest.param(
        {"pg_host": None, "instance": "a", "endpoint": "projects/p/branches/b/endpoints/e"},
        "target: give either instance or endpoint, not both",
        id="instance-and-endpoint",
    ),
    pytest.param({"workspace_url": "ftp://x"}, "workspace_url: not a workspace URL", id="url-ftp"),
    pytest.param({"profile": "a\nb"}, "profile: must be non-empty", id="profile-newline"),
    pytest.param({"pgpass_file": ""}, "pgpass_file: not a path", id="pgpass-empty"),
    pytest.param({"pgpass_file": "{root}/nope/.pgpass"}, "pgpass_file: cannot write", id="pgpass-missing-dir"),
    pytest.param({"pgpass_file": "{root}"}, "pgpass_file: {root} is a directory", id="pgpass-a-directory"),
    pytest.param({"log_file": "{root}/nope/rotator.log"}, "log_file: cannot write", id="log-missing-dir"),
    pytest.param({"log_file": "{root}"}, "log_file: {root} is a directory", id="log-a-directory"),
    pytest.param({"log_file": "   "}, "log_file: not a path", id="log-blank"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_a_config_error_before_anything_is_asked_or_written(
    api_home, fake_workspace, probe, arguments, message
):
    client = WorkspaceClient(config=fake_workspace.sdk_config())  # building a client asks the workspace itself
    asked, before = sum(fake_workspace.calls.values()), tree(api_home)
    given: dict[str, Any] = {"pg_host": "127.0.0.1", "pgpass_file": str(api_home / ".pgpass")}
    given.update({k: v.replace("{root}", str(api_home)) if isinstance(v, str) else v for k, v in arguments.items()})
    with pytest.raises(ConfigError) as failure:
        DatabricksOAuthRotator(**given, workspace_client=client).run_once()
    assert failure.value.exit_code == 2
    assert message.replace("{root}", str(api_home)) in str(failure.value) and "\n" not in str(failure.value)
    assert sum(fake_workspace.calls.values()) == asked
    assert tree(api_home) == before  # no .pgpass, no log, no state folder
    assert probe.sent == []


@pytest.mark.parametrize(
    "case",
    [
        ({"PGPASSFILE": "{root}/nope/.pgpass"}, "PGPASSFILE: cannot write"),
        ({"DATABRICKS_PG_HOST": "db\nx"}, "DATABRICKS_PG_HOST: must be non-empty"),
        ({"DATABRICKS_PG_USERNAME": " me "}, "DATABRICKS_PG_USERNAME: must be non-empty"),
        ({"DATABRICKS_LABS_STATE_DIR": "{root}/a-file/state"}, "DATABRICKS_LABS_STATE_DIR: cannot create"),
    ],
    ids=["pgpassfile-missing-dir", "env-host-newline", "env-username-spaces", "state-dir-under-a-file"],
)
def test_bad_environment_variables_are_named_and_nothing_is_asked_or_written(
    api_home, fake_workspace, probe, monkeypatch, case
):
    environment, message = case
    (api_home / "a-file").write_text("")
    for name, value in environment.items():
        monkeypatch.setenv(name, value.replace("{root}", str(api_home)))
    client = WorkspaceClient(config=fake_workspace.sdk_config())
    asked, before = sum(fake_workspace.calls.values()), tree(api_home)
    arguments: dict[str, Any] = {} if "DATABRICKS_PG_HOST" in environment else {"instance": DEMO_INSTANCE}
    if "PGPASSFILE" not in environment:
        arguments["pgpass_file"] = str(api_home / ".pgpass")
    with pytest.raises(ConfigError) as failure:
        DatabricksOAuthRotator(**arguments, workspace_client=client).run_once()
    assert failure.value.exit_code == 2 and message in str(failure.value)
    assert sum(fake_workspace.calls.values()) == asked
    assert tree(api_home) == before
    assert probe.sent == []


def test_a_bad_config_object_is_checked_like_a_config_file(api_home, fake_workspace, probe):
    client = WorkspaceClient(config=fake_workspace.sdk_config())
    asked = sum(fake_workspace.calls.values())
    config = RotatorConfig(targets=[TargetConfig(instance="a", port=0)], pgpass_file=str(api_home / "no" / "pgpass"))
    with pytest.raises(ConfigError, match=r"^targets\[0\]\.port: expected a port number") as failure:
        DatabricksOAuthRotator(config=config, workspace_client=client)
    assert failure.value.exit_code == 2
    config.targets[0].port = None
    with pytest.raises(ConfigError, match=r"^pgpass_file: cannot write"):
        DatabricksOAuthRotator(config=config, workspace_client=client)
    assert sum(fake_workspace.calls.values()) == asked
    assert probe.sent == []


def test_run_once_checks_the_files_again_when_they_changed_since(api_home, fake_workspace, probe):
    folder = api_home / "pgpass-folder"
    folder.mkdir()
    client = WorkspaceClient(config=fake_workspace.sdk_config())
    rotator = DatabricksOAuthRotator(
        instance=DEMO_INSTANCE, pgpass_file=str(folder / ".pgpass"), workspace_client=client
    )
    folder.rmdir()
    asked, before = sum(fake_workspace.calls.values()), tree(api_home)
    with pytest.raises(ConfigError, match="pgpass_file: cannot write") as failure:
        rotator.run_once()
    assert failure.value.exit_code == 2
    assert sum(fake_workspace.calls.values()) == asked
    assert tree(api_home) == before
    assert probe.sent == []


def test_the_notification_probe_sees_a_failure_that_needs_a_person(api_home, fake_workspace, probe):
    """The probe the tests above rely on does see a notification when the product sends one."""
    client = WorkspaceClient(config=fake_workspace.sdk_config())
    rotator = DatabricksOAuthRotator(
        instance="no-such-instance", pgpass_file=str(api_home / ".pgpass"), workspace_client=client
    )
    with pytest.raises(NeedsPersonError):
        rotator.run_once()
    assert len(probe.sent) == 1 and "no-such-instance" in probe.sent[0]
