"""The `databricks labs oauth-rotator` entrypoint: `python cli.py '<JSON payload>'`, as the Databricks CLI runs it.

The payload is checked here first against the command record (`commands.record`: the commands labs offers and
their flags). Commands that need no workspace (`status`, `logs`, `password`) are answered without blueprint;
every other command goes through blueprint's `App`, which imports the Databricks SDK (about two seconds). Every
way out goes through `commands.way_out`: one escaped, redacted line on stderr and the exit code (`App` alone would
log the exception and exit 0, and the CLI would report success).

This module imports only `os` and `sys` when it loads: `status` must not pay for `typing`, `logging`,
`dataclasses`, `pathlib` or pkgutil. Run by path, it must set up `sys.path` and the namespace packages before it
imports anything of the package (`databricks/__init__.py` would import pkgutil).
"""

import os
import sys

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`, which would import typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

    from databricks.labs.blueprint.cli import App


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
        from databricks.labs.oauth_rotator.files.plainjson import dumps

        return dumps({"command": self.command, "flags": {**self.flags, "log_level": self.log_level}})

    @property
    def debug(self) -> bool:
        return self.log_level in {"debug", "trace"}


def parse_payload(args: "Sequence[str]") -> Payload:
    """Check `{"command": ..., "flags": {...strings...}, "output_type": ""}` and the command's flag values."""
    from databricks.labs.oauth_rotator.commands.labs_runner import PayloadError, check_flags, offered
    from databricks.labs.oauth_rotator.commands.record import LABS

    if len(args) != 1:
        raise PayloadError(
            "expected one argument, the JSON payload from the Databricks CLI; run `databricks labs oauth-rotator`"
        )
    from databricks.labs.oauth_rotator.files.plainjson import loads

    try:
        raw = loads(args[0])
    except ValueError as err:
        raise PayloadError(f"the payload is not JSON: {err}") from None
    if not isinstance(raw, dict):
        raise PayloadError(f"the payload must be a JSON object, got {type(raw).__name__}")
    name = raw.get("command")
    if not isinstance(name, str) or not name:
        raise PayloadError('the payload has no "command"')
    command = offered(name, LABS)
    flags = raw.get("flags", {})
    if not isinstance(flags, dict) or not all(isinstance(v, str) for v in flags.values()):
        raise PayloadError('"flags" must be a JSON object of strings')
    flags = dict(flags)
    log_level = flags.pop("log_level", "warn").strip().lower() or "warn"
    from databricks.labs.oauth_rotator.commands.labs_runner import LOG_LEVELS

    if log_level not in LOG_LEVELS:
        raise PayloadError(f"unknown log level {log_level!r} (one of {', '.join(sorted(LOG_LEVELS))})")
    return Payload(name, check_flags(command, LABS, flags), log_level)


def build_app() -> "App":
    """blueprint's App with every command labs offers registered (importing blueprint imports the SDK)."""
    from databricks.labs.blueprint.cli import App

    from databricks.labs.oauth_rotator.commands.labs_runner import exits, handler
    from databricks.labs.oauth_rotator.commands.record import LABS, offered_by

    app = App(__file__)
    for command in offered_by(LABS):
        # Unauthenticated for blueprint, always: App would otherwise build a WorkspaceClient from the environment,
        # without timeouts and before the saved config's profile is known. Commands build their own client.
        # labs.yml still asks the CLI for a login where one is needed (the record's `needs_login`).
        app.command(exits(handler(command), command.name), is_unauthenticated=True)
    return app


def main() -> "NoReturn":
    """Read the payload from `sys.argv[1]`, run the command, exit with its code (through `way_out.finish`)."""
    _forget_script_directory()
    from databricks_oauth_rotator.scripts import namespace_packages

    namespace_packages()  # `databricks` and `databricks.labs` without pkgutil, as the console scripts do
    from databricks.labs.oauth_rotator.commands.labs_runner import PROG
    from databricks.labs.oauth_rotator.commands.way_out import finish

    sys.exit(finish(PROG, lambda: run_payload(sys.argv[1:])))


def run_payload(args: "Sequence[str]") -> int:
    """Check the payload and run its command; returns the exit code (errors are the caller's to end with)."""
    from databricks.labs.oauth_rotator.commands.labs_runner import run_light
    from databricks.labs.oauth_rotator.commands.record import command_named

    payload = parse_payload(args)
    command = command_named(payload.command)
    if not command.needs_workspace:
        return run_light(command, payload.flags, debug=payload.debug)
    app = build_app()
    sys.argv[1:] = [payload.to_json()]  # the checked payload, as App reads it
    try:
        app()
    except SystemExit as done:  # `exits` ended the command with its code, after its one line
        return int(done.code or 0)
    return 0


def _forget_script_directory() -> None:
    """Run by path, Python puts this file's folder first on sys.path, where `logs.py` or `config.py` would shadow
    any top-level module of that name; the package is imported by its full name from PYTHONPATH instead."""
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == here:
        del sys.path[0]


if __name__ == "__main__":
    main()
