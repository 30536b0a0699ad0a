"""One rotation cycle in a child process, for the scheduler (`python -m databricks.labs.oauth_rotator.commands.worker`).

Reads a JSON request on stdin (`config` path, `overrides`, `force`), rotates, prints a one-line JSON report
(`exit_code`, `next_due`) on stdout, and exits 0 (all good), 1 (a target failed) or 2 (unusable config).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from typing import Any, TextIO

from databricks.labs.oauth_rotator.commands.way_out import INTERRUPTED, error_line, escaped, explain
from databricks.labs.oauth_rotator.errors import ConfigError, RotatorError

PROG = "oauth-rotator"

logger = logging.getLogger("databricks.labs.oauth_rotator")


def run_request(request: dict[str, Any], *, stream: TextIO | None) -> tuple[int, float | None]:
    """One cycle as the scheduler asked for it (due targets, or all with `force`), logged to `stream` too."""
    from databricks.labs.oauth_rotator.app.request import RotationRequest
    from databricks.labs.oauth_rotator.app.rotate import rotate_now

    # No deadline here: the scheduler is this process's watchdog, and kills it when a cycle hangs.
    outcome = rotate_now(
        RotationRequest.from_worker(request),
        force=bool(request.get("force")),
        deadline=None,
        log_stream=stream,
        supervised=True,
    )
    return outcome.exit_code, outcome.report.next_due


def _say(message: str, stderr: TextIO | None) -> None:
    """One error line: into the log (and stderr) once logging is set up, else on stderr; escaped and redacted as
    the one way out writes it (`way_out.error_line`), whichever way it goes.

    A dead stderr (None under `pythonw.exe`, a closed pipe, a broken handle) must not cost the report: the
    scheduler stops on exit 2 only when it gets the report.
    """
    if logger.handlers:
        logger.error(escaped(message))
        return
    if stderr is None:
        return  # print(file=None) would write to stdout, where the report goes
    # BrokenPipeError, EINVAL on a dead handle, "I/O operation on closed file": the report matters more.
    with contextlib.suppress(OSError, ValueError):
        print(error_line(PROG, message), file=stderr, flush=True)


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout, stderr: TextIO | None = sys.stderr) -> int:
    """Run the request on stdin; whatever happens, end with the one-line JSON report and an exit code."""
    try:
        request = json.loads(stdin.read() or "{}")
        if not isinstance(request, dict):
            raise ConfigError("worker: expected a JSON object on stdin")
        exit_code, next_due = run_request(request, stream=stderr)
    except KeyboardInterrupt:
        exit_code, next_due = INTERRUPTED, None
    except ValueError as err:  # a request that is not JSON: bad usage, as a ConfigError is
        exit_code, next_due = (err.exit_code if isinstance(err, RotatorError) else 2), None
        _say(str(err), stderr)
    except Exception as err:  # pylint: disable=broad-exception-caught  # a cycle never ends in a traceback
        exit_code, message = explain(err)
        next_due = None
        if not isinstance(err, RotatorError):
            message = f"the rotation cycle failed: {message}"
        _say(message, stderr)
    print(json.dumps({"exit_code": exit_code, "next_due": next_due}), file=stdout, flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
