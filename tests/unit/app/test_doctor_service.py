"""`doctor`'s service checks against the in-memory service manager and a recording command runner."""

from __future__ import annotations

from pathlib import Path

from databricks.labs.oauth_rotator.app.doctor_findings import FAIL, OK, WARN, Finding
from databricks.labs.oauth_rotator.app.doctor_service import check_linger, check_service
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.service import MockServiceManager, ServiceManager, ServiceSpec
from tests.unit.service.conftest import RecordingRunner

PINNED = RotatorConfig(targets=[TargetConfig(host="h")], profile="prod")


def installed(tmp_path: Path, *, running: bool) -> MockServiceManager:
    manager = MockServiceManager(running=running)
    manager.install(ServiceSpec.create(tmp_path / "config.yml", profile="prod", home=tmp_path, cli_path=""))
    manager.running = running
    return manager


def check(manager: ServiceManager, config: RotatorConfig | None = PINNED, platform: str = "darwin") -> list[Finding]:
    runner = RecordingRunner().on("loginctl", stdout="Linger=no\n")
    return check_service(lambda: manager, config, platform=platform, runner=runner, environ={"USER": "someone"})


def test_a_running_service_is_ok(tmp_path: Path) -> None:
    assert [(f.level, f.check) for f in check(installed(tmp_path, running=True))] == [(OK, "service")]


def test_a_missing_service_is_a_warning_to_install() -> None:
    (finding,) = check(MockServiceManager())
    assert (finding.level, finding.fix) == (WARN, "run `databricks labs oauth-rotator install`")


def test_a_stopped_service_fails_and_points_to_the_logs(tmp_path: Path) -> None:
    (finding,) = check(installed(tmp_path, running=False))
    assert finding.level == FAIL
    assert "installed but not running" in finding.message
    assert "logs" in (finding.fix or "")


def test_an_os_that_cannot_answer_is_a_warning() -> None:
    (finding,) = check(MockServiceManager(failures={"status": ConfigError("no systemctl", fix="install systemd")}))
    assert (finding.level, finding.fix) == (WARN, "install systemd")
    assert "no systemctl" in finding.message


def test_no_profile_and_linger_off_are_advice_on_linux(tmp_path: Path) -> None:
    config = RotatorConfig(targets=[TargetConfig(host="h")])
    findings = check(installed(tmp_path, running=True), config, platform="linux")
    assert [(f.level, f.check) for f in findings] == [(OK, "service"), (WARN, "service"), (WARN, "linger")]


def test_linger_is_advised_only_when_logind_says_it_is_off() -> None:
    assert check_linger(RecordingRunner().on("loginctl", stdout="Linger=yes\n"), {"USER": "me"}) == []
    assert check_linger(RecordingRunner().on("loginctl", returncode=1), {"USER": "me"}) == []
    (finding,) = check_linger(RecordingRunner().on("loginctl", stdout="Linger=no\n"), {"USER": "me"})
    assert finding.fix == "on a headless host, run `loginctl enable-linger me`"
