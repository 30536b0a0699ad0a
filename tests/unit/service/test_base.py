from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.errors import ConfigError, RotatorError
from databricks.labs.oauth_rotator.service import (
    LaunchdServiceManager,
    MockServiceManager,
    ServiceError,
    SystemdServiceManager,
    WindowsServiceManager,
    for_platform,
)
from databricks.labs.oauth_rotator.service.base import (
    ServiceSpec,
    default_runner,
    tail_lines,
)
from tests.unit.service.conftest import fake_secret, make_spec


def test_argv_runs_the_package_with_the_saved_config(tmp_path):
    spec = make_spec(tmp_path)
    assert spec.argv == [
        f"{tmp_path}/.venv/bin/python",
        "-m",
        "databricks.labs.oauth_rotator",
        "run",
        "--config",
        f"{tmp_path}/.databricks/labs/oauth-rotator/config/config.yml",
    ]


def test_create_fills_in_the_defaults_of_the_original_tool(tmp_path):
    config = tmp_path / "config.yml"
    source = {
        "PGPASSFILE": "/srv/pgpass",
        "DATABRICKS_LABS_STATE_DIR": "/srv/state",
        "DATABRICKS_CLIENT_SECRET": fake_secret(),  # what the labs CLI exports for M2M: never copied
        "DATABRICKS_TOKEN": fake_secret(),
        "PATH": "/usr/bin",
    }
    spec = ServiceSpec.create(
        config, profile="prod", home=tmp_path, cli_path="/opt/bin/databricks", source_environ=source
    )
    assert spec.python == sys.executable
    assert spec.stdout_log == tmp_path / ".databricks_oauth_rotator_stdout.log"
    assert spec.stderr_log == tmp_path / ".databricks_oauth_rotator_stderr.log"
    assert dict(spec.environment) == {
        "PGPASSFILE": "/srv/pgpass",
        "DATABRICKS_LABS_STATE_DIR": "/srv/state",
        "DATABRICKS_CLI_PATH": "/opt/bin/databricks",
    }
    assert spec.service_environment == {
        "DATABRICKS_CLI_PATH": "/opt/bin/databricks",
        "DATABRICKS_CONFIG_PROFILE": "prod",
        "DATABRICKS_LABS_STATE_DIR": "/srv/state",
        "HOME": str(tmp_path),
        "PGPASSFILE": "/srv/pgpass",
    }


@pytest.mark.parametrize(
    "key",
    [
        "DATABRICKS_TOKEN",
        "DATABRICKS_CLIENT_SECRET",
        "ARM_CLIENT_SECRET",
        "PGPASSWORD",
        "MY_DB_PASSWORD",
        "SOME_SECRET_VALUE",
        "GITHUB_TOKEN",
        "GOOGLE_CREDENTIALS",
        "db_token",
    ],
)
def test_a_secret_looking_variable_is_a_config_error(tmp_path, key):
    with pytest.raises(ConfigError, match=key):
        make_spec(tmp_path, environment={key: "x"})


def test_a_secret_looking_value_is_a_config_error_whatever_its_name(tmp_path):
    with pytest.raises(ConfigError, match="looks like a secret"):
        make_spec(tmp_path, environment={"DATABRICKS_HOST": fake_secret()})
    with pytest.raises(ConfigError, match="looks like a secret"):
        make_spec(tmp_path, environment={"NOTE": "dapi" + os.urandom(16).hex()})


def test_paths_and_profile_names_are_allowed(tmp_path):
    environment = {
        "PGPASSFILE": "/x/.pgpass",
        "DATABRICKS_CONFIG_FILE": "/x/.databrickscfg",
        "DATABRICKS_CLI_PATH": "/x/databricks",
        "DATABRICKS_LABS_CONFIG_DIR": "/x/config",
        "DATABRICKS_LABS_STATE_DIR": "/x/state",
        "DATABRICKS_CONFIG_PROFILE": "DEFAULT",
    }
    assert dict(make_spec(tmp_path, environment=environment).environment) == environment


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("config_path", Path("/a\nExecStartPre=/bin/evil")),
        ("python", "/usr/bin/python\x00"),
        ("profile", "DEFAULT\t"),
        ("profile", " "),
        ("environment", {"X": "a\rb"}),
        ("environment", {"BAD-NAME": "x"}),
        ("environment", {"X": "\udcff"}),  # an undecodable file name
    ],
)
def test_values_no_definition_can_carry_are_refused(tmp_path, field, value):
    with pytest.raises(ConfigError):
        make_spec(tmp_path, **{field: value})


@pytest.mark.parametrize("field", ["python", "config_path", "home", "stdout_log", "stderr_log", "env_file"])
def test_relative_paths_are_refused(tmp_path, field):
    value = "relative/path" if field == "python" else Path("relative/path")
    with pytest.raises(ConfigError, match="absolute"):
        make_spec(tmp_path, **{field: value})


def test_windows_paths_count_as_absolute_on_any_os():
    spec = make_spec("C:\\Users\\Ana", python="C:\\Py\\python.exe", config_path=Path("C:\\cfg\\config.yml"))
    assert spec.argv[-1] == "C:\\cfg\\config.yml"


def test_home_and_profile_in_the_environment_must_match_the_fields(tmp_path):
    with pytest.raises(ConfigError, match="HOME"):
        make_spec(tmp_path, environment={"HOME": "/elsewhere"})
    with pytest.raises(ConfigError, match="DATABRICKS_CONFIG_PROFILE"):
        make_spec(tmp_path, profile="a", environment={"DATABRICKS_CONFIG_PROFILE": "b"})
    make_spec(tmp_path, profile="a", environment={"DATABRICKS_CONFIG_PROFILE": "a", "HOME": str(tmp_path)})


def test_a_spec_cannot_change_after_validation(tmp_path):
    source = {"PGPASSFILE": "/x"}
    spec = make_spec(tmp_path, environment=source)
    source["DATABRICKS_TOKEN"] = "sneaked in later"
    assert "DATABRICKS_TOKEN" not in spec.environment
    with pytest.raises(TypeError):
        spec.environment["DATABRICKS_TOKEN"] = "x"  # type: ignore[index]


def test_default_runner_passes_arguments_without_a_shell():
    tricky = "a b; echo pwned $HOME `id` 'q' \"q\""
    result = default_runner([sys.executable, "-c", "import sys; print(sys.argv[1])", tricky])
    assert result.returncode == 0
    assert result.stdout == tricky + "\n"


def test_default_runner_captures_failures_without_raising():
    result = default_runner([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"])
    assert (result.returncode, result.stderr) == (3, "boom")


def test_default_runner_reports_a_missing_tool_as_a_service_error(tmp_path):
    with pytest.raises(ServiceError, match="could not run") as e:
        default_runner([str(tmp_path / "no-such-systemctl"), "--user"])
    assert e.value.command == (str(tmp_path / "no-such-systemctl"), "--user")


def test_service_error_carries_the_command_and_its_output():
    result = subprocess.CompletedProcess(["x"], 1, "some stdout", "Failed to connect to bus: No medium found\n")
    error = ServiceError.from_result(["systemctl", "--user", "daemon-reload"], result, fix="log in again")
    assert isinstance(error, RotatorError)
    assert error.exit_code == 1
    assert error.returncode == 1
    assert str(error) == (
        "`systemctl --user daemon-reload` failed with exit code 1: Failed to connect to bus: No medium found\n"
        "some stdout; log in again"
    )


def test_service_error_without_output_says_so():
    error = ServiceError.from_result(["schtasks", "/Run"], subprocess.CompletedProcess(["x"], 2, "", ""))
    assert "exit code 2: (no output)" in str(error)


def test_tail_lines_reads_only_the_end_of_a_large_file(tmp_path):
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i}\n" for i in range(100_000)))
    assert tail_lines(log, 3, block_size=64) == ["line 99997", "line 99998", "line 99999"]
    assert tail_lines(log, 0) == []
    short = tmp_path / "short.log"
    short.write_text("only\nlast without newline")
    assert tail_lines(short, 10) == ["only", "last without newline"]


def test_mock_manager_records_calls_and_keeps_state(tmp_path):
    manager = MockServiceManager()
    spec = make_spec(tmp_path)
    assert manager.uninstall() == "The mock service is not installed; nothing to do."
    assert "Installed" in manager.install(spec)
    assert "Updated" in manager.install(spec)
    assert manager.status().running
    manager.running = False  # as if it had stopped by itself
    assert not manager.status().running
    assert manager.uninstall() == "Uninstalled the mock service."
    with pytest.raises(ServiceError, match="not installed"):
        manager.restart()
    assert manager.calls == ["uninstall", "install", "install", "status", "status", "uninstall", "restart"]


def test_mock_manager_fails_on_demand(tmp_path):
    failure = ServiceError("systemctl broke")
    manager = MockServiceManager(spec=make_spec(tmp_path), failures={"restart": failure})
    with pytest.raises(ServiceError, match="systemctl broke"):
        manager.restart()
    assert manager.calls == ["restart"]


@pytest.mark.parametrize(
    ("platform", "kind"),
    [
        ("linux", SystemdServiceManager),
        ("darwin", LaunchdServiceManager),
        ("win32", WindowsServiceManager),
    ],
)
def test_for_platform_picks_the_os_manager(tmp_path, runner, platform, kind):
    manager = for_platform(platform, runner=runner, home=tmp_path)
    assert isinstance(manager, kind)
    assert manager.definition_path.is_relative_to(tmp_path)
    assert runner.calls == []


def test_for_platform_refuses_an_unknown_os(runner):
    with pytest.raises(ServiceError, match="sunos5"):
        for_platform("sunos5", runner=runner)


def test_the_service_package_does_not_import_the_sdk():
    code = (
        "import sys, databricks.labs.oauth_rotator.service as s; "
        "s.for_platform('linux'); s.for_platform('darwin'); s.for_platform('win32'); "
        "print(sorted(m for m in sys.modules if m.startswith('databricks.sdk')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
