"""What `status` and `logs` show: per-target rows from `status.json`, the service's state, the log's tail.

`status` is answered about as fast as Python starts: besides the light tier (`paths`, `names`), it imports `os`,
`sys`, `time` and `plainjson` (not `json`, which imports `re`), and `secrets` (`re`) only to clean a target's error;
never the SDK, blueprint, `logging`, `dataclasses`, `pathlib`, `datetime` or the service managers. `status.json` is
read as plain JSON (`password` reads it here too); on Linux the service state comes from the unit file's existence
and, only when there is one, `systemctl --user show`. Every value printed is escaped. `logs` may import more.
"""

from __future__ import annotations

import os
import sys
import time

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.files import plainjson
from databricks.labs.oauth_rotator.names import SYSTEMD_SHOW_PROPERTIES, SYSTEMD_UNIT_NAME, service_name
from databricks.labs.oauth_rotator.text import human_duration, printable

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing alone costs a fifth of Python's start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from typing import Any, TextIO

    from databricks.labs.oauth_rotator.rotation.state import Status
    from databricks.labs.oauth_rotator.service import ServiceManager, ServiceStatus

    PlainTarget = Mapping[str, Any]
    """One target of `status.json` as JSON decodes it (the fields of `state.TargetState`)."""

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
SYSTEMCTL_TIMEOUT_SECONDS = 10.0


def expires_in(expires_at: float | None, now: float) -> str:
    """`47 min` while valid, `expired 3 min ago` after, `-` when never rotated."""
    if expires_at is None:
        return NONE
    remaining = expires_at - now
    return human_duration(remaining) if remaining > 0 else f"expired {human_duration(-remaining)} ago"


def local_time(epoch: float | None) -> str:
    """A wall-clock time as the log writes it (`2025-01-22 14:30:00`, local time), or `never`."""
    if epoch is None:
        return "never"
    # Rounded to microseconds first, as `datetime.fromtimestamp` does (this module does without `datetime`).
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(round(epoch, 6)))


def error_text(target: PlainTarget) -> str:
    """The last error on one line, with what to do about it when a person must act; `-` when the last try worked."""
    text = _text(target.get("last_error"))
    if not text:
        return NONE
    fix = _text(target.get("fix"))
    if target.get("needs_person") and fix and fix not in text:
        text = f"{text}; {fix}"
    failures = target.get("failures")
    if isinstance(failures, int) and failures > 1:
        text = f"{text} ({failures} attempts)"
    # One cell of a tab-separated table: no tabs or line breaks; and never a secret, whatever an API echoed.
    return _cell(text)


def _cell(text: str) -> str:
    """Text from status.json (a workspace's message, a hand edit) for one table cell: on one line, redacted, with
    control characters escaped, so that an escape sequence in it is shown, never obeyed by the terminal."""
    from databricks.labs.oauth_rotator.secrets import redact

    return printable(redact(" ".join(text.split())))


# ---- the service state -----------------------------------------------------------------------------------------


def service_state(
    manager_factory: Callable[[], ServiceManager] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    debug: TextIO | None = None,
) -> str:
    """`running (pid 42)`, `stopped (exit 1)`, `not installed`, or `unknown` when the OS cannot be asked.

    Without a `manager_factory`, on Linux, the systemd user unit is looked at directly (`environ`: HOME,
    XDG_CONFIG_HOME); elsewhere, and with a factory, through the service manager. Why the OS could not be asked
    goes to `debug`, when given.
    """
    if manager_factory is None and sys.platform.startswith("linux"):
        return _systemd_state(os.environ if environ is None else environ, debug)
    manager = _manager(manager_factory)
    if manager is None:  # no service support on this OS
        return "unknown"
    if not manager.definition_path.exists():
        return "not installed"  # without asking systemctl/launchctl: status must answer at once
    from databricks.labs.oauth_rotator.errors import RotatorError

    try:
        found = manager.status()
    except (RotatorError, OSError) as err:  # a definition, but no user manager to ask (a container, `su`)
        _debug(debug, f"cannot read the service state: {err}")
        return "unknown"
    return _describe(found)


def _manager(factory: Callable[[], ServiceManager] | None) -> ServiceManager | None:
    from databricks.labs.oauth_rotator.errors import RotatorError

    if factory is None:
        from databricks.labs.oauth_rotator.service import for_platform

        factory = for_platform
    try:
        return factory()
    except RotatorError:
        return None


def _describe(found: ServiceStatus) -> str:
    if not found.installed:
        return "not installed"
    return _describe_installed(found.running, found.pid, found.last_exit_code)


def _describe_installed(running: bool, pid: int | None, last_exit_code: int | None) -> str:
    if running:
        return f"running (pid {pid})" if pid else "running"
    if last_exit_code:
        return f"stopped (exit {last_exit_code})"
    return "stopped"


def _systemd_state(environ: Mapping[str, str], debug: TextIO | None) -> str:
    """What `SystemdServiceManager.status()` would say, with no import of the service package."""
    if not os.path.exists(paths.systemd_unit_file_name(paths.home_name(environ), environ)):
        return "not installed"  # without asking systemctl: status must answer at once
    import subprocess

    argv = ["systemctl", "--user", "show", SYSTEMD_UNIT_NAME, f"--property={SYSTEMD_SHOW_PROPERTIES}"]
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,  # never wait for a prompt (polkit, a pager)
            capture_output=True,
            text=True,
            errors="replace",
            timeout=SYSTEMCTL_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:  # no systemctl, or no answer
        _debug(debug, f"cannot read the service state: {err}")
        return "unknown"
    if result.returncode != 0:  # a unit file, but no user manager to ask (a container, `su`)
        output = "\n".join(text.strip() for text in (result.stderr, result.stdout) if text.strip()) or "(no output)"
        command = " ".join(argv)
        _debug(debug, f"cannot read the service state: `{command}` failed with exit code {result.returncode}: {output}")
        return "unknown"
    return describe_shown(result.stdout)


def describe_shown(shown: str) -> str:
    """The state of an installed unit from what `systemctl --user show` printed (`Key=Value` lines)."""
    values = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    return _describe_installed(
        values.get("ActiveState") == "active",
        _int_or_none(values.get("MainPID")),
        _int_or_none(values.get("ExecMainStatus")),
    )


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _debug(stream: TextIO | None, message: str, *, prefix: str = f"DEBUG {__name__}: ") -> None:
    """`message` on `stream` when there is one, escaped (it holds paths and other programs' output)."""
    if stream is not None:
        print(printable(prefix + message), file=stream)


# ---- rows ------------------------------------------------------------------------------------------------------


def status_rows(status: Status | dict[str, PlainTarget], service: str, now: float) -> list[dict[str, str]]:
    """One row per target, sorted by name, with the `COLUMNS` keys (plus `expires_at`, ISO 8601 UTC).

    `status` is a `state.Status`, or the `targets` of `status.json` as plain data (what `read_targets` returns).
    """
    targets = status if isinstance(status, dict) else {name: vars(t) for name, t in status.targets.items()}
    return [_row(name, targets[name], service, now) for name in sorted(targets)]


def _row(name: str, target: PlainTarget, service: str, now: float) -> dict[str, str]:
    expires_at = _number(target.get("expires_at"))
    return {
        "target": _cell(name),
        "host": _cell(", ".join(_texts(target.get("hosts")))) or NONE,
        "user": _cell(_text(target.get("user")) or "") or NONE,
        "expires_in": expires_in(expires_at, now),
        "last_rotation": local_time(_number(target.get("last_success"))),
        "last_error": error_text(target),
        "service": service,
        "expires_at": _iso_utc(expires_at),
    }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _texts(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _number(value: object) -> float | None:
    """A time or count from the file; anything else (a hand-edited file) reads as absent, never as a crash."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if -1e11 < value < 1e11 else None  # within what `time.localtime` takes on every OS


def _iso_utc(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch is not None else ""


def render_table(rows: list[dict[str, str]]) -> str:
    """The rows as an aligned text table, for the console script (the labs CLI renders its own)."""
    keys = list(COLUMNS)
    table = [[COLUMNS[k] for k in keys], *([row.get(k, "") for k in keys] for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(keys))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table]
    for row in rows:
        if row.get("front"):
            lines.append(
                f"pgbouncer front for {row['target']}: {row['front']} password={row.get('front_password', '')}"
            )
    return "\n".join(lines)


# ---- status.json -----------------------------------------------------------------------------------------------


def read_targets(path: str, *, err: TextIO | None = None) -> dict[str, PlainTarget]:
    """The targets of `status.json` as plain data, by name; none when it is missing, empty or unreadable.

    As `state.StateStore.load` reads it: an unreadable or corrupt file holds nothing we cannot rebuild, so it reads
    as empty, with a warning on `err` when given.
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
        raw = plainjson.loads(data) if data.strip() else {}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        _debug(err, f"Ignoring unreadable status file {path}: {error}", prefix="")
        return {}
    if not isinstance(raw, dict):
        _debug(err, f"Ignoring unreadable status file {path}: not a JSON object", prefix="")
        return {}
    targets = raw.get("targets") or {}
    if not isinstance(targets, dict):
        return {}
    return {name: target for name, target in targets.items() if isinstance(target, dict)}


def collect_status(
    *,
    environ: Mapping[str, str] | None = None,
    manager_factory: Callable[[], ServiceManager] | None = None,
    now: float | None = None,
    err: TextIO | None = None,
    debug: bool = False,
) -> list[dict[str, str]]:
    """The rows of `status`; with no status file yet, none, and a hint on `err` (stderr).

    `debug` also says on `err` why the service state is `unknown`.
    """
    err = err if err is not None else sys.stderr
    path = paths.status_file_name(environ)
    service = service_state(manager_factory, environ=environ, debug=err if debug else None)
    if not os.path.exists(path):
        print(
            f"No rotation has run yet ({printable(path)} does not exist; background service: {service}). "
            "Run `databricks labs oauth-rotator rotate` now, or `databricks labs oauth-rotator install` "
            "for the background service.",
            file=err,
        )
        return []
    rows = status_rows(read_targets(path, err=err), service, time.time() if now is None else now)
    return [escaped(row) for row in with_front(rows, paths.front_file_name(environ))]


def escaped(row: dict[str, str]) -> dict[str, str]:
    """Every value of a row with its control characters escaped: whatever a file we read holds (status.json, the
    front's files, a password another user wrote), an escape sequence is shown, never obeyed by the terminal."""
    return {key: printable(value) for key, value in row.items()}


def with_front(rows: list[dict[str, str]], front_file: str) -> list[dict[str, str]]:
    """The rows, each target served by the pgbouncer front with `front` (where clients connect, as whom) and
    `front_password` (the local password when it was generated, which only that file and `status` show)."""
    try:
        with open(front_file, "rb") as file:
            front = plainjson.loads(file.read())
    except (OSError, ValueError):
        return rows
    if not isinstance(front, dict):
        return rows
    from databricks.labs.oauth_rotator.rotation.front_health import front_health_note

    listed = front.get("databases")
    databases = [name for name in listed if isinstance(name, str)] if isinstance(listed, list) else []
    password = _front_password(front.get("password_file"))
    for row in rows:
        name = service_name(row["target"])
        if name in databases:
            row["front"] = (
                f"host={front.get('address')} port={front.get('port')} dbname={name} user={front.get('user')}"
            ) + front_health_note(front)
            row["front_password"] = password or "(pgbouncer.password in the config)"
    return rows


def _front_password(path: object) -> str | None:
    if not isinstance(path, str):
        return None
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().strip() or None
    except OSError:
        return None


# ---- logs ------------------------------------------------------------------------------------------------------


def configured_log_file(config_path: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The config's `log_file`, else the default: from the config's cache while it holds this file, else through
    the one config reader (never blueprint). A config that cannot be read, or that fails the trust rule, gives the
    default: reporting a broken config is the job of `doctor`.
    """
    from pathlib import Path

    from databricks.labs.oauth_rotator.errors import RotatorError
    from databricks.labs.oauth_rotator.files.config_cache import cached_settings

    raw = cached_settings(str(config_path), environ)
    if raw is None:
        from databricks.labs.oauth_rotator.files.config_store import read_config

        try:
            raw = read_config(config_path).raw
        except RotatorError:
            raw = None
    value = raw.get("log_file") if isinstance(raw, dict) else None
    return Path(paths.log_file_name(value if isinstance(value, str) and value.strip() else None, environ))


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
