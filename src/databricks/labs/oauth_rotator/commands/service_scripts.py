"""The background service from the console (`databricks-oauth-install`, `-status`, `-restart`, `-uninstall`), and
the service operations the labs commands share with them.

Only `install` reads the config through blueprint; status, restart and uninstall stay import-light: this module
imports the service package, `files`, `pgpass` and `state` only in the functions that use them, so that
`databricks-oauth-status` loads no more than `status.py` does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from databricks.labs.oauth_rotator.app.status import collect_status, render_table, status_file
from databricks.labs.oauth_rotator.commands.rotator_script import HelpFormatter, guarded, parse_invocation
from databricks.labs.oauth_rotator.errors import ConfigError

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: `databricks-oauth-status` does without typing
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path
    from typing import NoReturn, TextIO

    from databricks.labs.oauth_rotator.config import RotatorConfig
    from databricks.labs.oauth_rotator.service import ServiceManager, ServiceSpec

    ManagerFactory = Callable[[], ServiceManager]

LINES_STAY = "oauth-rotator's .pgpass lines stay (their credentials expire within the hour)."
NO_PROFILE_NOTICE = (
    "The config names no profile, so the service logs in the way `databricks` does without one (the DEFAULT "
    "profile of ~/.databrickscfg): logins passed in environment variables are never copied into a service. "
    "Put them in a ~/.databrickscfg profile and run `databricks labs oauth-rotator configure` (or "
    "`databricks-oauth-install --profile NAME ...`) to pin it."
)


def service_spec(config: RotatorConfig, config_path: Path, environ: Mapping[str, str] | None = None) -> ServiceSpec:
    """What the service runs: this interpreter, the saved config and its profile name, never a secret."""
    from pathlib import Path

    from databricks.labs.oauth_rotator.service import ServiceSpec

    return ServiceSpec.create(
        Path(os.path.abspath(config_path)),
        profile=config.profile,
        source_environ=os.environ if environ is None else environ,
    )


def install_service(
    config: RotatorConfig, config_path: Path, *, manager: ServiceManager, environ: Mapping[str, str] | None = None
) -> str:
    """Install (or update in place) and start the service for a saved config; returns what was done."""
    message = manager.install(service_spec(config, config_path, environ))
    return message if config.profile else f"{message}\n{NO_PROFILE_NOTICE}"


def restart_service(manager: ServiceManager) -> str:
    from databricks.labs.oauth_rotator.service import ServiceError

    try:
        installed = manager.status().installed
    except ServiceError:
        if manager.definition_path.exists():
            raise
        installed = False  # the OS cannot be asked (no user manager), and there is no definition either
    if not installed:
        raise ServiceError("the background service is not installed", fix="run `databricks labs oauth-rotator install`")
    manager.restart()
    return "Restarted the background service."


def uninstall_service(
    manager: ServiceManager, *, purge: bool, environ: Mapping[str, str] | None = None, purge_flag: str = "--purge true"
) -> str:
    """Stop and remove the service; with `purge`, also take oauth-rotator's lines out of `.pgpass`."""
    messages = [manager.uninstall()]
    if purge:
        messages.append(purge_pgpass_lines(environ))
    else:
        messages.append(f"{LINES_STAY} `{purge_flag}` removes them.")
    return "\n".join(messages)


def purge_pgpass_lines(environ: Mapping[str, str] | None = None) -> str:
    """Remove the `.pgpass` lines `status.json` records as ours (every other byte stays), then the status file."""
    from pathlib import Path

    from databricks.labs.oauth_rotator import paths
    from databricks.labs.oauth_rotator.files import pgpass, writer
    from databricks.labs.oauth_rotator.rotation.state import StateStore

    store = StateStore(status_file(environ))
    status = store.load()
    keys = sorted({(k[0], k[1], k[2], k[3]) for t in status.targets.values() for k in t.keys if len(k) == 4})
    path = Path(status.pgpass_file) if status.pgpass_file else paths.default_pgpass_path(environ)
    removed = 0

    def transform(old: bytes) -> bytes:
        nonlocal removed
        removed = sum(1 for line in pgpass.parse(old) if line.entry is not None and line.entry.key in keys)
        return pgpass.merge(old, [], remove=keys)

    if keys and path.exists():
        writer.update_file(path, transform)
    store.path.unlink(missing_ok=True)
    if not keys:
        return "No .pgpass lines are recorded as oauth-rotator's; nothing to remove."
    return f"Removed {removed} line(s) of oauth-rotator's from {path}."


class _Parser(argparse.ArgumentParser):
    def __init__(self, *, prog: str, description: str) -> None:
        super().__init__(prog=prog, description=description, formatter_class=HelpFormatter)

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def install_command(
    argv: Sequence[str], *, environ: Mapping[str, str], manager_factory: ManagerFactory, out: TextIO
) -> int:
    """`databricks-oauth-install [target flags]`: write the config from the flags, install and start the service."""
    from dataclasses import replace

    from databricks.labs.oauth_rotator.files.config_store import effective_config, save_config
    from databricks.labs.oauth_rotator.paths import default_config_file

    invocation = parse_invocation(argv, environ)
    default = default_config_file(environ)
    base = invocation.config_path or (default if default.is_file() else None)
    config = replace(effective_config(base, invocation.overrides), service=True)
    path = save_config(config, invocation.config_path or default)
    print(f"Saved {path}", file=out)
    print(install_service(config, path, manager=manager_factory(), environ=environ), file=out)
    return 0


def status_command(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str],
    manager_factory: ManagerFactory | None = None,
    out: TextIO,
    err: TextIO,
) -> int:
    """`databricks-oauth-status [--json]`: the labs `status` rows, as a table or as JSON.

    Without a `manager_factory`, the service state is found as `status.service_state` finds it (on Linux without
    importing the service package).
    """
    parser = _Parser(prog="databricks-oauth-status", description="Show what oauth-rotator rotated and when.")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON list")
    args = parser.parse_args(argv)
    rows = collect_status(environ=environ, manager_factory=manager_factory, err=err)
    print(json.dumps(rows, indent=2) if args.json else render_table(rows), file=out)
    return 0


def restart_command(argv: Sequence[str], *, manager_factory: ManagerFactory, out: TextIO) -> int:
    _Parser(prog="databricks-oauth-restart", description="Restart the background service.").parse_args(argv)
    print(restart_service(manager_factory()), file=out)
    return 0


def uninstall_command(
    argv: Sequence[str], *, environ: Mapping[str, str], manager_factory: ManagerFactory, out: TextIO
) -> int:
    parser = _Parser(prog="databricks-oauth-uninstall", description="Stop and remove the background service.")
    parser.add_argument("--purge", action="store_true", help="also remove oauth-rotator's lines from .pgpass")
    args = parser.parse_args(argv)
    print(uninstall_service(manager_factory(), purge=args.purge, environ=environ, purge_flag="--purge"), file=out)
    return 0


def _argv(argv: Sequence[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)


def install_main(argv: Sequence[str] | None = None) -> NoReturn:
    """`databricks-oauth-install`."""
    from databricks.labs.oauth_rotator.service import for_platform

    sys.exit(
        guarded(lambda: install_command(_argv(argv), environ=os.environ, manager_factory=for_platform, out=sys.stdout))
    )


def status_main(argv: Sequence[str] | None = None) -> NoReturn:
    """`databricks-oauth-status`."""
    sys.exit(guarded(lambda: status_command(_argv(argv), environ=os.environ, out=sys.stdout, err=sys.stderr)))


def restart_main(argv: Sequence[str] | None = None) -> NoReturn:
    """`databricks-oauth-restart`."""
    from databricks.labs.oauth_rotator.service import for_platform

    sys.exit(guarded(lambda: restart_command(_argv(argv), manager_factory=for_platform, out=sys.stdout)))


def uninstall_main(argv: Sequence[str] | None = None) -> NoReturn:
    """`databricks-oauth-uninstall`."""
    from databricks.labs.oauth_rotator.service import for_platform

    sys.exit(
        guarded(
            lambda: uninstall_command(_argv(argv), environ=os.environ, manager_factory=for_platform, out=sys.stdout)
        )
    )
