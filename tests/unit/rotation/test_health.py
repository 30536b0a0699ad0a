"""The sidecar's probe answers from status.json and the loop's turns."""

from __future__ import annotations

from pathlib import Path

from databricks.labs.oauth_rotator.rotation.health import Health
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState

NOW = 1_767_225_600.0


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def health_with(tmp_path: Path, *targets: TargetState, ticks: Ticks | None = None) -> Health:
    store = StateStore(tmp_path / "status.json")

    def change(status: Status) -> None:
        status.targets.update({t.name: t for t in targets})

    if targets:
        store.update(change)
    return Health(store, margin_seconds=600, wall=lambda: NOW, monotonic=ticks or Ticks(), stuck_after=180)


def written(name: str, *, left: float, failures: int = 0) -> TargetState:
    return TargetState(
        name=name, issued_at=NOW - 3600 + left, expires_at=NOW + left, last_success=NOW - 1, failures=failures
    )


def test_startup_waits_for_every_target(tmp_path: Path):
    assert health_with(tmp_path).startup().code == 503
    assert health_with(tmp_path, written("a", left=3000), TargetState(name="b")).startup().code == 503
    assert health_with(tmp_path, written("a", left=3000), written("b", left=3000)).startup().code == 200


def test_readiness_fails_inside_the_margin_only_once_the_refresh_failed(tmp_path: Path):
    assert health_with(tmp_path, written("a", left=3000)).readiness().code == 200
    assert health_with(tmp_path, written("a", left=300)).readiness().code == 200, "refreshing on time"
    assert health_with(tmp_path, written("a", left=300, failures=1)).readiness().code == 503
    assert health_with(tmp_path, written("a", left=-1)).readiness().code == 503, "expired"


def test_liveness_fails_once_the_loop_stops_turning(tmp_path: Path):
    ticks = Ticks()
    health = health_with(tmp_path, ticks=ticks)
    ticks.now = 179
    assert health.liveness().code == 200
    health.turned()
    ticks.now = 179 + 181
    assert health.liveness().code == 503


def test_each_cycle_is_counted_once_by_outcome(tmp_path: Path):
    health = health_with(tmp_path, TargetState(name="a", last_attempt=NOW, last_success=NOW))
    health.cycle_finished()
    health.cycle_finished()  # no new attempt recorded: not counted again
    assert health.rotations == {("a", "success"): 1}


def test_a_target_known_by_its_host_alone_is_shown_unnamed(tmp_path: Path):
    host = TargetState(name="db.example.com", hosts=["db.example.com"])
    health = health_with(tmp_path, host, written("sales", left=3000))
    assert health.public_labels(health.status()) == {"db.example.com": "unnamed", "sales": "sales"}
    assert "db.example.com" not in health.startup().body and "unnamed" in health.startup().body


def test_several_unnamed_targets_are_numbered_and_a_configured_host_label_is_hidden_before_any_write(tmp_path: Path):
    store = StateStore(tmp_path / "status.json")
    store.update(lambda s: s.targets.update({n: TargetState(name=n) for n in ("b.example", "a.example", "x")}))
    health = Health(store, margin_seconds=600, host_labels=frozenset({"a.example", "b.example"}))
    assert health.public_labels(health.status()) == {"a.example": "unnamed-1", "b.example": "unnamed-2", "x": "x"}
    assert "example" not in health.readiness().body
