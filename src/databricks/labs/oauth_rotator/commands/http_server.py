"""What both of the scheduler's HTTP servers share (the probes' and the admin one): bounded clients and one line
per failure.

`http.server` as it comes lets a client hold a thread and a descriptor for ever (no read timeout), and keeps a
listen backlog of 5, so a burst of probes overflows it and the kernel drops their SYNs. Here every connection has
a read timeout and a total deadline (a client that trickles a byte now and then is cut off too), one request per
connection, and a backlog that fits a burst.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.text import one_line

logger = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 5.0
"""How long the server waits for each part of a request (a probe sends its request at once)."""
CONNECTION_DEADLINE_SECONDS = 10.0
"""How long one connection may last in all, however slowly its bytes come."""
LISTEN_BACKLOG = 128
"""Connections the kernel queues while the server is busy: a burst of probes and scrapes, not socketserver's 5."""


class BoundedServer(ThreadingHTTPServer):
    """A `ThreadingHTTPServer` with a backlog for bursts and a one-line log of failed requests."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line in the log, not socketserver's traceback on stderr (a client that hung up, a broken answer)."""
        import sys

        error = sys.exc_info()[1]
        logger.warning(f"HTTP request from {client_address[0]} failed: {type(error).__name__}: {one_line(str(error))}")


class BoundedHandler(BaseHTTPRequestHandler):
    """One request per connection (HTTP/1.0), read within `READ_TIMEOUT_SECONDS` per read and
    `CONNECTION_DEADLINE_SECONDS` in all; requests are not logged (probes come every few seconds)."""

    server_version = "oauth-rotator"
    sys_version = ""
    timeout = READ_TIMEOUT_SECONDS  # StreamRequestHandler sets it on the socket: every read is bounded
    _deadline: threading.Timer

    def setup(self) -> None:
        super().setup()
        # A read timeout alone lets a client send one byte every few seconds for ever: cut the connection at the
        # deadline. shutdown() wakes the handler's blocked read, which then ends the request.
        self._deadline = threading.Timer(CONNECTION_DEADLINE_SECONDS, self._cut)
        self._deadline.daemon = True
        self._deadline.start()

    def finish(self) -> None:
        self._deadline.cancel()
        with contextlib.suppress(OSError):  # the deadline or the client closed the socket first
            super().finish()

    def _cut(self) -> None:
        with contextlib.suppress(OSError):  # the request ended meanwhile
            self.connection.shutdown(socket.SHUT_RDWR)

    def send_text(
        self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8", **headers: str
    ) -> None:
        """The whole answer: status, headers, body."""
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
        """Requests are not logged: probes every few seconds would flood the log."""


class RunningServer:
    """A server answering on a daemon thread: `close()` stops it and frees the port."""

    def __init__(self, server: BoundedServer, thread: threading.Thread) -> None:
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


def serve(address: str, port: int, handler: type[BaseHTTPRequestHandler], *, setting: str) -> RunningServer:
    """Bind `address:port` and answer on a daemon thread; a taken port or a bad address is a `ConfigError` that
    names `setting` (the flag or config key)."""
    try:
        server = BoundedServer((address, port), handler)
    except OSError as err:
        raise ConfigError(f"{setting}: cannot listen on {address}:{port}: {err.strerror or err}") from None
    except (OverflowError, ValueError) as err:  # a port out of range or an address with a NUL in it
        raise ConfigError(f"{setting}: cannot listen on {address}:{port}: {one_line(str(err))}") from None
    thread = threading.Thread(target=server.serve_forever, name=f"oauth-rotator-http-{port}", daemon=True)
    thread.start()
    return RunningServer(server, thread)
