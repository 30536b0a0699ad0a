"""The handlers of the labs and sandbox commands (`commands.record` names them): each takes the command's typed
flags, calls one application function and renders its result; it returns the exit code, and its errors leave
through the one way out (`commands.way_out`, by `commands.labs_runner`). Not an entry point itself.

No `from __future__ import annotations` here: blueprint converts a flag by its parameter's annotation object
(`bool`, `int`), and postponed annotations would be strings. Other annotations are quoted instead, and this
module imports only `sys` when it loads: `status` must not pay for `typing`, `logging`, `dataclasses`, `pathlib`
or pkgutil (the handlers import what they use). The light handlers (status, logs, password: the record's commands
that need no workspace) take `debug` from the entry point, which knows it without importing `logging`.
"""

import sys

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`, which would import typing
if TYPE_CHECKING:
    from pathlib import Path

    from databricks.labs.oauth_rotator.config import RotatorConfig


def configure() -> int:
    """`configure`: the installer's questions, then the config saved."""
    from databricks.labs.blueprint.tui import Prompts

    from databricks.labs.oauth_rotator.app.configure import configure as run_installer
    from databricks.labs.oauth_rotator.paths import default_config_file

    run_installer(Prompts(), config_path=default_config_file())
    return 0


def rotate(verify: bool = False) -> int:
    """`rotate`: one cycle of the saved config now; a line per target rotated."""
    from databricks.labs.oauth_rotator.app.request import RotationRequest
    from databricks.labs.oauth_rotator.app.rotate import rotate_now

    path, _ = _saved_config(pin=True)
    outcome = rotate_now(RotationRequest(path, once=True, verify=verify, debug=is_debug()))
    for label in outcome.report.rotated:
        print(f"rotated {label}")
    return outcome.exit_code


def run() -> int:
    """`run`: the scheduler of the saved config, in the foreground."""
    from databricks.labs.oauth_rotator.app.request import RotationRequest
    from databricks.labs.oauth_rotator.app.scheduler import run_scheduler

    path, _ = _saved_config(pin=True)  # the workers inherit the pinned environment
    return run_scheduler(RotationRequest(path, debug=is_debug()))


def install() -> int:
    """`install`: the background service for the saved config, installed and started."""
    from databricks.labs.oauth_rotator.app.service import install_service
    from databricks.labs.oauth_rotator.service import for_platform

    path, config = _saved_config(pin=False)
    print(install_service(config, path, manager=for_platform()))
    return 0


def uninstall(purge: bool = False) -> int:
    """`uninstall`: the background service stopped and removed (and our .pgpass lines with `purge`)."""
    from databricks.labs.oauth_rotator.app.service import uninstall_service
    from databricks.labs.oauth_rotator.service import for_platform

    print(uninstall_service(for_platform(), purge=purge))
    return 0


def restart() -> int:
    """`restart`: the background service restarted."""
    from databricks.labs.oauth_rotator.app.service import restart_service
    from databricks.labs.oauth_rotator.service import for_platform

    print(restart_service(for_platform()))
    return 0


def status(debug: bool = False) -> int:
    """`status`: one JSON value on stdout and nothing else (the CLI parses it for the table)."""
    from databricks.labs.oauth_rotator.app.status import collect_status
    from databricks.labs.oauth_rotator.files.plainjson import dumps

    print(dumps(collect_status(debug=debug)))
    return 0


def logs(lines: int = 50, debug: bool = False) -> int:
    """`logs`: the last `lines` lines of the log file on stdout."""
    from databricks.labs.oauth_rotator.commands.labs_runner import log_to_stderr

    log_to_stderr(debug=debug)
    from databricks.labs.oauth_rotator.app.status import configured_log_file, print_log_tail
    from databricks.labs.oauth_rotator.paths import default_config_file

    return print_log_tail(configured_log_file(default_config_file()), lines, out=sys.stdout, err=sys.stderr)


def doctor() -> int:
    """`doctor`: each check's finding and its fix on stdout."""
    from databricks.labs.oauth_rotator.app.doctor import check_installation, print_findings

    return print_findings(check_installation(), sys.stdout)


def psql(target: str = "", database: str = "", command: str = "") -> int:
    """`psql`: psql on a configured database, its credential in psql's environment."""
    from databricks.labs.oauth_rotator.app.connect import open_psql

    _, config = _saved_config(pin=True)
    return open_psql(config, name=target or None, database=database or None, sql=command or None)


def env(target: str = "", database: str = "", with_password: bool = False) -> int:
    """`env`: export lines for `eval` in a POSIX shell."""
    from databricks.labs.oauth_rotator.app.connect import env_lines

    _, config = _saved_config(pin=True)
    lines = env_lines(config, name=target or None, database=database or None, with_password=with_password)
    # Only now, all at once: a failure half-way leaves stdout empty, and `eval` runs nothing.
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


def password(target: str = "", debug: bool = False) -> int:
    """`password`: the credential and a newline on stdout, in one write (a failure leaves stdout empty)."""
    import os

    from databricks.labs.oauth_rotator.app.password import current_credential
    from databricks.labs.oauth_rotator.app.password_pick import wanted_from
    from databricks.labs.oauth_rotator.paths import config_file_name

    wanted = wanted_from({"target": target}, os.environ)  # pgAdmin's variables, when it runs this
    # The saved config's profile decides the login, as for the service (labs.yml asks the CLI for none).
    _, credential = current_credential(
        config_file_name(os.environ), target or None, wanted=wanted, pin=True, debug=debug
    )
    sys.stdout.write(f"{credential.password}\n")
    return 0


def wait(target: str = "", timeout: int = 30, debug: bool = False) -> int:
    """`wait`: exit 0 once every target (or `target`) of the saved config has a credential on file beyond the
    margin, else 1 at the timeout with one line naming the others. Files only: no SDK, no workspace."""
    del debug  # nothing is logged: the one line on failure is the way out's
    import os

    from databricks.labs.oauth_rotator.app.wait import wait_until_ready
    from databricks.labs.oauth_rotator.paths import config_file_name

    wait_until_ready(config_file_name(os.environ), target or None, timeout=float(timeout))
    return 0


def shutdown(timeout: int = 30, debug: bool = False) -> int:
    """`shutdown`: the scheduler of the saved config stopped and gone (exit 0, also when none ran), else exit 1."""
    del debug
    from databricks.labs.oauth_rotator.app.shutdown import shutdown_message, shutdown_scheduler

    print(shutdown_message(shutdown_scheduler(None, timeout=float(timeout))), file=sys.stderr)
    return 0


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
    """Whether the CLI asked for debug output (see `labs_runner.is_debug`)."""
    from databricks.labs.oauth_rotator.commands.labs_runner import is_debug as debug_asked

    return debug_asked()
