"""The log file: rotating, and created 0600 (it names hosts and users, which are nobody else's business).

Apart from `logs.py` so that commands which only print (status) do not import `logging.handlers`.
"""

from __future__ import annotations

import logging.handlers
import os
from typing import Any


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file created 0600: it names hosts and users, which are nobody else's business."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)
