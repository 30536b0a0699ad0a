"""The log file: rotating, and created 0600 (it names hosts and users, which are nobody else's business).

Apart from `logs.py` so that commands which only print (status) do not import `logging.handlers`.
"""

from __future__ import annotations

import logging.handlers
import os
import stat
import sys
from typing import Any

from databricks.labs.oauth_rotator.hostos import CURRENT, HostOS

# O_NONBLOCK: a FIFO planted as the log fails at once (ENXIO) instead of blocking the run until someone reads it.
# O_BINARY (Windows): without it the C runtime turns each "\n" of Python's already translated "\r\n" into another
# "\r\n", and every line ends in "\r\r\n" (Microsoft's `_open` documentation: text mode is the default).
_FLAGS = (
    os.O_WRONLY
    | getattr(os, "O_BINARY", 0)
    | os.O_APPEND
    | os.O_CREAT
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file created 0600: it names hosts and users, which are nobody else's business.

    Opened without following a symbolic link (`setup_logging` hands it the real path, checked by
    `trust.check_trusted`), and only when it is a regular file of ours: a log that another user created first is
    refused, and one of ours that others could read is made 0600 before anything is appended.
    """

    _reported = False
    host: HostOS = CURRENT
    """The OS's file semantics: on Windows there is no owner to check and no mode to narrow."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, _FLAGS, 0o600)
        try:
            _make_private(fd, self.baseFilename, self.host)
        except BaseException:
            os.close(fd)
            raise
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)

    def handleError(self, record: logging.LogRecord) -> None:
        """One line on stderr, once, instead of logging's traceback for every record."""
        if not self._reported:
            self._reported = True
            error = sys.exc_info()[1]
            if sys.stderr is not None:  # None under pythonw.exe
                print(f"oauth-rotator: cannot write the log {self.baseFilename}: {error}", file=sys.stderr)


def _make_private(fd: int, name: str, host: HostOS) -> None:
    if not host.owners:
        return
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        raise OSError(f"{name} is not a regular file")
    if status.st_uid != os.geteuid():
        raise OSError(f"{name} belongs to uid {status.st_uid}, not to us; remove it")
    if stat.S_IMODE(status.st_mode) & 0o077:
        os.fchmod(fd, 0o600)
