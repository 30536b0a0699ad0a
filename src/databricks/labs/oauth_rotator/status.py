"""What `status` and `logs` show: per-target rows from `status.json`, the service's state, the log's tail.

Stdlib only (plus PyYAML when present, to find a configured log file): these commands answer in a fraction of
a second because they never import the Databricks SDK or blueprint, which cost about two seconds and 80 MB.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.errors import RotatorError
from databricks.labs.oauth_rotator.logs import redact
from databricks.labs.oauth_rotator.state import StateStore, Status, TargetState

if TYPE_CHECKING:
    from databricks.labs.oauth_rotator.service import ServiceManager, ServiceStatus

logger = logging.getLogger(__name__)

COLUMNS = {
    "target": "TARGET",
    "host": "HOST",
    "user": "USER",
    "expires_in": "EXPIRES IN",
    "last_rotation": "LAST ROTATION",
    "last_error": "LAST ERROR",
    "service": "SERVICE",
}
"""The row keys `status` prints, and the table headers (labs.yml's `table_template` uses the same)."""
NONE = "-"
MAX_LOG_LINES = 100_000


def human_duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 5 min`: how people read a credential's remaining life."""
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def expires_in(expires_at: float | None, now: float) -> str:
    """`47 min` while valid, `expired 3 min ago` after, `-` when never rotated."""
    if expires_at is None:
        return NONE
    remaining = expires_at - now
    return human_duration(remaining) if remaining > 0 else f"expired {human_duration(-remaining)} ago"


def local_time(epoch: float | None) -> str:
    """A wall-clock time as the log writes it (`2025-01-22 14:30:00`, local time), or `never`."""
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S") if epoch is not None else "never"


def error_text(target: TargetState) -> str:
    """The last error on one line, with what to do about it when a person must act; `-` when the last try worked."""
    if not target.last_error:
        return NONE
    text = target.last_error
    if target.needs_person and target.fix and target.fix not in text:
        text = f"{text}; {target.fix}"
    if target.failures > 1:
        text = f"{text} ({target.failures} attempts)"
    # One cell of a tab-separated table: no tabs or line breaks; and never a secret, whatever an API echoed.
    return redact(" ".join(text.split()))


def _manager(factory: Callable[[], ServiceManager] | None) -> ServiceManager | None:
    if factory is None:
        from databricks.labs.oauth_rotator.service import for_platform

        factory = for_platform
    try:
        return factory()
    except RotatorError:
        return None


def service_state(manager_factory: Callable[[], ServiceManager] | None = None) -> str:
    """`running (pid 42)`, `stopped (exit 1)`, `not installed`, or `unknown` when the OS cannot be asked."""
    manager = _manager(manager_factory)
    if manager is None:  # no service support on this OS
        return "unknown"
    if not manager.definition_path.exists():
        return "not installed"  # without asking systemctl/launchctl: status must answer at once
    try:
        found = manager.status()
    except (RotatorError, OSError) as err:  # a definition, but no user manager to ask (a container, `su`)
        logger.debug(f"cannot read the service state: {err}")
        return "unknown"
    return _describe(found)


def _describe(found: ServiceStatus) -> str:
    if not found.installed:
        return "not installed"
    if found.running:
        return f"running (pid {found.pid})" if found.pid else "running"
    if found.last_exit_code:
        return f"stopped (exit {found.last_exit_code})"
    return "stopped"


def status_rows(status: Status, service: str, now: float) -> list[dict[str, str]]:
    """One row per target, sorted by name, with the `COLUMNS` keys (plus `expires_at`, ISO 8601 UTC)."""
    rows = []
    for name in sorted(status.targets):
        target = status.targets[name]
        rows.append(
            {
                "target": name,
                "host": ", ".join(target.hosts) or NONE,
                "user": target.user or NONE,
                "expires_in": expires_in(target.expires_at, now),
                "last_rotation": local_time(target.last_success),
                "last_error": error_text(target),
                "service": service,
                "expires_at": _iso_utc(target.expires_at),
            }
        )
    return rows


def _iso_utc(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch is not None else ""


def render_table(rows: list[dict[str, str]]) -> str:
    """The rows as an aligned text table, for the console script (the labs CLI renders its own)."""
    keys = list(COLUMNS)
    table = [[COLUMNS[k] for k in keys], *([row.get(k, "") for k in keys] for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(keys))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table)


def status_file(environ: Mapping[str, str] | None = None) -> Path:
    return paths.state_dir(environ) / "status.json"


def collect_status(
    *,
    environ: Mapping[str, str] | None = None,
    manager_factory: Callable[[], ServiceManager] | None = None,
    now: float | None = None,
    err: TextIO | None = None,
) -> list[dict[str, str]]:
    """The rows of `status`; with no status file yet, none, and a hint on `err` (stderr)."""
    err = err if err is not None else sys.stderr
    path = status_file(environ)
    service = service_state(manager_factory)
    if not path.exists():
        print(
            f"No rotation has run yet ({path} does not exist; background service: {service}). "
            "Run `databricks labs oauth-rotator rotate` now, or `databricks labs oauth-rotator install` "
            "for the background service.",
            file=err,
        )
        return []
    return status_rows(StateStore(path).load(), service, time.time() if now is None else now)


def configured_log_file(config_path: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The config's `log_file`, else the default; read with PyYAML alone, never through blueprint.

    A config that cannot be read gives the default: reporting a broken config is the job of `doctor`.
    """
    default = paths.default_log_file(environ)
    try:
        import yaml
    except ImportError:
        return default
    try:
        raw: Any = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return default
    value = raw.get("log_file") if isinstance(raw, dict) else None
    if isinstance(value, str) and value.strip():
        return Path(os.path.expanduser(value))  # as rotator.log_path_for reads it
    return default


def parse_lines(text: str) -> int:
    """The `--lines` flag: a whole number from 1 to 100000 (ValueError otherwise)."""
    value = int(text.strip())
    if not 1 <= value <= MAX_LOG_LINES:
        raise ValueError(text)
    return value


def print_log_tail(log_file: Path, lines: int, *, out: TextIO, err: TextIO) -> int:
    """Print the last `lines` lines of the rotator's log on `out`; a missing log is a hint on `err`, not an error."""
    try:
        from databricks.labs.oauth_rotator.service.base import tail_lines

        tail = tail_lines(log_file, lines)
    except FileNotFoundError:
        print(f"No log yet: {log_file} does not exist (nothing has rotated with this config).", file=err)
        return 0
    except OSError as error:
        print(f"oauth-rotator: error: cannot read {log_file}: {error}", file=err)
        return 1
    for line in tail:
        print(line, file=out)
    return 0
