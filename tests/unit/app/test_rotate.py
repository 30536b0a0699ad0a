"""Rotating now: picking a target, the refresh policy of a config, collect-then-fail, cycles under a deadline,
and one credential minted for the one-shot helpers (the real SDK against the fake workspace)."""

from __future__ import annotations

import time
from pathlib import Path
from unittest.mock import create_autospec

import pytest
from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator.app.rotate import (
    InProcessCycleRunner,
    build_cycle,
    fresh_credential,
    pick_target,
    policy_for,
    raise_for_failures,
)
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError, CredentialError, NeedsPersonError
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.rotation.cycle import CycleReport, RotationCycle
from databricks.labs.oauth_rotator.rotation.schedule import MIN_REFRESH_SECONDS, MIN_REFRESH_VARIABLE, FakeClock
from databricks.labs.oauth_rotator.rotation.state import StateStore
from tests.rigs.workspace import DEMO_ENDPOINT, DEMO_INSTANCE, FakeWorkspace

CONFIG = RotatorConfig(
    targets=[TargetConfig(instance=DEMO_INSTANCE), TargetConfig(name="shop", endpoint=DEMO_ENDPOINT)],
    margin_minutes=5,
    interval_minutes=30,
)


def test_a_target_is_picked_by_its_label_or_is_the_first() -> None:
    assert pick_target(CONFIG, None).instance == DEMO_INSTANCE
    assert pick_target(CONFIG, "shop").endpoint == DEMO_ENDPOINT
    with pytest.raises(ConfigError, match=rf"no target named 'nope' \(configured: {DEMO_INSTANCE}, shop\)"):
        pick_target(CONFIG, "nope")


def test_the_policy_follows_the_config_and_the_environments_floor() -> None:
    policy = policy_for(CONFIG, {MIN_REFRESH_VARIABLE: "2"})
    assert (policy.margin_seconds, policy.interval_seconds, policy.min_refresh_seconds) == (300, 1800, 2)
    assert policy_for(CONFIG, {}).min_refresh_seconds == MIN_REFRESH_SECONDS


def test_one_failure_is_raised_as_it_is() -> None:
    error = NeedsPersonError("login expired")
    with pytest.raises(NeedsPersonError) as raised:
        raise_for_failures(CycleReport(rotated=["a"], failed={"b": error}))
    assert raised.value is error
    report = CycleReport(rotated=["a"])
    assert raise_for_failures(report) is report


def test_several_failures_are_one_error_of_the_most_severe_kind_naming_each() -> None:
    report = CycleReport(rotated=["a"], failed={"b": CredentialError("HTTP 503"), "c": ConfigError("bad host")})
    with pytest.raises(ConfigError) as raised:
        raise_for_failures(report)
    assert str(raised.value) == "2 of 3 targets failed: b: HTTP 503; c: bad host"


def test_an_in_process_cycle_that_fails_is_its_exit_code_and_one_that_hangs_is_stopped() -> None:
    cycle = create_autospec(RotationCycle, instance=True)
    cycle.run.side_effect = ConfigError("profile missing")
    assert InProcessCycleRunner(cycle).run(force=True).exit_code == 2
    cycle.run.side_effect = lambda **_: time.sleep(30)
    started = time.monotonic()
    result = InProcessCycleRunner(cycle, deadline=0.5).run(force=False)
    assert result.exit_code == 1
    assert time.monotonic() - started < 10


def test_a_fresh_credential_is_minted_for_the_picked_target_and_written_nowhere(
    fake_workspace: FakeWorkspace, tmp_path: Path
) -> None:
    config = RotatorConfig(targets=CONFIG.targets, pgpass_file=str(tmp_path / ".pgpass"))
    ws = WorkspaceClient(config=fake_workspace.sdk_config())
    target, credential = fresh_credential(config, "shop", workspace_client=ws)
    assert target.endpoint == DEMO_ENDPOINT
    assert credential.user == fake_workspace.user_name
    assert credential.token in {issued.token for issued in fake_workspace.issued}
    assert not (tmp_path / ".pgpass").exists()


def test_a_built_cycle_rotates_into_the_configured_file(fake_workspace: FakeWorkspace, tmp_path: Path) -> None:
    config = RotatorConfig(targets=[TargetConfig(instance=DEMO_INSTANCE)], pgpass_file=str(tmp_path / ".pgpass"))
    cycle = build_cycle(
        config,
        clock=FakeClock(start=time.time()),
        workspace_client=lambda: WorkspaceClient(config=fake_workspace.sdk_config()),
        state=StateStore(tmp_path / "state" / "status.json"),
    )
    report = cycle.run(force=True)
    assert report.rotated == [DEMO_INSTANCE]
    (key,) = report.keys
    assert pgpass.lookup((tmp_path / ".pgpass").read_bytes(), *key) == fake_workspace.issued[-1].token
