"""Console scripts compatible with the original tool: `databricks-oauth-rotator` and friends.

Exit codes: 0 success, 1 rotation failed, 2 bad usage or configuration (one line on stderr, nothing written,
no credential requested). Messages go to stderr; stdout is for results. The daemon path stays import-light:
each cycle runs in a child process, so the SDK is never loaded into the long-lived process.
"""

from __future__ import annotations

import argparse
import os
import sys

from databricks.labs.oauth_rotator.__about__ import __version__
from databricks.labs.oauth_rotator.errors import ConfigError, RotatorError

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: `--help` and `status` do without typing
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from typing import Any, NoReturn, TextIO

# pathlib, logging, dataclasses and the config validators are imported where they are used: `--help` and
# a usage error should answer in a few tens of milliseconds.
ENV_FILE_VARIABLE = "DATABRICKS_OAUTH_ROTATOR_ENV_FILE"
PROG = "databricks-oauth-rotator"


class _Parser(argparse.ArgumentParser):
    """argparse, but bad usage is one line on stderr (no usage block) and exit code 2."""

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
    parser = _Parser(
        prog=PROG,
        formatter_class=HelpFormatter,
        description="Keep ~/.pgpass supplied with fresh Databricks Lakebase OAuth credentials.",
        epilog="Environment: DATABRICKS_HOST, DATABRICKS_CONFIG_PROFILE, DATABRICKS_CLIENT_ID, "
        "DATABRICKS_CLIENT_SECRET (and every other SDK auth variable), DATABRICKS_PG_HOST, DATABRICKS_PG_USERNAME, "
        "PGPASSFILE.",
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
    add("--debug", action="store_true", help="debug logging (never includes tokens)")
    add("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


class Invocation:
    """What the user asked for, checked: a config file to read (or none) and overrides from flags.

    A plain class, not a dataclass: `--help` should not pay for importing `dataclasses` (and `inspect`).
    """

    def __init__(
        self,
        config_path: Path | None,
        overrides: dict[str, Any] | None = None,
        once: bool = False,
        verify: bool = False,
        debug: bool = False,
    ) -> None:
        self.config_path = config_path
        self.overrides = overrides or {}
        self.once = once
        self.verify = verify
        self.debug = debug

    def request(self) -> dict[str, Any]:
        """The worker's request: paths and names only, never a secret (those stay in the environment)."""
        return {
            "config": str(self.config_path) if self.config_path else None,
            "overrides": self.overrides,
            "debug": self.debug,
            "verify": self.verify,
        }


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


def parse_invocation(argv: Sequence[str], environ: Mapping[str, str]) -> Invocation:
    """Flags and the original tool's environment variables, checked without importing the SDK.

    The checks are the config's own (`config.check_settings`, `validate_target`, `check_file_path`), which the
    labs commands, the worker and the Python API run too; only the names in the messages are the flags'.
    """
    args = build_parser().parse_args(argv)
    from pathlib import Path

    from databricks.labs.oauth_rotator.config import check_file_path, check_settings, named_as, validate_target

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
    return Invocation(config_path, settings, args.once, args.verify, args.debug)


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


def rotate_once(invocation: Invocation, *, out: TextIO) -> int:
    """`--once`: one forced cycle in this process, under a deadline."""
    from logging import DEBUG, INFO

    from databricks.labs.oauth_rotator.app.rotate import build_cycle
    from databricks.labs.oauth_rotator.config import check_paths, log_path_for, pgpass_path_for
    from databricks.labs.oauth_rotator.deadlines import ONCE_DEADLINE_SECONDS, run_with_deadline
    from databricks.labs.oauth_rotator.files.config_store import effective_config
    from databricks.labs.oauth_rotator.files.logs import setup_logging

    config = effective_config(invocation.config_path, invocation.overrides)
    check_paths(config)
    setup_logging(log_path_for(config), level=DEBUG if invocation.debug else INFO)
    cycle = build_cycle(config)
    report = run_with_deadline(lambda: cycle.run(force=True), ONCE_DEADLINE_SECONDS)
    for label in report.rotated:
        print(f"rotated {label}", file=out)
    exit_code = report.exit_code
    if invocation.verify and report.keys:
        from databricks.labs.oauth_rotator.rotation.verify import verify_all

        exit_code = max(exit_code, verify_all(report.keys, pgpass_path_for(config)))
    return exit_code


def run_scheduler(invocation: Invocation) -> int:
    """The daemon: an import-light loop that runs each cycle in a child process."""
    from logging import DEBUG, INFO

    from databricks.labs.oauth_rotator.files.logs import setup_logging
    from databricks.labs.oauth_rotator.paths import state_dir
    from databricks.labs.oauth_rotator.rotation.daemon import Daemon, SubprocessCycleRunner, install_stop_handlers
    from databricks.labs.oauth_rotator.rotation.schedule import SystemClock
    from databricks.labs.oauth_rotator.rotation.state import StateStore

    setup_logging(None, level=DEBUG if invocation.debug else INFO)
    env_file = os.environ.get(ENV_FILE_VARIABLE)
    if env_file:
        # launchd cannot read an EnvironmentFile itself; the worker children inherit what we load here.
        from pathlib import Path

        os.environ.update(read_environment_file(Path(env_file)))
    daemon = Daemon(
        SubprocessCycleRunner(invocation.request()),
        clock=SystemClock(),
        state=StateStore(state_dir() / "status.json"),
        watch=invocation.config_path,
    )
    install_stop_handlers(daemon.stop)
    return daemon.run()


def read_environment_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines (systemd EnvironmentFile style) from a file only its owner can read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{ENV_FILE_VARIABLE}: cannot read {path}: {err.strerror}") from err
    if mode & 0o077:
        raise ConfigError(f"{ENV_FILE_VARIABLE}: {path} is readable by others", fix=f"chmod 600 {path}")
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{ENV_FILE_VARIABLE}: {path}:{number}: expected KEY=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def rotator_main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None) -> NoReturn:
    """`databricks-oauth-rotator`."""
    environ = os.environ if environ is None else environ
    sys.exit(guarded(lambda: _rotator(list(sys.argv[1:] if argv is None else argv), environ)))


def _rotator(argv: list[str], environ: Mapping[str, str]) -> int:
    invocation = parse_invocation(argv, environ)
    if invocation.once:
        return rotate_once(invocation, out=sys.stdout)
    return run_scheduler(invocation)


def guarded(command: Any, *, err: TextIO | None = None) -> int:
    """Run a command; a `RotatorError` becomes one line on stderr and its exit code, never a traceback."""
    err = err if err is not None else sys.stderr
    try:
        return int(command())
    except RotatorError as error:
        print(f"{PROG}: error: {error}", file=err)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
