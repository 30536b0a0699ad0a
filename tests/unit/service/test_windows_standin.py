"""The Windows task against a `schtasks` stand-in that keeps Task Scheduler's state and answers in the system's
language (`tests/rigs/schtasks.py` lists the facts it models and their sources)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.service.base import ServiceError
from databricks.labs.oauth_rotator.service.task_entry import split_arguments
from databricks.labs.oauth_rotator.service.windows import TASK_NAME, WindowsServiceManager, extract_argv
from tests.rigs.schtasks import RUNNING, TaskScheduler
from tests.unit.service.conftest import make_spec

LANGUAGES = ["en", "de", "fr"]


def _manager(tmp_path, scheduler: TaskScheduler, **kwargs) -> WindowsServiceManager:
    sleeps: list[float] = []
    return WindowsServiceManager(
        scheduler, home=tmp_path, user="PC\\ana", exists=lambda _: False, sleep=sleeps.append, **kwargs
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_status_reads_the_state_in_any_language(tmp_path, language):
    scheduler = TaskScheduler(language=language)
    manager = _manager(tmp_path, scheduler)
    assert not manager.status().installed
    manager.install(make_spec(tmp_path))
    status = manager.status()
    assert status.installed and status.running and status.last_exit_code is None
    scheduler.exited(TASK_NAME, 1)
    status = manager.status()
    assert not status.running and status.last_exit_code == 1


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_update_stops_the_old_scheduler_and_starts_the_new_one(tmp_path, language):
    """/End takes a moment: a /Run sent at once would be ignored under IgnoreNew and the old code would run on."""
    scheduler = TaskScheduler(language=language, end_turns=2)
    manager = _manager(tmp_path, scheduler)
    manager.install(make_spec(tmp_path))
    assert manager.install(make_spec(tmp_path, profile="other")).startswith("Updated ")
    task = scheduler.tasks[TASK_NAME]
    assert task.launches == 2 and task.running and task.result == RUNNING


def test_the_stand_in_ignores_a_run_while_the_old_instance_ends(tmp_path):
    """The defect of issue #24, item 5: /End then /Run at once leaves the old instance and starts nothing."""
    scheduler = TaskScheduler(end_turns=2)
    _manager(tmp_path, scheduler).install(make_spec(tmp_path))
    scheduler(["schtasks", "/End", "/TN", TASK_NAME])
    scheduler(["schtasks", "/Run", "/TN", TASK_NAME])
    assert scheduler.tasks[TASK_NAME].launches == 1


def test_restart_waits_for_the_end_then_runs(tmp_path):
    scheduler = TaskScheduler(end_turns=3)
    manager = _manager(tmp_path, scheduler)
    manager.install(make_spec(tmp_path))
    manager.restart()
    assert scheduler.tasks[TASK_NAME].launches == 2


def test_an_instance_that_never_ends_is_an_error_not_a_silent_no_op(tmp_path):
    scheduler = TaskScheduler(end_turns=1000)
    manager = _manager(tmp_path, scheduler)
    manager.install(make_spec(tmp_path))
    with pytest.raises(ServiceError, match="still running"):
        manager.restart()


def test_a_scheduler_that_died_is_relaunched_by_the_repeating_trigger(tmp_path):
    """RestartOnFailure covers a launch that failed, not an exit: the trigger's repetition brings it back."""
    scheduler = TaskScheduler()
    _manager(tmp_path, scheduler).install(make_spec(tmp_path))
    scheduler.minutes_pass(TASK_NAME, 5)
    assert scheduler.tasks[TASK_NAME].launches == 1  # IgnoreNew while it runs
    scheduler.exited(TASK_NAME, -1073741510)  # killed (STATUS_CONTROL_C_EXIT)
    scheduler.minutes_pass(TASK_NAME, 5)
    assert scheduler.tasks[TASK_NAME].running and scheduler.tasks[TASK_NAME].launches == 2


@pytest.mark.parametrize("language", LANGUAGES)
def test_uninstall_in_any_language(tmp_path, language):
    scheduler = TaskScheduler(language=language)
    manager = _manager(tmp_path, scheduler)
    assert "nothing to do" in manager.uninstall()
    manager.install(make_spec(tmp_path))
    assert manager.uninstall().startswith("Stopped and deleted")
    assert TASK_NAME not in scheduler.tasks and not manager.definition_path.exists()


def test_the_principal_is_the_users_sid(tmp_path):
    scheduler = TaskScheduler()
    manager = WindowsServiceManager(scheduler, home=tmp_path, environ={"USERNAME": "ana", "USERDOMAIN": "AzureAD"})
    manager.install(make_spec(tmp_path))
    assert b"S-1-12-1-1111-2222-3333-4444" in scheduler.tasks[TASK_NAME].xml.decode("utf-16").encode()


def test_the_forwarded_variables_reach_the_daemon(tmp_path):
    """The task's own argv, run for real: `task_entry` sets the variables install forwarded, then runs the daemon.
    Here the variable is the exit code on an unusable configuration, so the exit code proves it arrived."""
    spec = make_spec(
        tmp_path,
        python=sys.executable,
        environment={"PGPASSFILE": f"{tmp_path}/pgpass.conf", "DATABRICKS_OAUTH_ROTATOR_CONFIG_ERROR_EXIT": "7"},
    )
    scheduler = TaskScheduler()
    _manager(tmp_path, scheduler).install(spec)
    argv = extract_argv(scheduler.tasks[TASK_NAME].xml)
    variables, rest = split_arguments(argv[3:])
    assert variables["PGPASSFILE"] == f"{tmp_path}/pgpass.conf"
    assert rest == ["run", "--config", str(spec.config_path)]
    env = {key: value for key, value in os.environ.items() if not key.startswith("DATABRICKS_OAUTH_ROTATOR")}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 7, result.stderr
    assert "no such file" in result.stderr


def test_the_store_python_is_refused_unless_pgpass_is_outside_appdata(tmp_path):
    store = "C:\\Users\\ana\\AppData\\Local\\Microsoft\\WindowsApps\\PythonSoftwareFoundation.Python.3.12_qbz5n2kfra8p0\\python.exe"  # noqa: E501
    scheduler = TaskScheduler()
    manager = _manager(tmp_path, scheduler, environ={"APPDATA": "C:\\Users\\ana\\AppData\\Roaming"})
    with pytest.raises(ConfigError, match="private copy that psql never reads"):
        manager.install(make_spec("C:\\Users\\ana", python=store, environment={}))
    assert scheduler.tasks == {}
    outside = make_spec("C:\\Users\\ana", python=store, environment={"PGPASSFILE": "C:\\Users\\ana\\.pgpass"})
    manager._refuse_store_python(outside)  # pylint: disable=protected-access  # accepted: no error
