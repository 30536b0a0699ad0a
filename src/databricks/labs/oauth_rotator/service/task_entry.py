"""What the Windows task starts: `pythonw -m ...service.task_entry NAME=VALUE ... -- run --config PATH`.

A Task Scheduler task has no environment of its own (the task schema has no such element: it runs with the user's
logon environment), so the variables `install` forwards (PGPASSFILE, DATABRICKS_CLI_PATH, the labs folders: paths,
never secrets, checked by `ServiceSpec`) travel as `NAME=VALUE` arguments before `--`. This sets them, then runs
`python -m databricks.labs.oauth_rotator` with the rest, as systemd's `Environment=` and launchd's
`EnvironmentVariables` do for the other two managers.
"""

from __future__ import annotations

import os
import re
import runpy
import sys
from collections.abc import Sequence

MODULE = "databricks.labs.oauth_rotator"
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)\Z", re.DOTALL)


def split_arguments(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """The `NAME=VALUE` pairs before `--`, and the arguments after it; ValueError for anything else before it."""
    if "--" not in argv:
        raise ValueError("expected NAME=VALUE ... -- ARGUMENTS")
    cut = list(argv).index("--")
    variables: dict[str, str] = {}
    for item in argv[:cut]:
        match = _ASSIGNMENT.match(item)
        if match is None:
            raise ValueError(f"not a NAME=VALUE assignment: {item!r}")
        variables[match.group(1)] = match.group(2)
    return variables, list(argv[cut + 1 :])


def task_arguments(environment: dict[str, str], arguments: Sequence[str]) -> list[str]:
    """The arguments after `python` that start `python -m MODULE *arguments` with `environment` set."""
    return ["-m", __name__, *(f"{name}={value}" for name, value in environment.items()), "--", *arguments]


def main(argv: Sequence[str] | None = None) -> None:
    """Set the forwarded variables, then run the rotator's `__main__` with the remaining arguments."""
    try:
        variables, rest = split_arguments(sys.argv[1:] if argv is None else argv)
    except ValueError as err:
        if sys.stderr is not None:  # None under pythonw.exe
            print(f"oauth-rotator: error: {err}", file=sys.stderr)
        sys.exit(2)
    os.environ.update(variables)
    sys.argv = [sys.argv[0], *rest]
    runpy.run_module(MODULE, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
