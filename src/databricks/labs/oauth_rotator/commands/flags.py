"""The console scripts' shared command line: the original tool's target flags and environment variables, checked
into a `RotationRequest`, `password`'s flags, and `guarded` (from `quick`), which turns an error into one line on
stderr and an exit code.

Not a front door itself: `databricks-oauth-rotator` and `databricks-oauth-install` take the same flags.
argparse and our own plain modules only, so `--help` answers in a few tens of milliseconds.
"""

from __future__ import annotations

import argparse
import os
import sys

from databricks.labs.oauth_rotator.__about__ import __version__
from databricks.labs.oauth_rotator.app.request import RotationRequest
from databricks.labs.oauth_rotator.commands.quick import PASSWORD, PROG, guarded
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
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected minutes, got {text!r}") from None


def _port(text: str) -> int:
    # Digits only: int() would take " 5432 " and "+5432"; the range is checked with the config's checks.
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = ConsoleParser(
        prog=PROG,
        description="Keep ~/.pgpass supplied with fresh Databricks Lakebase OAuth credentials.",
        epilog="Environment: DATABRICKS_HOST, DATABRICKS_CONFIG_PROFILE, DATABRICKS_CLIENT_ID, "
        "DATABRICKS_CLIENT_SECRET (and every other SDK auth variable), DATABRICKS_PG_HOST, DATABRICKS_PG_USERNAME, "
        "PGPASSFILE. "
        f"`{PROG} {PASSWORD} [--target NAME]` prints the current credential of one configured target instead.",
    )
    add = parser.add_argument
    add("--once", action="store_true", help="rotate every target once and exit (default: run as a daemon)")
    add("--interval", type=_minutes, metavar="MINUTES", help="refresh at least this often (default 50)")
    add("--workspace-url", metavar="URL", help="the workspace URL (default: DATABRICKS_HOST or the profile's host)")
    add("--profile", metavar="NAME", help="~/.databrickscfg profile (default: DATABRICKS_CONFIG_PROFILE)")
    add("--pg-host", metavar="HOST", help="Lakebase host, resolved to its instance or endpoint (DATABRICKS_PG_HOST)")
    add("--pg-port", type=_port, metavar="PORT", help="port (default 5432)")
    add("--pg-database", metavar="NAME", help="database field of the .pgpass line (default '*', any database)")
    add("--pg-username", metavar="USER", help="Postgres role (default: the authenticated identity)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--instance", metavar="NAME", help="a Lakebase Provisioned instance name")
    target.add_argument("--endpoint", metavar="PATH", help="projects/<p>/branches/<b>/endpoints/<e> (Autoscaling)")
    add("--pgpass-file", metavar="PATH", help="password file (default: PGPASSFILE, else ~/.pgpass)")
    add("--log-file", metavar="PATH", help="log file (default ~/.databricks_oauth_rotator.log)")
    add("--config", metavar="PATH", help="config file (default ~/.databricks/labs/oauth-rotator/config/config.yml)")
    add("--exec-after", metavar="COMMAND", help="run COMMAND (no shell) after a rotation changed the password file")
    add("--verify", action="store_true", help="after rotating, log in once to prove the credential works")
    add("--http-address", metavar="ADDRESS", help="address of the HTTP endpoints (default 127.0.0.1)")
    add("--http-port", type=_port, metavar="PORT", help="serve /startup /liveness /readiness /metrics /quitquitquit")
    add("--debug", action="store_true", help="debug logging (never includes tokens)")
    add("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def build_password_parser() -> argparse.ArgumentParser:
    """`databricks-oauth-rotator password`: its help and its errors (`quick.password_flags` reads the usual forms)."""
    parser = ConsoleParser(
        prog=f"{PROG} {PASSWORD}",
        description="Print the current credential of one configured target, and nothing else, on stdout: the one "
        "in .pgpass while it has more than the margin left, else one minted now (and written to .pgpass). For "
        "clients that run a command for their password (pgAdmin, DBeaver, Postico, node-postgres).",
    )
    parser.add_argument("--target", metavar="NAME", help="the target, by its name in status (default: the first)")
    parser.add_argument("--config", metavar="PATH", help="config file (default: the saved one)")
    return parser


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


def parse_invocation(argv: Sequence[str], environ: Mapping[str, str]) -> RotationRequest:
    """Flags and the original tool's environment variables, checked without importing the SDK.

    The checks are the config's own (`config.check_settings`, `validate_target`, `check_file_path`), which the
    labs commands, the worker and the Python API run too; only the names in the messages are the flags'.
    """
    args = build_parser().parse_args(argv)
    from pathlib import Path

    from databricks.labs.oauth_rotator.config import check_settings, named_as, validate_target
    from databricks.labs.oauth_rotator.config_checks import check_file_path

    host = args.pg_host or environ.get("DATABRICKS_PG_HOST") or None
    has_target = bool(host or args.instance or args.endpoint)
    target_only = {"--pg-port": args.pg_port, "--pg-database": args.pg_database, "--pg-username": args.pg_username}
    if not has_target and any(v is not None for v in target_only.values()):
        flag = next(k for k, v in target_only.items() if v is not None)
        raise ConfigError(f"{flag} needs a target: --pg-host, --instance or --endpoint")
    overrides: dict[str, Any] = {
        "profile": args.profile,
        "workspace_url": args.workspace_url,
        "pgpass_file": args.pgpass_file,
        "log_file": args.log_file,
        "interval_minutes": args.interval,
        "exec_after": args.exec_after,
    }
    settings = {k: v for k, v in overrides.items() if v is not None}
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
    return RotationRequest(
        config_path,
        settings,
        once=args.once,
        verify=args.verify,
        debug=args.debug,
        http_address=args.http_address,
        http_port=args.http_port,
    )


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
