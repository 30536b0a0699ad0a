"""The launchd agent against a `launchctl` stand-in that keeps launchd's state (`tests/rigs/launchctl.py` lists
the facts it models and their sources): disabled overrides, slow stops, a missing GUI domain, KeepAlive."""

from __future__ import annotations

import sys

from databricks.labs.oauth_rotator.service.launchd import LABEL, LaunchdServiceManager
from tests.rigs.launchctl import Launchd
from tests.unit.service.conftest import make_spec

GUI_TARGET = f"gui/501/{LABEL}"


def _manager(tmp_path, launchd: Launchd, sleeps: list[float] | None = None) -> LaunchdServiceManager:
    record = sleeps if sleeps is not None else []
    return LaunchdServiceManager(launchd, home=tmp_path, uid=501, sleep=record.append)


def test_install_succeeds_from_a_label_left_in_the_disabled_overrides(tmp_path):
    launchd = Launchd(disabled={GUI_TARGET})
    manager = _manager(tmp_path, launchd)
    manager.install(make_spec(tmp_path))
    assert launchd.job(GUI_TARGET).running
    assert GUI_TARGET not in launchd.disabled


def test_the_stand_in_refuses_a_disabled_label_as_launchd_does(tmp_path):
    """Without `enable`, bootstrap fails for good with 5: the defect of issue #24, item 7."""
    launchd = Launchd(disabled={GUI_TARGET})
    _manager(tmp_path, Launchd()).install(make_spec(tmp_path))  # writes the plist
    plist = tmp_path / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    result = launchd(["launchctl", "bootstrap", "gui/501", str(plist)])
    assert (result.returncode, result.stderr) == (5, "Bootstrap failed: 5: Input/output error")


def test_uninstall_disable_then_install_again(tmp_path):
    launchd = Launchd()
    manager = _manager(tmp_path, launchd)
    manager.install(make_spec(tmp_path))
    manager.uninstall()
    launchd(["launchctl", "disable", GUI_TARGET])  # a user who switched it off by hand
    assert manager.install(make_spec(tmp_path)).startswith("Installed ")
    assert launchd.job(GUI_TARGET).running


def test_an_update_waits_while_the_old_job_finishes_its_cycle(tmp_path):
    launchd = Launchd(stop_turns=3)
    sleeps: list[float] = []
    manager = _manager(tmp_path, launchd, sleeps)
    manager.install(make_spec(tmp_path))
    assert manager.install(make_spec(tmp_path, profile="other")).startswith("Updated ")
    job = launchd.job(GUI_TARGET)
    assert job.running and job.plist["EnvironmentVariables"]["DATABRICKS_CONFIG_PROFILE"] == "other"
    assert sleeps == [0.5, 0.5, 0.5]  # bootout answered 36; the job was gone after three queries


def test_uninstall_waits_for_a_slow_stop_too(tmp_path):
    launchd = Launchd(stop_turns=2)
    manager = _manager(tmp_path, launchd)
    manager.install(make_spec(tmp_path))
    assert manager.uninstall().startswith("Stopped ")
    assert not launchd.loaded(GUI_TARGET)
    assert not manager.definition_path.exists()


def test_without_a_gui_session_the_user_domain_is_used(tmp_path):
    """Over SSH there is no gui/<uid> domain (launchctl answers 125): Homebrew falls back to user/<uid>."""
    launchd = Launchd(gui_session=False)
    manager = _manager(tmp_path, launchd)
    assert "user/501" in manager.install(make_spec(tmp_path))
    assert launchd.job(f"user/501/{LABEL}").running
    status = manager.status()
    assert status.installed and status.running
    manager.restart()
    assert launchd.job(f"user/501/{LABEL}").runs == 2


def test_a_crash_is_relaunched_and_a_clean_exit_is_not(tmp_path):
    launchd = Launchd()
    _manager(tmp_path, launchd).install(make_spec(tmp_path))
    assert launchd.exited(GUI_TARGET, 1) is True
    assert launchd.exited(GUI_TARGET, -9) is True
    assert launchd.exited(GUI_TARGET, 0) is False
    assert launchd.exited(GUI_TARGET, 2) is True  # what KeepAlive does to an exit 2: why the agent asks for 0


def test_a_configuration_error_does_not_relaunch_the_agent(tmp_path):
    """The real program of the plist, run with the plist's environment alone: a config that does not exist is an
    unusable configuration; the agent exits 0, so KeepAlive does not relaunch it, and says why on stderr."""
    launchd = Launchd()
    spec = make_spec(tmp_path, python=sys.executable, environment={"PGPASSFILE": f"{tmp_path}/.pgpass"})
    _manager(tmp_path, launchd).install(spec)
    result = launchd.run_once(GUI_TARGET)
    assert result.returncode == 0, result.stderr
    assert "no such file" in result.stderr and "Traceback" not in result.stderr
    job = launchd.job(GUI_TARGET)
    assert job.last_exit == 0 and not job.running and job.runs == 1


def test_a_configuration_error_found_by_a_cycle_does_not_relaunch_the_agent(tmp_path):
    """The same through the whole scheduler: the plist's program starts, its preflight finds the `.pgpass` folder
    missing (exit 2, one line), the scheduler stops before any cycle, and the agent exits 0 for KeepAlive."""
    launchd = Launchd()
    spec = make_spec(tmp_path, python=sys.executable, environment={})
    spec.config_path.parent.mkdir(parents=True)
    spec.config_path.write_text(
        "version: 1\nworkspace_url: https://example.cloud.databricks.com\n"
        f"pgpass_file: {tmp_path}/missing/.pgpass\n"
        "targets:\n  - host: instance-1.database.cloud.databricks.com\n    user: me@example.com\n"
    )
    _manager(tmp_path, launchd).install(spec)
    result = launchd.run_once(GUI_TARGET)
    assert result.returncode == 0, result.stderr
    assert "error: pgpass_file: cannot write" in result.stderr
    assert "directory" in result.stderr and "does not exist" in result.stderr  # the reason, said once
    job = launchd.job(GUI_TARGET)
    assert (job.last_exit, job.running, job.runs) == (0, False, 1)
