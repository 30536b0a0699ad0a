from __future__ import annotations

import plistlib
import stat
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.service.base import ServiceError, ServiceStatus
from databricks.labs.oauth_rotator.service.launchd import (
    LABEL,
    LaunchdServiceManager,
    extract_argv,
    parse_print,
    render_plist,
)
from tests.unit.service.conftest import GOLDEN_HOME, RecordingRunner, make_spec

TARGET = f"gui/501/{LABEL}"
BOOTOUT = ["launchctl", "bootout", TARGET]
PRINT = ["launchctl", "print", TARGET]
DOMAIN = ["launchctl", "print", "gui/501"]  # asked once: is there a GUI login session?
ENABLE = ["launchctl", "enable", TARGET]

PRINT_RUNNING = f"""{TARGET} = {{
\tactive count = 1
\tpath = /Users/ana/Library/LaunchAgents/{LABEL}.plist
\ttype = LaunchAgent
\tstate = running

\tprogram = /Users/ana/.venv/bin/python
\targuments = {{
\t\t/Users/ana/.venv/bin/python
\t}}

\tenvironment = {{
\t\tHOME => /Users/ana
\t\tDATABRICKS_CONFIG_PROFILE => DEFAULT
\t}}

\tdomain = gui/501 [100005]
\truns = 3
\tpid = 12345
\timmediate reason = speculative
\tlast exit code = 78: EX_CONFIG
\tevent triggers = {{
\t}}
}}
"""

PRINT_NEVER_RAN = f"""{TARGET} = {{
\tstate = not running
\truns = 0
\tlast exit code = (never exited)
}}
"""


def test_golden_plist(golden_spec):
    home = GOLDEN_HOME
    assert plistlib.loads(render_plist(golden_spec)) == {
        "Label": "com.databricks.labs.oauth-rotator",
        "ProgramArguments": [
            f"{home}/.venv/bin/python",
            "-m",
            "databricks.labs.oauth_rotator",
            "run",
            "--config",
            f"{home}/.databricks/labs/oauth-rotator/config/config.yml",
        ],
        "EnvironmentVariables": {
            "DATABRICKS_CLI_PATH": "/usr/local/bin/databricks",
            "DATABRICKS_CONFIG_PROFILE": "DEFAULT",
            "DATABRICKS_OAUTH_ROTATOR_CONFIG_ERROR_EXIT": "0",
            "DATABRICKS_OAUTH_ROTATOR_ENV_FILE": f"{home}/m2m.env",
            "HOME": home,
            "PATH": "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "PGPASSFILE": f"{home}/.pgpass",
        },
        "WorkingDirectory": home,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ProcessType": "Background",
        "ThrottleInterval": 30,
        "StandardOutPath": f"{home}/.databricks_oauth_rotator_stdout.log",
        "StandardErrorPath": f"{home}/.databricks_oauth_rotator_stderr.log",
        "Umask": 63,
    }


def test_the_plist_is_xml_with_markup_escaped_and_the_exact_argv():
    spec = make_spec("/Users/a&b <c> ]]>", profile="p&<q>")
    data = render_plist(spec)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert b"a&amp;b &lt;c&gt; ]]&gt;" in data
    assert extract_argv(data) == spec.argv
    assert plistlib.loads(data)["EnvironmentVariables"]["DATABRICKS_CONFIG_PROFILE"] == "p&<q>"


def test_without_an_env_file_no_env_file_variable(tmp_path):
    assert (
        "DATABRICKS_OAUTH_ROTATOR_ENV_FILE"
        not in plistlib.loads(render_plist(make_spec(tmp_path)))["EnvironmentVariables"]
    )


def _manager(tmp_path: Path, runner: RecordingRunner, sleeps: list[float] | None = None) -> LaunchdServiceManager:
    record = sleeps if sleeps is not None else []
    return LaunchdServiceManager(runner, home=tmp_path, uid=501, sleep=record.append)


def _bootstrap(tmp_path: Path) -> list[str]:
    return ["launchctl", "bootstrap", "gui/501", str(tmp_path / "Library" / "LaunchAgents" / f"{LABEL}.plist")]


def test_first_install_writes_the_plist_and_bootstraps_it(tmp_path, runner):
    runner.on(*BOOTOUT, returncode=113, stderr='Could not find service "x" in domain for port')
    manager = _manager(tmp_path, runner)
    spec = make_spec(tmp_path)
    message = manager.install(spec)
    assert runner.calls == [DOMAIN, BOOTOUT, ENABLE, _bootstrap(tmp_path)]
    assert manager.definition_path.read_bytes() == render_plist(spec)
    assert stat.S_IMODE(manager.definition_path.stat().st_mode) == 0o644
    assert message == f"Installed {manager.definition_path} and started {TARGET}."


def test_a_second_install_replaces_the_loaded_job(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.install(make_spec(tmp_path))
    runner.calls.clear()
    message = manager.install(make_spec(tmp_path, profile="other"))
    assert runner.calls == [BOOTOUT, ENABLE, _bootstrap(tmp_path)]
    assert plistlib.loads(manager.definition_path.read_bytes())["EnvironmentVariables"][
        "DATABRICKS_CONFIG_PROFILE"
    ] == ("other")
    assert message.startswith("Updated ")


def test_bootstrap_retries_while_the_old_job_is_torn_down(tmp_path, runner):
    runner.on("launchctl", "bootstrap", returncode=5, stderr="Bootstrap failed: 5: Input/output error", times=2)
    sleeps: list[float] = []
    _manager(tmp_path, runner, sleeps).install(make_spec(tmp_path))
    assert runner.calls == [DOMAIN, BOOTOUT, ENABLE, _bootstrap(tmp_path), _bootstrap(tmp_path), _bootstrap(tmp_path)]
    assert sleeps == [0.5, 1.0]


def test_a_failing_bootstrap_is_a_service_error_with_its_output(tmp_path, runner):
    runner.on("launchctl", "bootstrap", returncode=5, stderr="Bootstrap failed: 5: Input/output error")
    with pytest.raises(ServiceError, match=r"Bootstrap failed: 5: Input/output error.*plutil -lint") as e:
        _manager(tmp_path, runner).install(make_spec(tmp_path))
    assert e.value.command == tuple(_bootstrap(tmp_path))
    assert len(runner.calls) == 7  # the domain, one bootout, one enable, four attempts


def test_an_unexpected_bootout_failure_is_a_service_error(tmp_path, runner):
    runner.on(*BOOTOUT, returncode=125, stderr="Boot-out failed: 125: Domain does not support specified action")
    with pytest.raises(ServiceError, match="125: Domain does not support"):
        _manager(tmp_path, runner).install(make_spec(tmp_path))


def test_uninstall_when_not_installed_is_a_no_op(tmp_path, runner):
    runner.on(*BOOTOUT, returncode=3, stderr="Boot-out failed: 3: No such process")
    message = _manager(tmp_path, runner).uninstall()
    assert "not installed" in message and "nothing to do" in message


def test_uninstall_unloads_and_removes_the_plist(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.install(make_spec(tmp_path))
    runner.calls.clear()
    assert manager.uninstall() == f"Stopped {TARGET} and removed {manager.definition_path}."
    assert runner.calls == [BOOTOUT]
    assert not manager.definition_path.exists()


def test_uninstall_unloads_a_job_whose_plist_was_deleted(tmp_path, runner):
    assert "Stopped" in _manager(tmp_path, runner).uninstall()


def test_restart_of_a_loaded_job_kicks_it(tmp_path, runner):
    _manager(tmp_path, runner).restart()
    assert runner.calls == [DOMAIN, PRINT, ["launchctl", "kickstart", "-k", TARGET]]


def test_restart_bootstraps_a_job_that_is_not_loaded(tmp_path, runner):
    runner.on(*PRINT, returncode=113)
    _manager(tmp_path, runner).restart()
    assert runner.calls == [DOMAIN, PRINT, ENABLE, _bootstrap(tmp_path)]


def test_no_deprecated_load_or_unload(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.install(make_spec(tmp_path))
    manager.restart()
    manager.uninstall()
    assert {call[1] for call in runner.calls} <= {"bootout", "bootstrap", "enable", "kickstart", "print"}


def test_status_parses_launchctl_print(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.install(make_spec(tmp_path))
    runner.on(*PRINT, stdout=PRINT_RUNNING)
    assert manager.status() == ServiceStatus(True, True, 12345, 78, "state = running")


def test_status_of_a_job_that_never_ran_or_is_not_loaded(tmp_path, runner):
    assert parse_print(PRINT_NEVER_RAN) == ServiceStatus(True, False, None, None, "state = not running")
    runner.on(*PRINT, returncode=113, stderr="Could not find service")
    assert _manager(tmp_path, runner).status() == ServiceStatus(False, False, None, None, "not loaded")


def test_status_fails_loudly_on_other_errors(tmp_path, runner):
    runner.on(*PRINT, returncode=1, stderr="Unrecognized target specifier.")
    with pytest.raises(ServiceError, match="Unrecognized target specifier"):
        _manager(tmp_path, runner).status()
