"""Logging for the rotator: the original tool's format, a rotating 0600 file, and a filter that redacts secrets.

Stdlib only. Logging is configured by entry points, never as an import side effect. `redact` lives in
`secrets.py`, so that commands which only print (status) clean their text without importing `logging`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

from databricks.labs.oauth_rotator.secrets import redact

LOG_FORMAT = "%(asctime)s - %(levelname)s - %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
PACKAGE_LOGGER = "databricks.labs.oauth_rotator"


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and exception text) with secrets redacted, whatever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def setup_logging(
    log_file: Path | None,
    *,
    level: int = logging.INFO,
    stream: TextIO | None = None,
    root: logging.Logger | None = None,
    to_stream: bool = True,
) -> None:
    """Send the rotator's records to `stream` (stderr) and `log_file`, both redacted, in the original format.

    Without `to_stream`, to the file only (a command whose stderr is for one line, like `password`). With no
    stream at all (`pythonw.exe`, which the Windows task runs, sets `sys.stderr` to None), the records go to
    `log_file`, or to the default log file when none is given, instead of nowhere.
    """
    root = root if root is not None else logging.getLogger()
    formatter = logging.Formatter(LOG_FORMAT, DATE_FORMAT)
    handlers: list[logging.Handler] = []
    console = stream if stream is not None else sys.stderr
    if to_stream and console is None:
        from databricks.labs.oauth_rotator.paths import default_log_file

        to_stream, log_file = False, log_file if log_file is not None else default_log_file()
    if to_stream:
        handlers.append(logging.StreamHandler(console))
    if log_file is not None:
        from databricks.labs.oauth_rotator.files.logfile import PrivateRotatingFileHandler
        from databricks.labs.oauth_rotator.files.writer import make_private_directories
        from databricks.labs.oauth_rotator.trust import check_trusted

        make_private_directories(log_file.parent)
        # A symlinked log is followed only when it passes the rule; the handler opens the real file, no links.
        real = check_trusted(log_file, for_write=True)
        # delay: the file appears with the first record, so a run that fails on its arguments writes nothing.
        handlers.append(PrivateRotatingFileHandler(real, maxBytes=10 * 1024 * 1024, backupCount=5, delay=True))
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger(PACKAGE_LOGGER).setLevel(level)
    # The SDK logs request bodies at DEBUG; never let that reach a file even when the user asks for debug logs.
    logging.getLogger("databricks.sdk").setLevel(logging.INFO if level <= logging.INFO else level)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
