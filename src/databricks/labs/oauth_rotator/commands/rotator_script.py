"""`databricks-oauth-rotator`, compatible with the original tool: `--once` rotates now, else the scheduler runs;
`databricks-oauth-rotator password [--target NAME]` prints the current credential of one configured target.

Exit codes: 0 success, 1 rotation failed, 2 bad usage or configuration (one line on stderr, nothing written,
no credential requested). Messages go to stderr; stdout is for results. The daemon path stays import-light:
each cycle runs in a child process, so the SDK is never loaded into the long-lived process. `--version` and
`password` (while the credential on file is fresh) answer before argparse is imported: see `quick`.
"""

from __future__ import annotations

import os
import sys

from databricks.labs.oauth_rotator.commands.quick import PASSWORD, PROG, guarded, password_flags

WAIT = "wait"
SHUTDOWN = "shutdown"

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: `--help` does without typing
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import NoReturn

    from databricks.labs.oauth_rotator.commands.endpoints import HealthServer
    from databricks.labs.oauth_rotator.rotation.health import EndpointsPlan, Health


def rotator_main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None) -> NoReturn:
    """`databricks-oauth-rotator`."""
    environ = os.environ if environ is None else environ
    sys.exit(guarded(lambda: _rotator(list(sys.argv[1:] if argv is None else argv), environ)))


def _rotator(argv: list[str], environ: Mapping[str, str]) -> int:
    if argv == ["--version"]:  # what argparse's version action prints, without argparse
        from databricks.labs.oauth_rotator.__about__ import __version__

        print(f"{PROG} {__version__}")
        return 0
    if argv[:1] == [PASSWORD]:  # a first word, never a flag's value: every flag of the rotator starts with --
        return _password(argv[1:], environ)
    if argv[:1] in ([WAIT], [SHUTDOWN]):
        return _lifecycle(argv[0], argv[1:])
    if argv and not argv[0].startswith("-"):
        return _sub_command(argv[0], argv[1:])
    from databricks.labs.oauth_rotator.commands.flags import parse_invocation

    request = parse_invocation(argv, environ)
    if not request.once:
        from databricks.labs.oauth_rotator.app.scheduler import run_scheduler

        return run_scheduler(request, serve_http=_serve_http)
    from databricks.labs.oauth_rotator.app.rotate import rotate_now

    outcome = rotate_now(request)
    for label in outcome.report.rotated:
        print(f"rotated {label}")
    return outcome.exit_code


def _serve_http(plan: EndpointsPlan, health: Health) -> HealthServer:
    """The sidecar's endpoints, imported only when a port is asked for (http.server, prometheus_client)."""
    from databricks.labs.oauth_rotator.commands.endpoints import start_http

    return start_http(plan, health)


def _sub_command(word: str, argv: list[str]) -> int:
    """`databricks-oauth-rotator WORD [flags] [-- COMMAND ARG...]`: a sub-command of the command record, its flags
    parsed from the record, its handler called with them (and the tail after `--` as `tail`, when it takes one)."""
    from databricks.labs.oauth_rotator.commands.record import console_command, console_words, handler_of
    from databricks.labs.oauth_rotator.errors import ConfigError

    if word not in console_words(PROG):
        raise ConfigError(f"unknown command {word!r} (commands: {', '.join(console_words(PROG))}; or flags: --help)")
    from databricks.labs.oauth_rotator.commands.flags import console_parser

    arguments = dict(vars(console_parser(PROG, word).parse_args(argv)))
    if arguments.get("tail", [])[:1] == ["--"]:
        arguments["tail"] = arguments["tail"][1:]
    return int(handler_of(console_command(PROG, word))(**arguments))  # type: ignore[operator]


def _lifecycle(word: str, argv: list[str]) -> int:
    """`wait` and `shutdown [--timeout SECONDS] [--config PATH]` (`wait` also `--target NAME`): the usual forms read
    without argparse, as `password`'s are, so that `wait` answers as fast as `status`."""
    flags = password_flags(argv, word)
    if flags is None or not (flags["timeout"] or "0").isdigit():  # argparse prints help or says what is wrong
        from databricks.labs.oauth_rotator.commands.flags import console_parser

        parsed = vars(console_parser(PROG, word).parse_args(argv))
        flags = {k: None if v is None else str(v) for k, v in parsed.items()}
    timeout = float(flags["timeout"]) if flags["timeout"] else None
    config = os.path.expanduser(flags["config"]) if flags["config"] else None
    if word == WAIT:
        from databricks.labs.oauth_rotator.app.wait import DEFAULT_TIMEOUT_SECONDS, wait_until_ready
        from databricks.labs.oauth_rotator.paths import config_file_name

        wait_until_ready(
            config or config_file_name(os.environ),
            flags["target"] or None,
            timeout=DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout,
        )
        return 0
    from databricks.labs.oauth_rotator.app.shutdown import DEFAULT_TIMEOUT_SECONDS as STOP_SECONDS
    from databricks.labs.oauth_rotator.app.shutdown import shutdown_message, shutdown_scheduler

    stopped = shutdown_scheduler(config, timeout=STOP_SECONDS if timeout is None else timeout)
    print(shutdown_message(stopped), file=sys.stderr)
    return 0


def exec_command(
    target: str | None = None,
    config: str | None = None,
    env_password: bool = False,
    tail: list[str] | None = None,
    debug: bool = False,
) -> int:
    """`exec [--config PATH] [--target NAME] [--env-password] -- COMMAND [ARG...]`: the program's exit code."""
    from databricks.labs.oauth_rotator.app.exec_program import exec_program
    from databricks.labs.oauth_rotator.paths import config_file_name

    path = os.path.expanduser(config) if config else config_file_name(os.environ)
    return exec_program(path, tail or [], name=target or None, env_password=env_password, debug=debug)


def _password(argv: list[str], environ: Mapping[str, str]) -> int:
    """`password [--target NAME | --host H [--port P] [--user U] [--database D]] [--config PATH]`: the credential
    and a newline on stdout, in one write. With neither `--target` nor `--host`, pgAdmin's `PGADMIN_PASSEXEC_*`
    variables pick the target when set."""
    flags = password_flags(argv)
    if flags is None:
        from databricks.labs.oauth_rotator.commands.flags import parse_password_flags

        flags = parse_password_flags(argv)
    from databricks.labs.oauth_rotator.app.password import current_credential
    from databricks.labs.oauth_rotator.app.password_pick import wanted_from
    from databricks.labs.oauth_rotator.paths import config_file_name

    wanted = wanted_from(flags, environ)
    config = os.path.expanduser(flags["config"]) if flags["config"] else config_file_name(environ)
    _, credential = current_credential(config, flags["target"] or None, wanted=wanted, environ=environ)
    sys.stdout.write(f"{credential.password}\n")
    return 0
