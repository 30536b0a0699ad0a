"""The labs commands, for every front door that the Databricks CLI starts: `databricks labs oauth-rotator ...`
(commands/labs_cli.py, through blueprint's `App`) and `databricks labs sandbox lakebase-oauth-...`
(commands/sandbox.py, through the sandbox's router). Both get the same flag table, the same checks of the flag
values, the same command bodies and the same turning of failures into one line and an exit code.

Each command returns its exit code; `exits` makes the failures one line on stderr and a non-zero exit. `status`
and `logs` are answered by `run_light` with the standard library alone; the others import the Databricks SDK.

No `from __future__ import annotations` here: blueprint converts a flag by its parameter's annotation object
(`bool`, `int`), and postponed annotations would be strings. Other annotations are quoted instead, and this
module imports only `json` and `sys` when it loads: `status` must not pay for `typing`, `logging`,
`dataclasses`, `pathlib` or pkgutil (the commands import what they use).
"""

import sys

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`, which would import typing
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from typing import Any

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
    "password": {"target": ""},
}
"""Every command and its flags with their defaults, as labs.yml declares them (a test keeps the two equal)."""
LIGHT_COMMANDS = frozenset({"status", "logs", "password"})
"""Answered before blueprint (and so the SDK) is imported (`password` imports the SDK only to mint)."""
UNAUTHENTICATED = frozenset({"install", "uninstall", "restart", "status", "logs", "doctor", "password"})
"""Commands that need no login from the CLI (labs.yml `is_unauthenticated: true`)."""
LOGS_ARE_OUTPUT = frozenset({"configure", "rotate", "run"})
"""Commands whose INFO records tell the user what happened (the others print their result)."""
BOOLEAN_FLAGS = frozenset({"verify", "purge", "with-password"})
INTEGER_FLAGS = frozenset({"lines"})
LOG_LEVELS = frozenset({"trace", "debug", "info", "warn", "error", "disabled"})


class PayloadError(ValueError):
    """The command or a flag is not one these commands understand: bad usage, exit code 2."""


def check_flags(command: str, flags: "Mapping[str, str]") -> dict[str, str]:
    """Every flag of `command`: the given values (empty means the default), each checked (PayloadError if not)."""
    if command not in FLAGS:
        raise PayloadError(f"unknown command {shown(command)} (commands: {', '.join(sorted(FLAGS))})")
    if not all(isinstance(v, str) for v in flags.values()):
        raise PayloadError('"flags" must be a JSON object of strings')
    unknown = sorted(set(flags) - set(FLAGS[command]))
    if unknown:
        raise PayloadError(f"{command}: unknown flag --{shown(unknown[0])[1:-1]}")
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


def typed_arguments(values: "Mapping[str, str]") -> "dict[str, Any]":
    """Checked flag values as the command functions take them: `with-password` -> `with_password`, booleans and
    numbers converted (as blueprint's `App` converts them by annotation); empty strings left out for the default."""
    arguments: dict[str, Any] = {}
    for name, value in values.items():
        if value == "":
            continue
        key = name.replace("-", "_")
        if name in BOOLEAN_FLAGS:
            arguments[key] = value == "true"
        elif name in INTEGER_FLAGS:
            arguments[key] = int(value)
        else:
            arguments[key] = value
    return arguments


def shown(value: str, limit: int = 60) -> str:
    """`value` quoted for an error message, shortened: a payload can be anything, and errors are one line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


# ---- the commands -----------------------------------------------------------------------------------------------
# Each returns its exit code; `exits` turns errors into one line and an exit code. The docstring is the help text.


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
    outcome = rotate_now(RotationRequest(path, once=True, verify=verify, debug=is_debug()))
    for label in outcome.report.rotated:
        print(f"rotated {label}")
    return outcome.exit_code


def run() -> int:
    """Run the rotation loop in the foreground until interrupted"""
    from databricks.labs.oauth_rotator.app.request import RotationRequest
    from databricks.labs.oauth_rotator.app.scheduler import run_scheduler

    path, _ = _saved_config(pin=True)  # the workers inherit the pinned environment
    return run_scheduler(RotationRequest(path, debug=is_debug()))


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
    return print_status(debug=is_debug())


def print_status(*, debug: bool) -> int:
    """`status`: one JSON value on stdout and nothing else (the CLI parses it for the table)."""
    from databricks.labs.oauth_rotator.app.status import collect_status
    from databricks.labs.oauth_rotator.files.plainjson import dumps

    print(dumps(collect_status(debug=debug)))
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


def password(target: str = "") -> int:
    """Print the current credential of one configured database and nothing else (for pgAdmin, DBeaver, Postico)"""
    return print_password(target, debug=is_debug())


def print_password(target: str, *, debug: bool) -> int:
    """`password`: the credential and a newline on stdout, in one write (a failure leaves stdout empty)."""
    import os

    from databricks.labs.oauth_rotator.app.password import current_password
    from databricks.labs.oauth_rotator.paths import config_file_name

    # The saved config's profile decides the login, as for the service (labs.yml asks the CLI for none).
    credential = current_password(config_file_name(os.environ), target or None, pin=True, debug=debug)
    sys.stdout.write(f"{credential}\n")
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
    password,
)


def command_named(name: str) -> "Callable[..., int]":
    """The command function for a labs name (`with-password` style names are the functions' with `_`)."""
    return next(command for command in COMMANDS if command.__name__ == name.replace("-", "_"))


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


def is_debug() -> bool:
    """Whether the CLI asked for debug output: the `databricks` logger is at DEBUG (blueprint's App and the sandbox's
    router set it from the payload's log_level)."""
    import logging

    return logging.getLogger("databricks").getEffectiveLevel() <= logging.DEBUG


def exits(command: "Callable[..., int]") -> "Callable[..., None]":
    """`command` made to fail loudly: failures become one line on stderr and a non-zero exit, never exit 0."""
    import functools
    import logging

    name = command.__name__.replace("_", "-")

    @functools.wraps(command)
    def wrapper(**kwargs: "Any") -> None:
        from databricks.labs.oauth_rotator.errors import RotatorError

        # The CLI's default log level (warn) would hide what the command did.
        if is_debug() or name in LOGS_ARE_OUTPUT:
            logging.getLogger(PACKAGE_LOGGER).setLevel(logging.DEBUG if is_debug() else logging.INFO)
        try:
            exit_code = command(**kwargs)
        except RotatorError as err:
            raise fail(name, str(err), err.exit_code) from None
        except KeyboardInterrupt:
            raise SystemExit(130) from None
        except EOFError:
            raise fail(name, "no answer: standard input is closed", 1) from None
        except Exception as err:  # pylint: disable=broad-exception-caught  # App would log it and exit 0
            logging.getLogger(PACKAGE_LOGGER).debug(f"{name} failed", exc_info=True)
            raise fail(name, f"{type(err).__name__}: {err}", 1) from None
        if exit_code:
            raise SystemExit(exit_code)

    return wrapper


def fail(name: str, message: str, exit_code: int) -> SystemExit:
    """Print `oauth-rotator NAME: error: MESSAGE` (one line, secrets redacted) and return the exit to raise."""
    from databricks.labs.oauth_rotator.secrets import redact
    from databricks.labs.oauth_rotator.text import printable

    print(f"{PROG} {name}: error: {printable(redact(' '.join(message.split())))}", file=sys.stderr)
    return SystemExit(exit_code)


def run_light(command: str, flags: "Mapping[str, str]", *, debug: bool) -> int:
    """One of LIGHT_COMMANDS with checked flags, without blueprint or the SDK; returns the exit code."""
    from databricks.labs.oauth_rotator.errors import RotatorError

    try:
        if command == "status":
            return print_status(debug=debug)  # says what it has to say on stderr itself, without logging
        if command == "password":
            return print_password(flags["target"], debug=debug)  # logs to the log file only: stderr is one line
        log_to_stderr(debug=debug)
        return command_named(command)(**typed_arguments(flags))
    except RotatorError as err:
        print(f"{PROG} {command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as err:  # pylint: disable=broad-exception-caught  # one line, never a traceback
        if command != "password":
            raise
        raise fail(command, f"{type(err).__name__}: {err}", 1) from None


def log_to_stderr(*, debug: bool) -> None:
    """Plain `LEVEL logger: message` records on stderr, ours at WARNING (DEBUG with `debug`)."""
    import logging

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger(PACKAGE_LOGGER).setLevel(logging.DEBUG if debug else logging.WARNING)
