"""Running a command of the record the way the Databricks CLI asks for it: flags as strings, checked against the
command's record (`commands.record`), typed for its handler (`commands.labs_commands`), ended through the one way
out (`commands.way_out`). Shared by the labs entrypoint (`labs_cli`) and the sandbox's (`sandbox`); not an entry
point itself.

Imports only `sys` and the record when it loads: `status` and `password` come through here.
"""

import sys

from databricks.labs.oauth_rotator.commands.record import BOOLEAN, INTEGER, command_named, handler_of, offered_by
from databricks.labs.oauth_rotator.commands.way_out import PACKAGE_LOGGER
from databricks.labs.oauth_rotator.errors import ConfigError

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`, which would import typing
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from databricks.labs.oauth_rotator.commands.record import Command

PROG = "oauth-rotator"
LOG_LEVELS = frozenset({"trace", "debug", "info", "warn", "error", "disabled"})


class PayloadError(ConfigError):
    """The command or a flag is not one these commands understand: bad usage, exit code 2."""


def offered(name: str, entry_point: str) -> "Command":
    """The command `name` if `entry_point` offers it (PayloadError naming the ones it does if not)."""
    names = [command.name for command in offered_by(entry_point)]
    if name not in names:
        raise PayloadError(f"unknown command {shown(name)} (commands: {', '.join(sorted(names))})")
    return command_named(name)


def check_flags(command: "Command", entry_point: str, flags: "Mapping[str, str]") -> dict[str, str]:
    """Every flag `entry_point` offers for `command`: the given values (empty means the default), each checked."""
    if not all(isinstance(v, str) for v in flags.values()):
        raise PayloadError('"flags" must be a JSON object of strings')
    declared = command.flags_for(entry_point)
    unknown = sorted(set(flags) - {flag.name for flag in declared})
    if unknown:
        raise PayloadError(f"{command.name}: unknown flag --{shown(unknown[0])[1:-1]}")
    values = {flag.name: flag.default for flag in declared}
    values.update({name: value.strip() for name, value in flags.items() if value.strip()})
    for flag in declared:
        values[flag.name] = _checked(command.name, flag.name, flag.kind, values[flag.name])
    return values


def _checked(command: str, name: str, kind: str, value: str) -> str:
    if kind == BOOLEAN:
        if value.lower() not in {"true", "false"}:
            raise PayloadError(f"{command}: --{name} expects true or false, got {value!r}")
        return value.lower()
    if name == "lines":
        from databricks.labs.oauth_rotator.app.status import MAX_LOG_LINES, parse_lines

        try:
            parse_lines(value)
        except ValueError:
            raise PayloadError(f"{command}: --lines expects a number from 1 to {MAX_LOG_LINES}") from None
    elif kind == INTEGER and value and not value.isdigit():
        raise PayloadError(f"{command}: --{name} expects a number, got {value!r}")
    return value


def typed_arguments(command: "Command", values: "Mapping[str, str]") -> "dict[str, Any]":
    """Checked flag values as the handler takes them: `with-password` -> `with_password`, booleans and numbers
    converted (as blueprint's `App` converts them by annotation); empty strings left out for the default."""
    kinds = {flag.name: flag.kind for flag in command.flags}
    arguments: dict[str, Any] = {}
    for name, value in values.items():
        if value == "":
            continue
        if kinds[name] == BOOLEAN:
            arguments[name.replace("-", "_")] = value == "true"
        elif kinds[name] == INTEGER:
            arguments[name.replace("-", "_")] = int(value)
        else:
            arguments[name.replace("-", "_")] = value
    return arguments


def shown(value: str, limit: int = 60) -> str:
    """`value` quoted for an error message, shortened: a payload can be anything, and errors are one line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def handler(command: "Command") -> "Callable[..., int]":
    """The function that runs `command` (from the record's `handler`)."""
    return handler_of(command)  # type: ignore[return-value]  # the record names functions that return an int


def run_light(command: "Command", values: "Mapping[str, str]", *, debug: bool) -> int:
    """A command that needs no workspace, with checked flags, without blueprint or the SDK; returns the exit code.

    Its handler takes `debug` from here: it is known from the payload, and finding it from the `databricks` logger
    would import `logging`, which `status` and `password` do without."""
    from databricks.labs.oauth_rotator.commands.way_out import finish

    arguments = typed_arguments(command, values)
    return finish(f"{PROG} {command.name}", lambda: handler(command)(**arguments, debug=debug))


def exits(command: "Callable[..., int]", name: str) -> "Callable[..., None]":
    """`command` made to fail loudly, for blueprint's `App` (which would log an exception and exit 0): it ends
    through the one way out, and a non-zero exit code leaves as SystemExit."""
    import functools
    import logging

    @functools.wraps(command)
    def wrapper(**kwargs: "Any") -> None:
        from databricks.labs.oauth_rotator.commands.way_out import finish

        # The CLI's default log level (warn) would hide what the command did.
        if is_debug() or command_named(name).logs_are_output:
            logging.getLogger(PACKAGE_LOGGER).setLevel(logging.DEBUG if is_debug() else logging.INFO)
        exit_code = finish(f"{PROG} {name}", lambda: command(**kwargs))
        if exit_code:
            raise SystemExit(exit_code)

    return wrapper


def is_debug() -> bool:
    """Whether the CLI asked for debug output: the `databricks` logger is at DEBUG (blueprint's App and the sandbox's
    router set it from the payload's log_level)."""
    import logging

    return logging.getLogger("databricks").getEffectiveLevel() <= logging.DEBUG


def set_log_level(log_level: str) -> None:
    """The payload's `log_level` on the `databricks` logger, as blueprint's `App` and the sandbox's router set it."""
    import logging

    level = log_level.strip().lower() or "warn"
    if level not in LOG_LEVELS:
        raise PayloadError(f"unknown log level {level!r} (one of {', '.join(sorted(LOG_LEVELS))})")
    if level != "disabled":
        names = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING}
        logging.getLogger("databricks").setLevel(names.get(level, logging.ERROR))


def log_to_stderr(*, debug: bool) -> None:
    """Plain `LEVEL logger: message` records on stderr, ours at WARNING (DEBUG with `debug`)."""
    import logging

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger(PACKAGE_LOGGER).setLevel(logging.DEBUG if debug else logging.WARNING)
