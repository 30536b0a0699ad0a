"""The `databricks labs oauth-rotator` entrypoint: `python cli.py '<JSON payload>'`, as the Databricks CLI runs it.

The payload is checked here first (one line on stderr and exit 2 when it is wrong). `status` and `logs` are
answered with the standard library alone; every other command goes through blueprint's `App`, which imports the
Databricks SDK (about two seconds). Each command turns its failure into an exit code itself: `App` would log the
exception and exit 0, and the CLI would report success.

No `from __future__ import annotations` here: blueprint converts a flag by its parameter's annotation object
(`bool`, `int`), and postponed annotations would be strings. Other annotations are quoted instead, and this
module imports only `json`, `os` and `sys` when it loads: `status` must not pay for `typing`, `logging`,
`dataclasses`, `pathlib` or pkgutil (the commands import what they use).
"""

import json
import os
import sys

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`, which would import typing
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path
    from typing import Any, NoReturn

    from databricks.labs.blueprint.cli import App

    from databricks.labs.oauth_rotator.config import RotatorConfig

PROG = "oauth-rotator"
PACKAGE_LOGGER = "databricks.labs.oauth_rotator"
"""`logs.PACKAGE_LOGGER` (a unit test keeps the two equal): importing `logs` would import `logging`."""
FLAGS: dict[str, dict[str, str]] = {
    "configure": {},
    "rotate": {"verify": "false"},
    "run": {},
    "install": {},
    "uninstall": {"purge": "false"},
    "restart": {},
    "status": {},
    "logs": {"lines": "50"},
    "doctor": {},
    "psql": {"target": "", "database": "", "command": ""},
    "env": {"target": "", "database": "", "with-password": "false"},
}
"""Every command and its flags with their defaults, as labs.yml declares them (a test keeps the two equal)."""
LIGHT_COMMANDS = frozenset({"status", "logs"})
"""Answered before blueprint (and so the SDK) is imported."""
UNAUTHENTICATED = frozenset({"install", "uninstall", "restart", "status", "logs", "doctor"})
"""Commands that need no login from the CLI (labs.yml `is_unauthenticated: true`)."""
LOGS_ARE_OUTPUT = frozenset({"configure", "rotate", "run"})
"""Commands whose INFO records tell the user what happened (the others print their result)."""
BOOLEAN_FLAGS = frozenset({"verify", "purge", "with-password"})
LOG_LEVELS = frozenset({"trace", "debug", "info", "warn", "error", "disabled"})


class PayloadError(ValueError):
    """The argument is not a payload this entrypoint understands: bad usage, exit code 2."""


class Payload:
    """The checked payload. A plain class, not a dataclass: `status` should not pay for importing `dataclasses`."""

    __slots__ = ("command", "flags", "log_level")

    def __init__(self, command: str, flags: dict[str, str], log_level: str) -> None:
        self.command = command
        self.flags = flags
        """Every flag of the command, defaults filled in for the ones the CLI sent empty."""
        self.log_level = log_level

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Payload):
            return NotImplemented
        return (self.command, self.flags, self.log_level) == (other.command, other.flags, other.log_level)

    __hash__ = None  # type: ignore[assignment]  # unhashable, as a dataclass with a dict field would be

    def __repr__(self) -> str:
        return f"Payload({self.command!r}, {self.flags!r}, {self.log_level!r})"

    def to_json(self) -> str:
        """The payload as blueprint's `App` reads it (it requires `log_level`)."""
        return json.dumps({"command": self.command, "flags": {**self.flags, "log_level": self.log_level}})

    @property
    def debug(self) -> bool:
        return self.log_level in {"debug", "trace"}


def parse_payload(args: "Sequence[str]") -> Payload:
    """Check `{"command": ..., "flags": {...strings...}, "output_type": ""}` and the command's flag values."""
    if len(args) != 1:
        raise PayloadError(
            "expected one argument, the JSON payload from the Databricks CLI; run `databricks labs oauth-rotator`"
        )
    try:
        raw = json.loads(args[0])
    except ValueError as err:
        raise PayloadError(f"the payload is not JSON: {err}") from None
    if not isinstance(raw, dict):
        raise PayloadError(f"the payload must be a JSON object, got {type(raw).__name__}")
    command = raw.get("command")
    if not isinstance(command, str) or not command:
        raise PayloadError('the payload has no "command"')
    if command not in FLAGS:
        raise PayloadError(f"unknown command {_shown(command)} (commands: {', '.join(sorted(FLAGS))})")
    flags = raw.get("flags", {})
    if not isinstance(flags, dict) or not all(isinstance(v, str) for v in flags.values()):
        raise PayloadError('"flags" must be a JSON object of strings')
    flags = dict(flags)
    log_level = flags.pop("log_level", "warn").strip().lower() or "warn"
    if log_level not in LOG_LEVELS:
        raise PayloadError(f"unknown log level {log_level!r} (one of {', '.join(sorted(LOG_LEVELS))})")
    values = _flag_values(command, flags)
    return Payload(command, values, log_level)


def _shown(value: str, limit: int = 60) -> str:
    """`value` quoted for an error message, shortened: a payload can be anything, and errors are one line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _flag_values(command: str, flags: dict[str, str]) -> dict[str, str]:
    """Every flag of `command`: the given values (empty means the default), each checked."""
    unknown = sorted(set(flags) - set(FLAGS[command]))
    if unknown:
        raise PayloadError(f"{command}: unknown flag --{_shown(unknown[0])[1:-1]}")
    values = {**FLAGS[command], **{k: v.strip() for k, v in flags.items() if v.strip()}}
    for name in BOOLEAN_FLAGS & set(values):
        if values[name].lower() not in {"true", "false"}:
            raise PayloadError(f"{command}: --{name} expects true or false, got {values[name]!r}")
        values[name] = values[name].lower()
    if "lines" in values:
        from databricks.labs.oauth_rotator.app.status import MAX_LOG_LINES, parse_lines

        try:
            parse_lines(values["lines"])
        except ValueError:
            raise PayloadError(f"{command}: --lines expects a number from 1 to {MAX_LOG_LINES}") from None
    return values


# ---- the commands -----------------------------------------------------------------------------------------------
# Each returns its exit code; `_exits` turns errors into one line and an exit code. The docstring is the help text.


def configure() -> int:
    """Choose the profile and the Lakebase databases, the .pgpass file and margin; save the config"""
    from databricks.labs.blueprint.tui import Prompts

    from databricks.labs.oauth_rotator.app.configure import configure as run_installer
    from databricks.labs.oauth_rotator.paths import default_config_file

    run_installer(Prompts(), config_path=default_config_file())
    return 0


def rotate(verify: bool = False) -> int:
    """Rotate the credential of every configured database now"""
    from databricks.labs.oauth_rotator.app.request import RotationRequest
    from databricks.labs.oauth_rotator.app.rotate import rotate_now

    path, _ = _saved_config(pin=True)
    outcome = rotate_now(RotationRequest(path, once=True, verify=verify, debug=_debug()))
    for label in outcome.report.rotated:
        print(f"rotated {label}")
    return outcome.exit_code


def run() -> int:
    """Run the rotation loop in the foreground until interrupted"""
    from databricks.labs.oauth_rotator.app.request import RotationRequest
    from databricks.labs.oauth_rotator.app.scheduler import run_scheduler

    path, _ = _saved_config(pin=True)  # the workers inherit the pinned environment
    return run_scheduler(RotationRequest(path, debug=_debug()))


def install() -> int:
    """Install and start the background service for the saved config"""
    from databricks.labs.oauth_rotator.app.service import install_service
    from databricks.labs.oauth_rotator.service import for_platform

    path, config = _saved_config(pin=False)
    print(install_service(config, path, manager=for_platform()))
    return 0


def uninstall(purge: bool = False) -> int:
    """Stop and remove the background service (--purge true also removes its .pgpass lines)"""
    from databricks.labs.oauth_rotator.app.service import uninstall_service
    from databricks.labs.oauth_rotator.service import for_platform

    print(uninstall_service(for_platform(), purge=purge))
    return 0


def restart() -> int:
    """Restart the background service"""
    from databricks.labs.oauth_rotator.app.service import restart_service
    from databricks.labs.oauth_rotator.service import for_platform

    print(restart_service(for_platform()))
    return 0


def status() -> int:
    """Show each database's host, user, expiry, last rotation and error, and the service state"""
    return _print_status(debug=_debug())


def _print_status(*, debug: bool) -> int:
    from databricks.labs.oauth_rotator.app.status import collect_status

    # One JSON value on stdout and nothing else: the CLI parses it for the table.
    print(json.dumps(collect_status(debug=debug)))
    return 0


def logs(lines: int = 50) -> int:
    """Show the last lines of the rotator's log"""
    from databricks.labs.oauth_rotator.app.status import configured_log_file, print_log_tail
    from databricks.labs.oauth_rotator.paths import default_config_file

    return print_log_tail(configured_log_file(default_config_file()), lines, out=sys.stdout, err=sys.stderr)


def doctor() -> int:
    """Check the login, the targets, .pgpass, PGPASSWORD, libpq and the service; say how to fix each problem"""
    from databricks.labs.oauth_rotator.app.doctor import check_installation, print_findings

    return print_findings(check_installation(), sys.stdout)


def psql(target: str = "", database: str = "", command: str = "") -> int:
    """Open psql on a configured database with a fresh credential (in psql's environment, never on its command line)"""
    from databricks.labs.oauth_rotator.app.connect import open_psql

    _, config = _saved_config(pin=True)
    return open_psql(config, name=target or None, database=database or None, sql=command or None)


def env(target: str = "", database: str = "", with_password: bool = False) -> int:
    """Print export lines (PGHOST, PGPORT, PGUSER, PGDATABASE, PGSSLMODE) for eval in a POSIX shell"""
    from databricks.labs.oauth_rotator.app.connect import env_lines

    _, config = _saved_config(pin=True)
    lines = env_lines(config, name=target or None, database=database or None, with_password=with_password)
    # Only now, all at once: a failure half-way leaves stdout empty, and `eval` runs nothing.
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


COMMANDS: "tuple[Callable[..., int], ...]" = (
    configure,
    rotate,
    run,
    install,
    uninstall,
    restart,
    status,
    logs,
    doctor,
    psql,
    env,
)


def _saved_config(*, pin: bool) -> "tuple[Path, RotatorConfig]":
    """The saved config (exit 2 with what to run when there is none); `pin` makes its profile decide the login."""
    from databricks.labs.oauth_rotator.files.config_store import load_config
    from databricks.labs.oauth_rotator.lakebase.workspace import pin_profile
    from databricks.labs.oauth_rotator.paths import default_config_file

    path = default_config_file()
    config = load_config(path)
    if pin:
        pin_profile(config.profile)
    return path, config


def _debug() -> bool:
    import logging

    # blueprint's App sets the `databricks` logger from the payload's log_level (debug and trace: DEBUG).
    return logging.getLogger("databricks").getEffectiveLevel() <= logging.DEBUG


def _exits(command: "Callable[..., int]") -> "Callable[..., None]":
    """`command` for blueprint's App: failures become one line on stderr and a non-zero exit, never exit 0."""
    import functools
    import logging

    name = command.__name__.replace("_", "-")

    @functools.wraps(command)
    def wrapper(**kwargs: "Any") -> None:
        from databricks.labs.oauth_rotator.errors import RotatorError

        # The CLI's default log level (warn) would hide what the command did.
        if _debug() or name in LOGS_ARE_OUTPUT:
            logging.getLogger(PACKAGE_LOGGER).setLevel(logging.DEBUG if _debug() else logging.INFO)
        try:
            exit_code = command(**kwargs)
        except RotatorError as err:
            raise _fail(name, str(err), err.exit_code) from None
        except KeyboardInterrupt:
            raise SystemExit(130) from None
        except EOFError:
            raise _fail(name, "no answer: standard input is closed", 1) from None
        except Exception as err:  # pylint: disable=broad-exception-caught  # App would log it and exit 0
            logging.getLogger(PACKAGE_LOGGER).debug(f"{name} failed", exc_info=True)
            raise _fail(name, f"{type(err).__name__}: {err}", 1) from None
        if exit_code:
            raise SystemExit(exit_code)

    return wrapper


def _fail(name: str, message: str, exit_code: int) -> SystemExit:
    from databricks.labs.oauth_rotator.secrets import redact
    from databricks.labs.oauth_rotator.text import printable

    print(f"{PROG} {name}: error: {printable(redact(' '.join(message.split())))}", file=sys.stderr)
    return SystemExit(exit_code)


def build_app() -> "App":
    """blueprint's App with every command registered (importing blueprint imports the SDK)."""
    from databricks.labs.blueprint.cli import App

    app = App(__file__)
    for command in COMMANDS:
        # Unauthenticated for blueprint, always: App would otherwise build a WorkspaceClient from the environment,
        # without timeouts and before the saved config's profile is known. Commands build their own client.
        # labs.yml still asks the CLI for a login where one is needed (configure, rotate, run).
        app.command(_exits(command), is_unauthenticated=True)
    return app


def _run_light(payload: Payload) -> int:
    from databricks.labs.oauth_rotator.errors import RotatorError

    try:
        if payload.command == "status":
            return _print_status(debug=payload.debug)  # says what it has to say on stderr itself, without logging
        _log_to_stderr(debug=payload.debug)
        return logs(int(payload.flags["lines"]))
    except RotatorError as err:
        print(f"{PROG} {payload.command}: error: {err}", file=sys.stderr)
        return err.exit_code


def _log_to_stderr(*, debug: bool) -> None:
    import logging

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger(PACKAGE_LOGGER).setLevel(logging.DEBUG if debug else logging.WARNING)


def main() -> "NoReturn":
    """Read the payload from `sys.argv[1]`, run the command, exit with its code."""
    _forget_script_directory()
    try:
        payload = parse_payload(sys.argv[1:])
    except PayloadError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(2)
    if payload.command in LIGHT_COMMANDS:
        from databricks_oauth_rotator.scripts import namespace_packages

        namespace_packages()  # `databricks` and `databricks.labs` without pkgutil, as the console scripts do
        sys.exit(_run_light(payload))
    from databricks.labs.oauth_rotator.errors import RotatorError

    try:
        app = build_app()
        sys.argv[1:] = [payload.to_json()]  # the checked payload, as App reads it
        app()
    except RotatorError as err:
        print(f"{PROG} {payload.command}: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    sys.exit(0)


def _forget_script_directory() -> None:
    """Run by path, Python puts this file's folder first on sys.path, where `logs.py` or `config.py` would shadow
    any top-level module of that name; the package is imported by its full name from PYTHONPATH instead."""
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == here:
        del sys.path[0]


if __name__ == "__main__":
    main()
