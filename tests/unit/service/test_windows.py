from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.service.base import ServiceError, ServiceStatus
from databricks.labs.oauth_rotator.service.windows import (
    TASK_NAME,
    WindowsServiceManager,
    extract_argv,
    parse_task,
    render_task_xml,
    split_windows_args,
    task_command,
)
from tests.unit.service.conftest import RecordingRunner, make_spec

NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
QUERY = ["schtasks", "/Query", "/TN", TASK_NAME, "/FO", "LIST", "/V"]
RUN = ["schtasks", "/Run", "/TN", TASK_NAME]
END = ["schtasks", "/End", "/TN", TASK_NAME]
NOT_FOUND = "ERROR: The system cannot find the file specified.\n"


def _query_output(status: str, last_result: str) -> str:
    return f"""
Folder: \\
HostName:                             ANA-PC
TaskName:                             \\{TASK_NAME}
Next Run Time:                        N/A
Status:                               {status}
Logon Mode:                           Interactive only
Last Run Time:                        11/29/2026 9:02:03 AM
Last Result:                          {last_result}
Author:                               ANA-PC\\ana
Task To Run:                          C:\\Users\\ana\\.venv\\Scripts\\pythonw.exe -m databricks.labs.oauth_rotator run
Start In:                             C:\\Users\\ana
Schedule Type:                        At logon time
"""


GOLDEN_TASK = r"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>Keeps ~/.pgpass supplied with fresh Databricks Lakebase credentials.</Description>
    <URI>\Databricks OAuth Rotator</URI>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Enabled>true</Enabled>
      <UserId>ANA-PC\ana &amp; co</UserId>
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>ANA-PC\ana &amp; co</UserId>
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>false</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <WakeToRun>false</WakeToRun>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Priority>7</Priority>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>3</Count>
    </RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>/home/ana maria/100% $x/"q"/ñ/.venv/bin/python</Command>
      <Arguments>-m databricks.labs.oauth_rotator run --config "/home/ana maria/100% $x/\"q\"/ñ/.databricks/labs/oauth-rotator/config/config.yml"</Arguments>
      <WorkingDirectory>/home/ana maria/100% $x/"q"/ñ</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
"""  # noqa: E501


def test_golden_task_xml(golden_spec):
    assert render_task_xml(golden_spec, user="ANA-PC\\ana & co") == GOLDEN_TASK


def test_the_task_has_a_logon_trigger_restart_on_failure_and_the_exec_action(golden_spec):
    task = parse_task(render_task_xml(golden_spec, user="ANA-PC\\ana"))
    assert task.tag == "{http://schemas.microsoft.com/windows/2004/02/mit/task}Task"
    assert task.findtext("t:Triggers/t:LogonTrigger/t:UserId", namespaces=NS) == "ANA-PC\\ana"
    assert task.findtext("t:Principals/t:Principal/t:LogonType", namespaces=NS) == "InteractiveToken"
    settings_element = task.find("t:Settings", NS)
    assert settings_element is not None
    settings = {child.tag.split("}")[1]: child for child in settings_element}
    assert settings["MultipleInstancesPolicy"].text == "IgnoreNew"
    assert settings["ExecutionTimeLimit"].text == "PT0S"
    assert settings["DisallowStartIfOnBatteries"].text == "false"
    assert settings["StopIfGoingOnBatteries"].text == "false"
    assert settings["RestartOnFailure"].findtext("t:Interval", namespaces=NS) == "PT1M"
    assert settings["RestartOnFailure"].findtext("t:Count", namespaces=NS) == "3"
    assert task.findtext("t:Actions/t:Exec/t:Command", namespaces=NS) == golden_spec.python
    assert extract_argv(render_task_xml(golden_spec)) == golden_spec.argv


def test_without_a_user_the_task_names_none():
    task = parse_task(render_task_xml(make_spec("C:\\Users\\ana")))
    assert task.find(".//t:UserId", NS) is None


def test_the_manager_writes_utf16_with_a_matching_declaration(tmp_path):
    data = WindowsServiceManager(RecordingRunner(), home=tmp_path, user="PC\\ana").render(make_spec(tmp_path))
    assert data[:2] in {b"\xff\xfe", b"\xfe\xff"}  # a byte-order mark
    assert data.decode("utf-16").startswith('<?xml version="1.0" encoding="UTF-16"?>')
    assert extract_argv(data) == make_spec(tmp_path).argv


def test_windows_paths_survive_the_command_line():
    spec = make_spec(
        "C:\\Users\\Ana María",
        python="C:\\Program Files\\Python311\\python.exe",
        config_path=Path("C:\\Users\\Ana María\\100% sure\\dir with space\\"),  # a trailing backslash before a quote
    )
    arguments = subprocess.list2cmdline(spec.argv[1:])
    assert arguments.endswith('"C:\\Users\\Ana María\\100% sure\\dir with space\\\\"')
    assert extract_argv(render_task_xml(spec)) == spec.argv


@pytest.mark.parametrize(
    ("line", "expected"),
    [  # the examples of "Parsing C++ command-line arguments" (Microsoft C runtime)
        ('"abc" d e', ["abc", "d", "e"]),
        ('a\\\\\\b d"e f"g h', ["a\\\\\\b", "de fg", "h"]),
        ('a\\\\\\"b c d', ['a\\"b', "c", "d"]),
        ('a\\\\\\\\"b c" d e', ["a\\\\b c", "d", "e"]),
        ('a"b"" c d', ['ab" c d']),
        ('""  "" x', ["", "", "x"]),
        ("", []),
    ],
)
def test_split_windows_args_follows_the_c_runtime(line, expected):
    assert split_windows_args(line) == expected


# Mostly the characters that matter (backslashes before quotes, blanks), so the rare cases come up often.
_WINDOWS_ARG = st.text(st.sampled_from("\\\"' \ta%ñ")) | st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
)


@given(st.lists(_WINDOWS_ARG, max_size=6))
def test_list2cmdline_round_trips_through_the_c_runtime_rules(args):
    assert split_windows_args(subprocess.list2cmdline(args)) == args


@pytest.mark.parametrize("config", ["C:\\%USERPROFILE%\\config.yml", "C:\\a%b\\c%d.yml"])
def test_a_path_task_scheduler_would_expand_is_refused(config):
    with pytest.raises(ConfigError, match="expand"):
        render_task_xml(make_spec("C:\\Users\\ana", config_path=Path(config)))


def test_one_percent_sign_is_fine():
    spec = make_spec("C:\\Users\\ana", config_path=Path("C:\\100%\\config.yml"))
    assert extract_argv(render_task_xml(spec)) == spec.argv


def test_pythonw_is_preferred_when_it_exists():
    present = {"C:\\Py\\pythonw.exe"}
    assert task_command("C:\\Py\\python.exe", present.__contains__) == "C:\\Py\\pythonw.exe"
    assert task_command("C:\\Other\\python.exe", present.__contains__) == "C:\\Other\\python.exe"
    assert task_command("C:\\Py\\python3.11.exe", present.__contains__) == "C:\\Py\\python3.11.exe"


def _manager(tmp_path: Path, runner: RecordingRunner) -> WindowsServiceManager:
    return WindowsServiceManager(runner, home=tmp_path, user="PC\\ana", exists=lambda _: False)


def _create(manager: WindowsServiceManager) -> list[str]:
    return ["schtasks", "/Create", "/TN", TASK_NAME, "/XML", str(manager.definition_path), "/F"]


def test_first_install_creates_and_runs_the_task(tmp_path, runner):
    runner.on(*QUERY, returncode=1, stderr=NOT_FOUND)
    manager = _manager(tmp_path, runner)
    spec = make_spec(tmp_path)
    message = manager.install(spec)
    assert runner.calls == [QUERY, _create(manager), RUN]
    assert manager.definition_path.read_bytes() == manager.render(spec)
    assert message.startswith("Installed the task")


def test_a_second_install_updates_the_task_and_restarts_it(tmp_path, runner):
    runner.on(*QUERY, stdout=_query_output("Running", "267009"))
    manager = _manager(tmp_path, runner)
    message = manager.install(make_spec(tmp_path))
    assert runner.calls == [QUERY, _create(manager), END, RUN]
    assert message.startswith("Updated the task")


def test_install_recovers_a_task_deleted_by_hand(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.install(make_spec(tmp_path))  # leaves our copy of the XML behind
    runner.on(*QUERY, returncode=1, stderr=NOT_FOUND)
    runner.calls.clear()
    manager.install(make_spec(tmp_path))
    assert runner.calls == [QUERY, _create(manager), RUN]


def test_an_env_file_cannot_reach_a_task(tmp_path, runner):
    with pytest.raises(ConfigError, match="environment file"):
        _manager(tmp_path, runner).install(make_spec(tmp_path, env_file=tmp_path / "m2m.env"))
    assert runner.calls == []


def test_a_failing_schtasks_is_a_service_error_with_its_output(tmp_path, runner):
    runner.on(*QUERY, returncode=1, stderr=NOT_FOUND)
    runner.on("schtasks", "/Create", returncode=1, stderr="ERROR: The task XML is malformed.\n(8,4):Settings:")
    with pytest.raises(ServiceError, match=r"The task XML is malformed") as e:
        _manager(tmp_path, runner).install(make_spec(tmp_path))
    assert e.value.command[:2] == ("schtasks", "/Create")
    assert RUN not in runner.calls


def test_uninstall_when_not_installed_is_a_no_op(tmp_path, runner):
    runner.on(*QUERY, returncode=1, stderr=NOT_FOUND)
    message = _manager(tmp_path, runner).uninstall()
    assert "not installed" in message and "nothing to do" in message
    assert runner.calls == [QUERY]


def test_uninstall_ends_and_deletes_the_task(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.install(make_spec(tmp_path))
    runner.on(*QUERY, stdout=_query_output("Running", "267009"))
    runner.calls.clear()
    manager.uninstall()
    assert runner.calls == [QUERY, END, ["schtasks", "/Delete", "/TN", TASK_NAME, "/F"]]
    assert not manager.definition_path.exists()


def test_uninstall_deletes_even_when_the_query_fails(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.install(make_spec(tmp_path))
    runner.on(*QUERY, returncode=1, stderr="ERROR: Access is denied.")
    runner.calls.clear()
    manager.uninstall()
    assert runner.calls == [QUERY, ["schtasks", "/Delete", "/TN", TASK_NAME, "/F"]]


def test_restart_ends_a_task_that_may_not_be_running_then_runs_it(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    runner.on(*END, returncode=1, stderr="ERROR: The task is not running.")
    manager.restart()
    assert runner.calls == [END, RUN]


def test_status_parses_the_query(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    runner.on(*QUERY, stdout=_query_output("Running", "267009"))
    assert manager.status() == ServiceStatus(True, True, None, None, "Status: Running, Last Result: 267009")
    runner.on(*QUERY, stdout=_query_output("Ready", "1"))
    assert manager.status() == ServiceStatus(True, False, None, 1, "Status: Ready, Last Result: 1")
    runner.on(*QUERY, returncode=1, stderr=NOT_FOUND)
    assert manager.status() == ServiceStatus(False, False, None, None, "not installed")


def test_status_of_an_installed_task_that_cannot_be_queried_is_an_error(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.install(make_spec(tmp_path))
    runner.on(*QUERY, returncode=1, stderr="ERROR: Access is denied.")
    with pytest.raises(ServiceError, match="Access is denied"):
        manager.status()


def test_the_user_comes_from_the_logon_environment(tmp_path):
    environ = {"USERNAME": "ana", "USERDOMAIN": "CORP"}
    assert WindowsServiceManager(home=tmp_path, environ=environ).user == "CORP\\ana"
    assert WindowsServiceManager(home=tmp_path, environ={"USERNAME": "ana"}).user == "ana"
    assert WindowsServiceManager(home=tmp_path).user is None  # an explicit home never reads os.environ


def test_the_task_xml_is_well_formed_for_any_spec(golden_spec):
    ET.fromstring(render_task_xml(golden_spec, user="<&>").encode("utf-16"))  # noqa: S314
