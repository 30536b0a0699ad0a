from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.service.base import ServiceSpec
from databricks.labs.oauth_rotator.service.windows import (
    WindowsServiceManager,
    extract_argv,
    parse_task,
    render_task_xml,
    split_windows_args,
    task_argv,
    task_command,
)
from tests.unit.service.conftest import GOLDEN_HOME, RecordingRunner, make_spec

NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}


@pytest.fixture
def golden_spec() -> ServiceSpec:
    """The shared golden spec without forwarded variables: its home has a `%` that two of them would repeat,
    which Task Scheduler would expand (refused, see test_a_path_task_scheduler_would_expand_is_refused)."""
    return make_spec(GOLDEN_HOME, environment={}, env_file=Path(f"{GOLDEN_HOME}/m2m.env"))


GOLDEN_TASK = r"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>Keeps ~/.pgpass supplied with fresh Databricks Lakebase credentials.</Description>
    <URI>\Databricks OAuth Rotator</URI>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Enabled>true</Enabled>
      <Repetition>
        <Interval>PT5M</Interval>
        <StopAtDurationEnd>false</StopAtDurationEnd>
      </Repetition>
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
    assert extract_argv(render_task_xml(golden_spec)) == task_argv(golden_spec)


def test_without_a_user_the_task_names_none():
    task = parse_task(render_task_xml(make_spec("C:\\Users\\ana")))
    assert task.find(".//t:UserId", NS) is None


def test_the_manager_writes_utf16_with_a_matching_declaration(tmp_path):
    data = WindowsServiceManager(RecordingRunner(), home=tmp_path, user="PC\\ana").render(make_spec(tmp_path))
    assert data[:2] in {b"\xff\xfe", b"\xfe\xff"}  # a byte-order mark
    assert data.decode("utf-16").startswith('<?xml version="1.0" encoding="UTF-16"?>')
    assert extract_argv(data) == task_argv(make_spec(tmp_path))


def test_windows_paths_survive_the_command_line():
    spec = make_spec(
        "C:\\Users\\Ana María",
        python="C:\\Program Files\\Python311\\python.exe",
        config_path=Path("C:\\Users\\Ana María\\100% sure\\dir with space\\"),  # a trailing backslash before a quote
    )
    arguments = subprocess.list2cmdline(task_argv(spec)[1:])
    assert arguments.endswith('"C:\\Users\\Ana María\\100% sure\\dir with space\\\\"')
    assert extract_argv(render_task_xml(spec)) == task_argv(spec)


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
    assert extract_argv(render_task_xml(spec)) == task_argv(spec)


def test_pythonw_is_preferred_when_it_exists():
    present = {"C:\\Py\\pythonw.exe"}
    assert task_command("C:\\Py\\python.exe", present.__contains__) == "C:\\Py\\pythonw.exe"
    assert task_command("C:\\Other\\python.exe", present.__contains__) == "C:\\Other\\python.exe"
    assert task_command("C:\\Py\\python3.11.exe", present.__contains__) == "C:\\Py\\python3.11.exe"


def test_the_user_comes_from_the_logon_environment(tmp_path):
    environ = {"USERNAME": "ana", "USERDOMAIN": "CORP"}
    assert WindowsServiceManager(home=tmp_path, environ=environ).user == "CORP\\ana"
    assert WindowsServiceManager(home=tmp_path, environ={"USERNAME": "ana"}).user == "ana"
    assert WindowsServiceManager(home=tmp_path).user is None  # an explicit home never reads os.environ


def test_the_task_xml_is_well_formed_for_any_spec(golden_spec):
    ET.fromstring(render_task_xml(golden_spec, user="<&>").encode("utf-16"))  # noqa: S314
