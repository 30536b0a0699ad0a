"""What the console scripts answer before argparse is imported: `guarded`, and the usual forms of `password`'s flags.

argparse imports `re`, `gettext` and `locale`: together nearly as long as starting Python. `password` runs on every
connection some clients open, `status` and `--version` should answer at once; so the common command lines are
read here, exactly as argparse would read them (a test compares the two on generated command lines), and anything
else (`--help`, an abbreviation, a mistake) goes to the argparse parser in `flags`, which prints help or the error.
Not an entry point: `rotator_script` and `service_scripts` share it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs a fifth of Python's start-up
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, TextIO

PROG = "databricks-oauth-rotator"
PASSWORD = "password"  # noqa: S105  # a command's name, not a secret
"""The first word that makes `databricks-oauth-rotator` print a credential instead of rotating."""


def _password_flags(word: str = PASSWORD) -> tuple[str, ...]:
    """`password`'s console flags (or sub-command `word`'s), from the command record; each takes a value."""
    from databricks.labs.oauth_rotator.commands.record import CONSOLE, console_command

    return tuple(f"--{flag.name}" for flag in console_command(PROG, word).flags_for(CONSOLE))


def password_flags(argv: Sequence[str], word: str = PASSWORD) -> dict[str, str | None] | None:
    """`--target NAME` / `--target=NAME` and `--config PATH` / `--config=PATH`, each at most once, read as argparse
    reads them (`{"target": ..., "config": ...}`); None for any other command line, for argparse to read. `word`
    names another sub-command whose flags all take a value (`wait`: as fast as `password`)."""
    names = _password_flags(word)
    found: dict[str, str | None] = {name[2:]: None for name in names}
    seen: set[str] = set()
    i = 0
    while i < len(argv):
        flag, equals, value = argv[i].partition("=")
        if flag not in names or flag in seen:
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
    """Run a command through the one way out (`way_out.finish`): an error becomes one line on stderr and its exit
    code, never a traceback."""
    from databricks.labs.oauth_rotator.commands.way_out import finish

    return finish(PROG, command, err=err)
