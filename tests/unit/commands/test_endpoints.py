"""The probe port in-process: GET only, no /quitquitquit, and metrics that never show a host."""

from __future__ import annotations

import http.client
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from databricks.labs.oauth_rotator.commands.endpoints import render_metrics, start_http
from databricks.labs.oauth_rotator.rotation.health import EndpointsPlan, Health
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState
from tests.rigs.net import free_port


def health(tmp_path: Path) -> Health:
    store = StateStore(tmp_path / "status.json")

    def change(status: Status) -> None:
        status.targets["db.example.com"] = TargetState(
            name="db.example.com", hosts=["db.example.com"], expires_at=2e9, last_success=1e9, last_attempt=1e9
        )
        status.targets["sales"] = TargetState(name="sales", hosts=["sales.example.com"], expires_at=2e9)

    store.update(change)
    result = Health(store, margin_seconds=600)
    result.cycle_finished()
    return result


def ask(port: int, method: str, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_metrics_label_a_host_only_target_unnamed(tmp_path: Path):
    text = render_metrics(health(tmp_path)).decode()
    assert "example.com" not in text
    labels = {s.labels["target"] for family in text_string_to_metric_families(text) for s in family.samples}
    assert labels == {"unnamed", "sales"}


def test_the_probe_port_answers_get_only_and_never_stops_the_scheduler(tmp_path: Path):
    probes = health(tmp_path)
    stopped: list[bool] = []
    probes.on_quit = lambda: stopped.append(True)
    port = free_port()
    server = start_http(EndpointsPlan("127.0.0.1", port, None), probes)
    try:
        assert server.admin is None
        assert ask(port, "GET", "/liveness") == 200
        assert ask(port, "GET", "/metrics") == 200
        assert ask(port, "POST", "/quitquitquit") == 404
        assert ask(port, "DELETE", "/liveness") == 404
        assert stopped == []
    finally:
        server.close()
