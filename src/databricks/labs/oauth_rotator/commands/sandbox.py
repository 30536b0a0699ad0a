"""`databricks labs sandbox lakebase-oauth-<command>`: oauth-rotator's commands as databrickslabs/sandbox calls its
tools (contrib/sandbox/ holds the lines the sandbox adds; docs/sandbox.md says what a user types).

The sandbox's router (its `cli.py`) pops `log_level` from the CLI's payload, sets the `databricks` logger from it,
and calls `MAPPING[command](**flags)`, every flag a string and `-` in its name turned into `_`; its lines for us call
`run("rotate", verify="false")`. Here the flags get the same checks and the commands the same bodies
(the command record, `commands.record`, and its handlers) as in `databricks labs oauth-rotator`, with the same output
and exit codes, and the same way out (`commands.way_out`). The router ignores what its tools return, so every
failure leaves through SystemExit.

The CLI points `DATABRICKS_LABS_CONFIG_DIR` and `DATABRICKS_LABS_STATE_DIR` at the sandbox's folders. oauth-rotator
keeps its files in its own (`~/.databricks/labs/oauth-rotator/config` and `state`) whichever way it came in, so both
ways share one config, one `status.json` and one service (one service definition name on every OS).

This module imports only `os` and the command record when it loads: the router imports it for every
`lakebase-oauth-*` command, `status` included.
"""

import os

from databricks.labs.oauth_rotator.commands.record import SANDBOX, offered_by

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`, which would import typing
if TYPE_CHECKING:
    from collections.abc import MutableMapping

PREFIX = "lakebase-oauth-"
"""The sandbox's name for each command: `lakebase-oauth-` and ours (`lakebase-oauth-rotate`)."""


SANDBOX_COMMANDS = tuple(command.name for command in offered_by(SANDBOX))
"""The commands the sandbox's labs.yml declares (contrib/sandbox/; a test keeps the two equal): the record's. `run`
(the foreground loop) and `restart` stay with `databricks labs oauth-rotator` and the console scripts."""


def run(command: str, /, **flags: str) -> None:
    """Run oauth-rotator's `command` with the sandbox's flags (strings, `_` for `-`); return on success, else
    raise SystemExit with the command's exit code (2 for a bad command or flag, after one line on stderr).

    `command` is positional-only: `psql` has a flag of that name (`run("psql", command="select 1")`)."""
    from databricks.labs.oauth_rotator.commands.labs_runner import PROG
    from databricks.labs.oauth_rotator.commands.way_out import finish

    # A bad command or flag ends here; a command's own failure ends inside `_run`, with the command's name.
    exit_code = finish(PROG, lambda: _run(command, flags))
    if exit_code:
        raise SystemExit(exit_code)


def _run(name: str, flags: "dict[str, str]") -> int:
    from databricks.labs.oauth_rotator.commands import labs_runner as runner

    command = runner.offered(name, SANDBOX)
    log_level = flags.pop("log_level", None)  # the router pops it; a caller that does not is served the same
    values = runner.check_flags(command, SANDBOX, {key.replace("_", "-"): value for key, value in flags.items()})
    if log_level is not None:
        runner.set_log_level(log_level)
    use_own_folders(os.environ)
    if not command.needs_workspace:
        return runner.run_light(command, values, debug=runner.is_debug())
    _log_to_stderr()
    runner.exits(runner.handler(command), command.name)(**runner.typed_arguments(command, values))
    return 0


def use_own_folders(environ: "MutableMapping[str, str]") -> None:
    """Point this process (and the service definition it may write, which copies these variables) at
    oauth-rotator's own labs folders instead of the sandbox's."""
    from databricks.labs.oauth_rotator.paths import own_labs_folders

    environ.update(own_labs_folders(environ))


def _log_to_stderr() -> None:
    """blueprint's console logger on stderr, as `databricks labs oauth-rotator` has it through blueprint's App;
    left alone when the router set up logging itself."""
    import logging

    if not logging.getLogger().handlers:
        from databricks.labs.blueprint.logger import install_logger

        install_logger()
