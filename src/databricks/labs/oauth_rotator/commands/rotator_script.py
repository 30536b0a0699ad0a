"""`databricks-oauth-rotator`, compatible with the original tool: `--once` rotates now, else the scheduler runs.

Exit codes: 0 success, 1 rotation failed, 2 bad usage or configuration (one line on stderr, nothing written,
no credential requested). Messages go to stderr; stdout is for results. The daemon path stays import-light:
each cycle runs in a child process, so the SDK is never loaded into the long-lived process.
"""

from __future__ import annotations

import os
import sys

from databricks.labs.oauth_rotator.commands.flags import guarded, parse_invocation

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: `--help` does without typing
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import NoReturn


def rotator_main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None) -> NoReturn:
    """`databricks-oauth-rotator`."""
    environ = os.environ if environ is None else environ
    sys.exit(guarded(lambda: _rotator(list(sys.argv[1:] if argv is None else argv), environ)))


def _rotator(argv: list[str], environ: Mapping[str, str]) -> int:
    request = parse_invocation(argv, environ)
    if not request.once:
        from databricks.labs.oauth_rotator.app.scheduler import run_scheduler

        return run_scheduler(request)
    from databricks.labs.oauth_rotator.app.rotate import rotate_now

    outcome = rotate_now(request)
    for label in outcome.report.rotated:
        print(f"rotated {label}")
    return outcome.exit_code
