"""The admin port in-process: what it refuses (a web page, a wrong Host, anything but POST) and what it stops."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

from databricks.labs.oauth_rotator.commands.admin import ADMIN_ADDRESS, refusal, start_admin
from databricks.labs.oauth_rotator.errors import ConfigError
from tests.rigs.net import free_port


def ask(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    connection = http.client.HTTPConnection(ADMIN_ADDRESS, port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("host", "origin", "refused"),
    [
        ("127.0.0.1:9092", None, False),
        ("127.0.0.1:9092", "http://127.0.0.1:9092", True),
        ("127.0.0.1:9092", "null", True),
        ("127.0.0.1:9092", "", True),
        ("rebound.example:9092", None, True),
        ("localhost:9092", None, True),
        ("127.0.0.1", None, True),
        ("127.0.0.1:9091", None, True),
        (None, None, True),
    ],
)
def test_refusal(host: str | None, origin: str | None, refused: bool):
    assert (refusal(host, origin, 9092) is not None) == refused


def test_only_a_post_from_the_loopback_itself_stops_and_it_stops_once_asked():
    port, stopped = free_port(), threading.Event()
    server = start_admin(port, stopped.set)
    own = {"Host": f"{ADMIN_ADDRESS}:{port}", "Content-Length": "0"}
    try:
        assert ask(port, "POST", "/quitquitquit", {**own, "Origin": "https://evil.example"})[0] == 403
        assert ask(port, "POST", "/quitquitquit", {**own, "Host": f"evil.example:{port}"})[0] == 403
        assert ask(port, "GET", "/quitquitquit", own)[0] == 405
        assert ask(port, "POST", "/metrics", own)[0] == 404
        assert not stopped.is_set()
        assert ask(port, "POST", "/quitquitquit", own) == (200, "quitting\n")
        assert stopped.is_set()
    finally:
        server.close()


def test_a_taken_admin_port_is_a_config_error_that_names_the_flag():
    with socket.socket() as taken:
        taken.bind((ADMIN_ADDRESS, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="--admin-port"):
            start_admin(port, lambda: None)
