"""The console scripts' shared command line: parsers built from the command record (`commands.record`), the
original tool's target flags and environment variables checked into a `RotationRequest`, `password`'s flags, and
`guarded` (from `quick`), which ends a script through the one way out (`way_out`).

Not an entry point itself: `databricks-oauth-rotator` and `databricks-oauth-install` take the same flags.
argparse and our own plain modules only, so `--help` answers in a few tens of milliseconds."""

from __future__ import annotations

import argparse
import os
import sys

from databricks.labs.oauth_rotator.__about__ import __version__
from databricks.labs.oauth_rotator.app.request import RotationRequest
from databricks.labs.oauth_rotator.commands.quick import PASSWORD, PROG, guarded
from databricks.labs.oauth_rotator.commands.record import (
    BOOLEAN,
    CONSOLE,
    INTEGER,
    MINUTES,
    PORT,
    Command,
    console_command,
    console_words,
)
from databricks.labs.oauth_rotator.errors import ConfigError

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: `--help` and `status` do without typing
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from typing import Any, NoReturn

__all__ = [
    "PROG",
    "ConsoleParser",
    "build_parser",
    "build_password_parser",
    "console_parser",
    "guarded",
    "parse_invocation",
    "parse_password_flags",
]


class ConsoleParser(argparse.ArgumentParser):
    """argparse, but bad usage is one line on stderr (no usage block) and exit code 2, and help without `shutil`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help formatter, as wide as the terminal, found without `shutil` (and with it zlib, bz2, lzma).

    argparse makes a formatter for every `add_argument`, not only for `--help`: with the stock one, every
    command line we parse (the daemon's, `databricks-oauth-status`'s) would import shutil.
    """

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
    ) -> None:
        # argparse takes `shutil.get_terminal_size().columns - 2`; this is the same number.
        width = terminal_columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


def terminal_columns(environ: Mapping[str, str] | None = None) -> int:
    """`shutil.get_terminal_size().columns`: COLUMNS, else the width of the terminal on stdout, else 80."""
    environ = os.environ if environ is None else environ
    try:
        columns = int(environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
            columns = 80
    return columns


def _minutes(text: str) -> float:
    """`--interval`'s value: minutes, fractions allowed."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected minutes, got {text!r}") from None


def _port(text: str) -> int:
    """A port's value."""
    # Digits only: int() would take " 5432 " and "+5432"; the range is checked with the config's checks.
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {text!r}")
    return int(text)


CONVERTERS = {MINUTES: _minutes, PORT: _port, INTEGER: int}
"""argparse's `type` for each kind of flag in the command record (strings stay strings)."""


def add_flags(parser: argparse.ArgumentParser, command: Command) -> argparse.ArgumentParser:
    """Every console flag of `command` (the command record's), as argparse arguments of its kind."""
    groups: dict[str, Any] = {}
    for flag in command.flags_for(CONSOLE):
        where: Any = parser
        if flag.group is not None:
            if flag.group not in groups:
                groups[flag.group] = parser.add_mutually_exclusive_group()
            where = groups[flag.group]
        if flag.kind == BOOLEAN:
            where.add_argument(f"--{flag.name}", action="store_true", help=flag.help)
        else:
            where.add_argument(f"--{flag.name}", type=CONVERTERS.get(flag.kind), metavar=flag.metavar, help=flag.help)
    if command.tail is not None:
        parser.add_argument("tail", nargs=argparse.REMAINDER, metavar=command.tail, help=f"after --: {command.tail}")
    return parser


def console_parser(script: str, word: str = "", **kwargs: Any) -> argparse.ArgumentParser:
    """The parser of a console script's command (`word` for a sub-command), from the command record."""
    command = console_command(script, word)
    kwargs.setdefault("description", command.help)
    parser = ConsoleParser(prog=f"{script} {word}".strip(), **kwargs)
    return add_flags(parser, command)


def build_parser() -> argparse.ArgumentParser:
    """`databricks-oauth-rotator`: rotate now (`--once`) or run the scheduler."""
    words = " | ".join(console_words(PROG))
    parser = console_parser(
        PROG,
        description="Keep ~/.pgpass supplied with fresh Databricks Lakebase OAuth credentials.",
        epilog="Environment: DATABRICKS_HOST, DATABRICKS_CONFIG_PROFILE, DATABRICKS_CLIENT_ID, "
        "DATABRICKS_CLIENT_SECRET (and every other SDK auth variable), DATABRICKS_PG_HOST, DATABRICKS_PG_USERNAME, "
        f"PGPASSFILE. Commands ({words}): `{PROG} {PASSWORD} [--target NAME]` prints the current credential of one "
        f"configured target instead; `{PROG} COMMAND --help` says more.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def build_password_parser() -> argparse.ArgumentParser:
    """`databricks-oauth-rotator password`: its help and its errors (`quick.password_flags` reads the usual forms)."""
    return console_parser(PROG, PASSWORD)


def parse_password_flags(argv: Sequence[str]) -> dict[str, str | None]:
    """`password`'s flags as `quick.password_flags` returns them; `--help` prints and exits, a mistake is a
    `ConfigError` (one line, exit 2)."""
    return dict(vars(build_password_parser().parse_args(argv)))


FLAG_NAMES = {
    "profile": "--profile",
    "workspace_url": "--workspace-url",
    "pgpass_file": "--pgpass-file",
    "log_file": "--log-file",
    "interval_minutes": "--interval",
    "exec_after": "--exec-after",
    "target.instance": "--instance",
    "target.endpoint": "--endpoint",
    "target.port": "--pg-port",
    "target.database": "--pg-database",
}
"""The flag for each setting it overrides, so that an error names what the user typed."""


def parse_invocation(
    argv: Sequence[str], environ: Mapping[str, str], parser: argparse.ArgumentParser | None = None
) -> RotationRequest:
    """Flags and the original tool's environment variables, checked without importing the SDK.

    The checks are the config's own (`config.check_settings`, `validate_target`, `check_file_path`), which the
    labs commands, the worker and the Python API run too; only the names in the messages are the flags'.
    """
    args = (parser or build_parser()).parse_args(argv)
    from pathlib import Path

    from databricks.labs.oauth_rotator.config import check_settings, named_as, validate_target
    from databricks.labs.oauth_rotator.config_checks import check_file_path

    host = args.pg_host or environ.get("DATABRICKS_PG_HOST") or None
    has_target = bool(host or args.instance or args.endpoint)
    target_only = {"--pg-port": args.pg_port, "--pg-database": args.pg_database, "--pg-username": args.pg_username}
    if not has_target and any(v is not None for v in target_only.values()):
        flag = next(k for k, v in target_only.items() if v is not None)
        raise ConfigError(f"{flag} needs a target: --pg-host, --instance or --endpoint")
    settings = _given_settings(args)
    if has_target:
        target = {
            "instance": args.instance,
            "endpoint": args.endpoint,
            "host": host,
            "port": args.pg_port,
            "database": args.pg_database,
            "user": args.pg_username or environ.get("DATABRICKS_PG_USERNAME") or None,
        }
        names = {
            **FLAG_NAMES,
            "target.host": "--pg-host" if args.pg_host else "DATABRICKS_PG_HOST",
            "target.user": "--pg-username" if args.pg_username else "DATABRICKS_PG_USERNAME",
        }
        settings["target"] = {k: v for k, v in target.items() if v is not None}
        validate_target(settings["target"], "target", names)
    check_settings({k: v for k, v in settings.items() if k != "target"}, FLAG_NAMES)
    for key in ("pgpass_file", "log_file"):
        if key in settings:
            with named_as(FLAG_NAMES):
                check_file_path(Path(os.path.expanduser(settings[key])), key)
    config_path = _config_path(args.config, has_target, environ)
    if args.http_port is not None:
        from databricks.labs.oauth_rotator.config import check_port

        with named_as({"http.port": "--http-port"}):
            check_port(args.http_port, "http.port")
    if args.admin_port is not None:
        from databricks.labs.oauth_rotator.config import check_port

        with named_as({"http.admin_port": "--admin-port"}):
            check_port(args.admin_port, "http.admin_port")
    return RotationRequest(
        config_path,
        settings,
        once=args.once,
        verify=args.verify,
        debug=args.debug,
        http_address=args.http_address,
        http_port=args.http_port,
        admin_port=args.admin_port,
        quitquitquit=args.quitquitquit,
    )


def _given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the flags override (the ones given)."""
    overrides: dict[str, Any] = {
        "profile": args.profile,
        "workspace_url": args.workspace_url,
        "pgpass_file": args.pgpass_file,
        "log_file": args.log_file,
        "interval_minutes": args.interval,
        "exec_after": args.exec_after,
    }
    return {k: v for k, v in overrides.items() if v is not None}


def _config_path(explicit: str | None, has_target: bool, environ: Mapping[str, str]) -> Path | None:
    from pathlib import Path

    from databricks.labs.oauth_rotator.paths import default_config_file

    if explicit:
        path = Path(os.path.expanduser(explicit))
        if not path.is_file():
            raise ConfigError(f"--config: no such file: {path}")
        return path
    default = default_config_file(environ)
    if not has_target and default.is_file():
        return default
    if not has_target:
        raise ConfigError(
            "no target: give --pg-host, --instance or --endpoint (or DATABRICKS_PG_HOST), "
            "or run `databricks labs oauth-rotator configure`"
        )
    return None
