"""One rotation cycle in a child process, for the scheduler (`python -m databricks.labs.oauth_rotator.commands.worker`).

Reads a JSON request on stdin (`config` path, `overrides`, `force`), rotates, prints a one-line JSON report
(`exit_code`, `next_due`) on stdout, and exits 0 (all good), 1 (a target failed) or 2 (unusable config).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from databricks.labs.oauth_rotator.errors import ConfigError, RotatorError

logger = logging.getLogger("databricks.labs.oauth_rotator")


def run_request(request: dict[str, Any], *, stream: TextIO) -> tuple[int, float | None]:
    from databricks.labs.oauth_rotator.app.rotate import build_cycle
    from databricks.labs.oauth_rotator.config import check_paths, log_path_for, pgpass_path_for
    from databricks.labs.oauth_rotator.files.config_store import effective_config
    from databricks.labs.oauth_rotator.files.logs import setup_logging
    from databricks.labs.oauth_rotator.rotation.verify import verify_all

    config_path = request.get("config")
    config = effective_config(Path(config_path) if config_path else None, request.get("overrides") or {})
    check_paths(config)
    setup_logging(log_path_for(config), level=logging.DEBUG if request.get("debug") else logging.INFO, stream=stream)
    report = build_cycle(config).run(force=bool(request.get("force")))
    exit_code = report.exit_code
    if request.get("verify") and report.keys:
        exit_code = max(exit_code, verify_all(report.keys, pgpass_path_for(config)))
    return exit_code, report.next_due


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    try:
        request = json.loads(stdin.read() or "{}")
        if not isinstance(request, dict):
            raise ConfigError("worker: expected a JSON object on stdin")
        exit_code, next_due = run_request(request, stream=stderr)
    except ValueError as err:
        exit_code, next_due = 2, None
        print(f"oauth-rotator: error: {err}", file=stderr)
    except RotatorError as err:
        exit_code, next_due = err.exit_code, None
        print(f"oauth-rotator: error: {err}", file=stderr)
    print(json.dumps({"exit_code": exit_code, "next_due": next_due}), file=stdout, flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
