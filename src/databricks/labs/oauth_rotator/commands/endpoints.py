"""The sidecar's probe port (`--http-port`): `/startup`, `/liveness`, `/readiness` and Prometheus `/metrics`.

Started by `databricks-oauth-rotator` only when asked: a bounded stdlib server (`http_server`) on a daemon thread,
which reads the scheduler's `Health` and never writes. Stopping the scheduler is not served here: that is the
admin port's (`admin.py`), off unless asked for. `prometheus_client` is imported here, so a daemon without the
endpoints never loads it. No answer carries a secret or a host: names, times and counts only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from databricks.labs.oauth_rotator.commands.admin import start_admin
from databricks.labs.oauth_rotator.commands.http_server import BoundedHandler, RunningServer, serve
from databricks.labs.oauth_rotator.rotation.health import Answer, EndpointsPlan, Health

PROBES = {"/startup": Health.startup, "/liveness": Health.liveness, "/readiness": Health.readiness}


class HealthServer:
    """The probe server and the admin one, each when asked for: `close()` stops both."""

    def __init__(self, probes: RunningServer | None, admin: RunningServer | None) -> None:
        self.probes = probes
        self.admin = admin

    def close(self) -> None:
        """Stop answering and free the ports."""
        for server in (self.probes, self.admin):
            if server is not None:
                server.close()


def start_http(plan: EndpointsPlan, health: Health) -> HealthServer:
    """Bind what `plan` asks for and answer on daemon threads; a taken port or bad address is a `ConfigError`."""
    probes = serve(plan.address, plan.port, _probe_handler(health), setting="--http-port") if plan.port else None
    try:
        admin = start_admin(plan.admin_port, health.quit) if plan.admin_port else None
    except BaseException:
        if probes is not None:
            probes.close()
        raise
    return HealthServer(probes, admin)


def _probe_handler(health: Health) -> type[BoundedHandler]:
    class ProbeHandler(BoundedHandler):
        def do_GET(self) -> None:  # pylint: disable=invalid-name  # http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self.send_text(200, render_metrics(health), "text/plain; version=0.0.4; charset=utf-8")
                return
            probe = PROBES.get(path)
            answer = probe(health) if probe is not None else Answer(404, "not found\n")
            self.send_text(answer.code, answer.body.encode())

        def _not_here(self) -> None:
            self.send_text(404, b"not found\n")

        # Only GET is served: POST /quitquitquit is the admin port's, and only with --quitquitquit.
        do_POST = do_PUT = do_DELETE = do_PATCH = _not_here

    return ProbeHandler


def render_metrics(health: Health) -> bytes:
    """The Prometheus text format, built at each scrape from `status.json` and the scheduler's counters."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(health))
    return bytes(generate_latest(registry))


class _Collector:
    def __init__(self, health: Health) -> None:
        self._health = health

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        status = self._health.status()
        label = self._health.public_labels(status)
        rotations = CounterMetricFamily(
            "oauth_rotator_rotations", "Rotation attempts since the start, by outcome", labels=["target", "outcome"]
        )
        for (target, outcome), count in sorted(self._health.counts().items()):
            rotations.add_metric([label.get(target, target), outcome], count)
        expiry = GaugeMetricFamily(
            "oauth_rotator_credential_expiry_timestamp_seconds",
            "When the credential on file expires",
            labels=["target"],
        )
        success = GaugeMetricFamily(
            "oauth_rotator_last_success_timestamp_seconds", "When the target last rotated", labels=["target"]
        )
        person = GaugeMetricFamily(
            "oauth_rotator_needs_person", "1 when a person must act (login, permission)", labels=["target"]
        )
        for name, entry in sorted(status.targets.items()):
            if entry.expires_at is not None:
                expiry.add_metric([label[name]], entry.expires_at)
            if entry.last_success is not None:
                success.add_metric([label[name]], entry.last_success)
            person.add_metric([label[name]], 1.0 if entry.needs_person else 0.0)
        yield from (rotations, expiry, success, person)
