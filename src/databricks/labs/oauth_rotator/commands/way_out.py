"""The one way out of every entry point: an error becomes its exit code and one escaped, redacted line on stderr.

The console scripts, the labs entrypoint, the sandbox router and the worker end through `finish` (the Python API
raises its typed errors to the caller instead). A `RotatorError` exits with its own code (1: rotation failed,
2: bad usage or configuration), KeyboardInterrupt with 130 and no line, anything else with 1; never a traceback
(an unexpected error's traceback goes to the package's logger at DEBUG, which `--debug` shows). The line is redacted
(`secrets.redact`: a token in an SDK error never reaches a terminal) and escaped (`text.printable`: an escape
sequence in a workspace's message is shown, not obeyed), and its whitespace folded, so that it is one line.

Imports only `sys` when it loads: `password` and `status` end through here too. The rest is imported on error.
"""

import sys

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`, which would import typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

INTERRUPTED = 130
"""What a shell reports for a command ended by Ctrl-C (128 + SIGINT)."""
PACKAGE_LOGGER = "databricks.labs.oauth_rotator"
"""`logs.PACKAGE_LOGGER` (a unit test keeps the two equal): importing `logs` would import `logging`."""


def finish(prog: str, command: "Callable[[], int | None]", *, err: "TextIO | None" = None) -> int:
    """Run `command`; return its exit code, or the error's after one line `PROG: error: MESSAGE` on `err`."""
    try:
        return int(command() or 0)
    except KeyboardInterrupt:
        return INTERRUPTED
    except Exception as error:  # pylint: disable=broad-exception-caught  # the one place an entry point ends
        exit_code, message = explain(error)
        say(prog, message, err=err)
        return exit_code


def explain(error: BaseException) -> "tuple[int, str]":
    """The exit code for `error` and its message, not yet escaped (`say` escapes and redacts it)."""
    from databricks.labs.oauth_rotator.errors import RotatorError

    if isinstance(error, RotatorError):
        return error.exit_code, str(error)
    if isinstance(error, EOFError):  # a prompt on a closed stdin
        return 1, "no answer: standard input is closed"
    import logging

    logging.getLogger(PACKAGE_LOGGER).debug("unexpected error", exc_info=error)
    return 1, f"{type(error).__name__}: {error}"


def error_line(prog: str, message: str) -> str:
    """`PROG: error: MESSAGE` on one line, secrets redacted and control characters escaped."""
    return f"{prog}: error: {escaped(message)}"


def escaped(message: str) -> str:
    """`message` on one line, secrets redacted and control characters escaped: safe for a terminal and a log."""
    from databricks.labs.oauth_rotator.secrets import redact
    from databricks.labs.oauth_rotator.text import printable

    # Folded before escaping: a multi-line SDK error reads as one line, not as one with `\n` in it.
    return printable(redact(" ".join(message.split())))


def say(prog: str, message: str, *, err: "TextIO | None" = None) -> None:
    """Print `error_line(prog, message)` on `err` (stderr). With no stderr at all (`pythonw.exe`, which the Windows
    task runs, has no console), the line goes to the log file that logging was set up with, never to stdout."""
    stream = sys.stderr if err is None else err
    if stream is None:
        import logging

        logging.getLogger(PACKAGE_LOGGER).error(escaped(message))
        return
    print(error_line(prog, message), file=stream)
