"""The sidecar's HTTP front door (`--http-port`): probes, `/quitquitquit` and Prometheus `/metrics`.

Started by `databricks-oauth-rotator` only when asked: a stdlib `ThreadingHTTPServer` on a daemon thread, which
reads the scheduler's `Health` and never writes. `prometheus_client` is imported here, so a daemon without the
endpoints never loads it. No answer carries a secret: names, times and counts only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.rotation.health import Answer, Health
from databricks.labs.oauth_rotator.text import one_line

logger = logging.getLogger(__name__)
PROBES = {"/startup": Health.startup, "/liveness": Health.liveness, "/readiness": Health.readiness}


class HealthServer:
    """The running server: `close()` stops it (the scheduler calls it on the way out)."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The port bound (the one asked for)."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop answering and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_http(address: str, port: int, health: Health, quit_now: Callable[[], None]) -> HealthServer:
    """Bind `address:port` and answer on a daemon thread; a taken port or bad address is a `ConfigError`."""
    handler = _handler_for(health, quit_now)
    try:
        server = _Server((address, port), handler)
    except OSError as err:
        raise ConfigError(f"--http-port: cannot listen on {address}:{port}: {err.strerror or err}") from None
    thread = threading.Thread(target=server.serve_forever, name="oauth-rotator-http", daemon=True)
    thread.start()
    return HealthServer(server, thread)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line in the log, not socketserver's traceback on stderr (a client that hung up, a broken answer)."""
        import sys

        error = sys.exc_info()[1]
        logger.warning(f"HTTP request from {client_address[0]} failed: {type(error).__name__}: {one_line(str(error))}")


def _handler_for(health: Health, quit_now: Callable[[], None]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "oauth-rotator"
        sys_version = ""

        def do_GET(self) -> None:  # pylint: disable=invalid-name  # http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, render_metrics(health), "text/plain; version=0.0.4; charset=utf-8")
                return
            probe = PROBES.get(path)
            answer = probe(health) if probe is not None else Answer(404, "not found\n")
            self._send(answer.code, answer.body.encode())

        def do_POST(self) -> None:  # pylint: disable=invalid-name  # http.server's name
            if self.path.split("?", 1)[0] != "/quitquitquit":
                self._send(404, b"not found\n")
                return
            self._send(200, b"quitting\n")
            quit_now()

        def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
            """Probes every few seconds would flood the log: requests are not logged."""

    return Handler


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
        rotations = CounterMetricFamily(
            "oauth_rotator_rotations", "Rotation attempts since the start, by outcome", labels=["target", "outcome"]
        )
        for (target, outcome), count in sorted(self._health.counts().items()):
            rotations.add_metric([target, outcome], count)
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
                expiry.add_metric([name], entry.expires_at)
            if entry.last_success is not None:
                success.add_metric([name], entry.last_success)
            person.add_metric([name], 1.0 if entry.needs_person else 0.0)
        yield from (rotations, expiry, success, person)
