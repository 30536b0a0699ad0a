"""Telling systemd how the scheduler is doing: the `sd_notify(3)` protocol, in the few lines it takes.

A service of `Type=notify` is "started" only when it sends `READY=1`; until then `systemctl start` waits, and units
ordered after it wait too. The protocol is one datagram per message on the unix socket named by `NOTIFY_SOCKET`
(a file path, or an abstract socket written with a leading `@`), each message newline-separated `KEY=value`
assignments (sd_notify(3), "Well-known assignments"). No well-kept library is needed for that: `systemd-python`
needs libsystemd's headers to build, `sdnotify` on PyPI is unmaintained since 2017, and the protocol is stable.

Nothing here ever raises: a scheduler must not stop because its supervisor went away. A message is one line of
`printable` text (no secret reaches it: callers send states, times and escaped error lines).
"""

from __future__ import annotations

import logging
import os
import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

logger = logging.getLogger(__name__)

NOTIFY_SOCKET = "NOTIFY_SOCKET"
MAX_STATUS = 200
"""`STATUS=` text is shown by `systemctl status` on one line: keep it short."""


class SystemdNotifier:
    """Sends `READY=1`, `STATUS=...`, `RELOADING=1` and `STOPPING=1` to systemd when it asked for them (a
    `NOTIFY_SOCKET` in the environment); does nothing otherwise, so every caller can just call it."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self._address = _address(environ.get(NOTIFY_SOCKET, ""))

    @property
    def enabled(self) -> bool:
        """Whether systemd is listening (the service is `Type=notify` and we were started by it)."""
        return self._address is not None

    def ready(self, status: str = "") -> None:
        """The service is up (sent once: after the first cycle, or after a reload), with an optional status line."""
        self._send("READY=1", status)

    def status(self, text: str) -> None:
        """What `systemctl status` shows on its `Status:` line."""
        self._send("", text)

    def reloading(self) -> None:
        """A reload began; `ready()` ends it. `MONOTONIC_USEC` is what `Type=notify-reload` (systemd 253) requires
        and older managers ignore."""
        usec = int(_monotonic_ns() // 1000)
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}", "")

    def stopping(self) -> None:
        """The service is shutting down."""
        self._send("STOPPING=1", "")

    def _send(self, state: str, status: str) -> None:
        if self._address is None:
            return
        lines = [state] if state else []
        if status:
            lines.append(f"STATUS={_one_line(status)}")
        if not lines:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(1.0)
                sock.sendto("\n".join(lines).encode("utf-8"), self._address)
        except OSError as err:
            # systemd went away (a restart of the manager) or the socket is not ours to write: carry on rotating.
            logger.debug(f"Could not notify systemd: {err}")


def _address(value: str) -> str | bytes | None:
    """The socket to send to: an absolute path, or `@name` for Linux's abstract namespace (sent as a leading NUL).
    Anything else (empty, relative, systemd 254's `vsock:` form) is not ours to guess: no notifications."""
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode("utf-8")
    if value.startswith("/"):
        return value
    return None


def _one_line(text: str) -> str:
    from databricks.labs.oauth_rotator.text import printable

    first = text.strip().splitlines()[0] if text.strip() else ""
    shown = printable(first)
    return shown if len(shown) <= MAX_STATUS else shown[: MAX_STATUS - 3] + "..."


def _monotonic_ns() -> int:
    import time

    return time.monotonic_ns()
