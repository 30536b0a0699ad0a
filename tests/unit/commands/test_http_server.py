"""The bounded server in-process: a backlog for bursts, a read timeout, a deadline for a trickling client."""

from __future__ import annotations

import socket
import time

import pytest

from databricks.labs.oauth_rotator.commands import http_server
from databricks.labs.oauth_rotator.commands.http_server import BoundedHandler, serve
from databricks.labs.oauth_rotator.errors import ConfigError


class Hello(BoundedHandler):
    def do_GET(self) -> None:  # pylint: disable=invalid-name
        self.send_text(200, b"hello\n")


def test_the_backlog_fits_a_burst_of_probes():
    assert http_server.BoundedServer.request_queue_size >= 64


def test_an_idle_client_is_dropped_after_the_read_timeout(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(Hello, "timeout", 0.5)
    server = serve("127.0.0.1", 0, Hello, setting="--http-port")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as idle:
            began = time.monotonic()
            assert idle.recv(1) == b"", "the server closes the connection"
            assert time.monotonic() - began < 5
    finally:
        server.close()


def test_a_trickling_client_is_cut_at_the_deadline(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(http_server, "CONNECTION_DEADLINE_SECONDS", 1.0)
    server = serve("127.0.0.1", 0, Hello, setting="--http-port")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
            began = time.monotonic()
            slow.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
            closed = False
            while time.monotonic() - began < 8 and not closed:
                try:
                    slow.sendall(b"a")
                    closed = slow.recv(1, socket.MSG_DONTWAIT) == b""
                except BlockingIOError:
                    time.sleep(0.2)  # each byte well within the read timeout
                except OSError:
                    closed = True
            assert closed and time.monotonic() - began < 5
    finally:
        server.close()


def test_a_prompt_client_is_answered():
    server = serve("127.0.0.1", 0, Hello, setting="--http-port")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(100).startswith(b"HTTP/1.0 200")
    finally:
        server.close()


def test_a_bad_address_is_a_config_error_that_names_the_setting():
    with pytest.raises(ConfigError, match=r"http\.address"):
        serve("192.0.2.250", 0, Hello, setting="http.address")
