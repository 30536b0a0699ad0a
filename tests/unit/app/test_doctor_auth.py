"""`doctor`'s workspace checks against the fake workspace, through the real SDK."""

from __future__ import annotations

import time

from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator.app.doctor_auth import check_login, check_target, check_workspace
from databricks.labs.oauth_rotator.app.doctor_findings import FAIL, OK, WARN
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from tests.rigs.workspace import DEMO_ENDPOINT, DEMO_INSTANCE, FakeWorkspace

CONFIG = RotatorConfig(targets=[TargetConfig(instance=DEMO_INSTANCE), TargetConfig(endpoint=DEMO_ENDPOINT)])


def client_of(workspace: FakeWorkspace) -> WorkspaceClient:
    return WorkspaceClient(config=workspace.sdk_config())


def test_a_working_login_names_who_and_where(fake_workspace: FakeWorkspace) -> None:
    finding, ws = check_login(CONFIG, lambda _config: client_of(fake_workspace), 20.0)
    assert ws is not None
    assert finding.level == OK
    assert fake_workspace.user_name in finding.message
    assert fake_workspace.host in finding.message


def test_a_login_that_fails_stops_the_target_checks() -> None:
    def refused(_config: RotatorConfig) -> WorkspaceClient:
        raise ConfigError("profile prod not found", fix="run `databricks auth login -p prod`")

    (finding,) = check_workspace(CONFIG, refused, 5.0)
    assert (finding.level, finding.check, finding.fix) == (FAIL, "login", "run `databricks auth login -p prod`")
    assert finding.message == "profile prod not found"


def test_every_target_gets_a_finding_after_the_login(fake_workspace: FakeWorkspace) -> None:
    findings = check_workspace(CONFIG, lambda _config: client_of(fake_workspace), 20.0)
    assert [(f.level, f.check) for f in findings] == [
        (OK, "login"),
        (OK, f"target {DEMO_INSTANCE}"),
        (OK, f"target {DEMO_ENDPOINT}"),
    ]


def test_an_unknown_instance_fails_and_a_bare_host_nobody_serves_warns(fake_workspace: FakeWorkspace) -> None:
    ws = client_of(fake_workspace)
    gone = check_target(ws, TargetConfig(instance="gone"), time.monotonic() + 20)
    assert (gone.level, gone.check) == (FAIL, "target gone")
    bare = check_target(ws, TargetConfig(host="db.elsewhere.example.com"), time.monotonic() + 20)
    assert (bare.level, bare.fix) == (WARN, "set `instance` or `endpoint` for this target")
    assert "workspace token" in bare.message
    served = check_target(ws, TargetConfig(host="127.0.0.1"), time.monotonic() + 20)
    assert served.level == OK
    assert DEMO_INSTANCE in served.message
