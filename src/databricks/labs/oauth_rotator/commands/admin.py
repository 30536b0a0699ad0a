"""The scheduler's admin address (`--quitquitquit --admin-port PORT`): `POST /quitquitquit` stops it, and nothing
else is served.

Apart from the probes on purpose: the probe port may listen on every address (a pod's kubelet calls the pod's IP),
the admin port listens on the loopback only. It answers a request only when it cannot come from a web page: the
`Host` must be the address it serves (a DNS-rebinding page sends its own host name), and no `Origin` may be set
(browsers send one with every cross-origin POST, and `null` from sandboxed frames and files). Only POST: a GET
can be triggered by an `<img>` or a prefetch. On Linux, also only from a process of the scheduler's own user (or
root): the loopback is every local user's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from databricks.labs.oauth_rotator.commands.http_server import BoundedHandler, RunningServer, serve
from databricks.labs.oauth_rotator.commands.peer import has_table, peer_uid

logger = logging.getLogger(__name__)

ADMIN_ADDRESS = "127.0.0.1"
"""The loopback, and only it: in a pod, the other containers of the pod share it; on a machine, its users do."""
QUIT_PATH = "/quitquitquit"


def start_admin(port: int, quit_now: Callable[[], None]) -> RunningServer:
    """Serve `POST /quitquitquit` on the loopback at `port`; a taken port is a `ConfigError` (exit 2)."""
    return serve(ADMIN_ADDRESS, port, _admin_handler(port, quit_now), setting="--admin-port")


def refusal(host: str | None, origin: str | None, port: int) -> str | None:
    """Why a request with these headers is refused, or None when it is the loopback's own."""
    if origin is not None:
        return "a request with an Origin (from a web page) is refused"
    if host != f"{ADMIN_ADDRESS}:{port}":
        return f"Host must be {ADMIN_ADDRESS}:{port}"
    return None


def _admin_handler(port: int, quit_now: Callable[[], None]) -> type[BoundedHandler]:
    class AdminHandler(BoundedHandler):
        def do_POST(self) -> None:  # pylint: disable=invalid-name  # http.server's name
            if not self._allowed():
                return
            if self.path.split("?", 1)[0] != QUIT_PATH:
                self.send_text(404, b"not found\n")
                return
            logger.info(f"Stopping: POST {QUIT_PATH} on the admin port")
            quit_now()  # before the answer: a client that got "quitting" can count on the stop being under way
            self.send_text(200, b"quitting\n")

        def _refuse_method(self) -> None:
            if self._allowed():
                self.send_text(405, b"only POST /quitquitquit\n", Allow="POST")

        do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

        def _allowed(self) -> bool:
            why = refusal(self.headers.get("Host"), self.headers.get("Origin"), port) or self._other_user()
            if why is not None:
                self.send_text(403, f"forbidden: {why}\n".encode())
            return why is None

        def _other_user(self) -> str | None:
            if not has_table():
                return None
            uid = peer_uid(self.client_address, port)
            if uid is None or uid not in {0, os.geteuid()}:
                return "only the rotator's own user (or root) may stop it"
            return None

    return AdminHandler
