"""The service's console scripts: `databricks-oauth-install`, `-status`, `-restart` and `-uninstall`.

Each parses its arguments and calls `app.service` or `app.status`. Only `install` reads the config through
blueprint; status, restart and uninstall stay import-light, so that `databricks-oauth-status` loads no more than
`app/status.py` does.
"""

from __future__ import annotations

import os
import sys

from databricks.labs.oauth_rotator.app.status import collect_status, render_table
from databricks.labs.oauth_rotator.commands.quick import guarded

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: `databricks-oauth-status` does without typing
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import NoReturn, TextIO

    from databricks.labs.oauth_rotator.service import ServiceManager

    ManagerFactory = Callable[[], ServiceManager]


INSTALL = "databricks-oauth-install"
STATUS = "databricks-oauth-status"
RESTART = "databricks-oauth-restart"
UNINSTALL = "databricks-oauth-uninstall"
"""The scripts' names, as pyproject.toml and the command record (`commands.record`) spell them."""


def install_command(
    argv: Sequence[str], *, environ: Mapping[str, str], manager_factory: ManagerFactory, out: TextIO
) -> int:
    """`databricks-oauth-install [target flags]`: write the config from the flags, install and start the service."""
    from databricks.labs.oauth_rotator.app.service import save_and_install
    from databricks.labs.oauth_rotator.commands.flags import console_parser, parse_invocation

    parser = console_parser(INSTALL, description="Save the config from the flags, install and start the service.")
    path, message = save_and_install(
        parse_invocation(argv, environ, parser), environ=environ, manager=manager_factory()
    )
    print(f"Saved {path}", file=out)
    print(message, file=out)
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
    importing the service package). The two usual command lines are read without argparse (as fast as Python
    starts); any other goes to the parser, for `--help` or the error.
    """
    as_json = list(argv) == ["--json"]
    if argv and not as_json:
        from databricks.labs.oauth_rotator.commands.flags import console_parser

        as_json = console_parser(STATUS).parse_args(argv).json
    rows = collect_status(environ=environ, manager_factory=manager_factory, err=err)
    if as_json:
        from databricks.labs.oauth_rotator.files.plainjson import dumps

        print(dumps(rows, indent=2), file=out)
    else:
        print(render_table(rows), file=out)
    return 0


def restart_command(argv: Sequence[str], *, manager_factory: ManagerFactory, out: TextIO) -> int:
    """`databricks-oauth-restart`: restart the background service."""
    from databricks.labs.oauth_rotator.commands.flags import console_parser

    console_parser(RESTART).parse_args(argv)
    from databricks.labs.oauth_rotator.app.service import restart_service

    print(restart_service(manager_factory()), file=out)
    return 0


def uninstall_command(
    argv: Sequence[str], *, environ: Mapping[str, str], manager_factory: ManagerFactory, out: TextIO
) -> int:
    """`databricks-oauth-uninstall [--purge]`: stop and remove the background service."""
    from databricks.labs.oauth_rotator.commands.flags import console_parser

    args = console_parser(UNINSTALL).parse_args(argv)
    from databricks.labs.oauth_rotator.app.service import uninstall_service

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
