"""What the console scripts answer before argparse is imported: `guarded`, and the usual forms of `password`'s flags.

argparse imports `re`, `gettext` and `locale`: together nearly as long as starting Python. `password` runs on every
connection some clients open, `status` and `--version` should answer at once; so the common command lines are
read here, exactly as argparse would read them (a test compares the two on generated command lines), and anything
else (`--help`, an abbreviation, a mistake) goes to the argparse parser in `flags`, which prints help or the error.
Not a front door: `rotator_script` and `service_scripts` share it.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs a fifth of Python's start-up
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, TextIO

PROG = "databricks-oauth-rotator"
PASSWORD = "password"  # noqa: S105  # a command's name, not a secret
"""The first word that makes `databricks-oauth-rotator` print a credential instead of rotating."""
PASSWORD_FLAGS = ("--target", "--config")
"""`password`'s flags, each taking a value (`flags.build_password_parser` declares the same)."""


def password_flags(argv: Sequence[str]) -> dict[str, str | None] | None:
    """`--target NAME` / `--target=NAME` and `--config PATH` / `--config=PATH`, each at most once, read as argparse
    reads them (`{"target": ..., "config": ...}`); None for any other command line, for argparse to read."""
    found: dict[str, str | None] = {"target": None, "config": None}
    seen: set[str] = set()
    i = 0
    while i < len(argv):
        flag, equals, value = argv[i].partition("=")
        if flag not in PASSWORD_FLAGS or flag in seen:
            return None
        if not equals:
            if i + 1 >= len(argv):
                return None
            i += 1
            value = argv[i]
            if value.startswith("-"):  # argparse takes it for a flag (or a negative number): its error, not ours
                return None
        seen.add(flag)
        found[flag[2:]] = value
        i += 1
    return found


def guarded(command: Any, *, err: TextIO | None = None) -> int:
    """Run a command; a `RotatorError` becomes one line on stderr and its exit code, never a traceback."""
    from databricks.labs.oauth_rotator.errors import RotatorError

    err = err if err is not None else sys.stderr
    try:
        return int(command())
    except RotatorError as error:
        from databricks.labs.oauth_rotator.text import printable

        print(f"{PROG}: error: {printable(str(error))}", file=err)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
