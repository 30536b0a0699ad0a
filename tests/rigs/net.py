"""Loopback helpers the tests and benchmarks share: a free port, whether something listens on it, a plain HTTP
call, and waiting for a condition."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Whether a connection to 127.0.0.1:`port` is accepted."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def call(port: int, path: str, *, method: str = "GET") -> tuple[int, str]:
    """One HTTP request to 127.0.0.1:`port`: the status and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Until `check()` is true; an `AssertionError` naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.1)
