"""The command record: every command declared once, with its flags, help, entry points and handler.

The console scripts, the labs entrypoint (and labs.yml, which a test holds to this record) and the sandbox router
read their commands from here. Adding a command is one `Command` below, its handler (`labs_commands` for labs and
the sandbox) and the application function that handler calls. Plain classes and tuples (their shape is
`commands.command_types`), nothing else imported: `password`, `status` and `--version` read this record before
anything else is loaded, so it must cost no more than its own bytecode."""

from databricks.labs.oauth_rotator.commands.command_types import (
    BOOLEAN,
    CONSOLE,
    ENTRY_POINTS,
    INTEGER,
    KINDS,
    LABS,
    MINUTES,
    PORT,
    SANDBOX,
    STRING,
    Command,
    Flag,
)
from databricks.labs.oauth_rotator.commands.record_flags import (
    CONSOLE_CONFIG_FLAG,
    PASSWORD_CONNECTION_FLAGS,
    ROTATOR_FLAGS,
    TARGET_FLAGS,
    VERIFY,
    database_flag,
    target_flag,
    wait_timeout_flag,
)

__all__ = [
    "BOOLEAN",
    "COMMANDS",
    "CONSOLE",
    "ENTRY_POINTS",
    "INTEGER",
    "KINDS",
    "LABS",
    "MINUTES",
    "PASSWORD_CONNECTION_FLAGS",
    "PORT",
    "ROTATOR_FLAGS",
    "SANDBOX",
    "STRING",
    "TARGET_FLAGS",
    "VERIFY",
    "Command",
    "Flag",
    "command_named",
    "console_command",
    "console_words",
    "handler_of",
    "offered_by",
]

_LABS = "databricks.labs.oauth_rotator.commands.labs_commands"
_LABS_AND_SANDBOX = (LABS, SANDBOX)
_ROTATOR = "databricks-oauth-rotator"

COMMANDS = (
    Command(
        "configure",
        "Choose the profile and the Lakebase databases, the .pgpass file and margin; save the config",
        offered=_LABS_AND_SANDBOX,
        needs_login=True,
        handler=f"{_LABS}:configure",
        logs_are_output=True,
    ),
    Command(
        "rotate",
        "Rotate the credential of every configured database now",
        flags=(VERIFY,),
        offered=_LABS_AND_SANDBOX,
        needs_login=True,
        handler=f"{_LABS}:rotate",
        logs_are_output=True,
    ),
    Command(
        "run",
        "Run the rotation loop in the foreground until interrupted",
        flags=ROTATOR_FLAGS,
        offered=(LABS, CONSOLE),
        needs_login=True,
        handler=f"{_LABS}:run",
        console=(_ROTATOR, ""),
        logs_are_output=True,
    ),
    Command(
        "install",
        "Install and start the background service for the saved config",
        flags=ROTATOR_FLAGS,
        offered=(*_LABS_AND_SANDBOX, CONSOLE),
        handler=f"{_LABS}:install",
        console=("databricks-oauth-install", ""),
    ),
    Command(
        "uninstall",
        "Stop and remove the background service (--purge true also removes its .pgpass lines)",
        flags=(Flag("purge", "Also remove oauth-rotator's lines from .pgpass", kind=BOOLEAN, default="false"),),
        offered=(*_LABS_AND_SANDBOX, CONSOLE),
        handler=f"{_LABS}:uninstall",
        console=("databricks-oauth-uninstall", ""),
    ),
    Command(
        "restart",
        "Restart the background service",
        offered=(LABS, CONSOLE),
        handler=f"{_LABS}:restart",
        console=("databricks-oauth-restart", ""),
    ),
    Command(
        "status",
        "Show each database's host, user, expiry, last rotation and error, and the service state",
        flags=(Flag("json", "print the rows as one JSON list", kind=BOOLEAN, default="false", offered=(CONSOLE,)),),
        offered=(*_LABS_AND_SANDBOX, CONSOLE),
        needs_workspace=False,
        handler=f"{_LABS}:status",
        console=("databricks-oauth-status", ""),
        table_template=(
            "TARGET\\tHOST\\tUSER\\tEXPIRES IN\\tLAST ROTATION\\tLAST ERROR\\tSERVICE\n"
            "{{range .}}{{.target}}\\t{{.host}}\\t{{.user}}\\t{{.expires_in}}\\t{{.last_rotation}}\\t{{.last_error}}"
            "\\t{{.service}}\n{{end}}"
            # After the table, as the console's status prints it: where clients connect through the pgbouncer
            # front, and its local password (or where to read it). Rows without a front have no `front` key.
            "{{range .}}{{if .front}}pgbouncer front for {{.target}}: {{.front}} password={{.front_password}}\n"
            "{{end}}{{end}}"
        ),
    ),
    Command(
        "logs",
        "Show the last lines of the rotator's log",
        flags=(Flag("lines", "How many lines to show", kind=INTEGER, default="50"),),
        offered=_LABS_AND_SANDBOX,
        needs_workspace=False,
        handler=f"{_LABS}:logs",
    ),
    Command(
        "doctor",
        "Check the login, the targets, .pgpass, PGPASSWORD, libpq and the service; say how to fix each problem",
        offered=_LABS_AND_SANDBOX,
        handler=f"{_LABS}:doctor",
    ),
    Command(
        "psql",
        "Open psql on a configured database with a fresh credential (in psql's environment, never on its command line)",
        flags=(
            target_flag("The configured database to connect to, by its name in status (empty for the first)"),
            database_flag("The database to open (empty for the target's database, else databricks_postgres)"),
            Flag("command", "SQL to run instead of an interactive session, as psql -c runs it"),
        ),
        offered=_LABS_AND_SANDBOX,
        needs_login=True,
        handler=f"{_LABS}:psql",
    ),
    Command(
        "env",
        "Print export lines (PGHOST, PGPORT, PGUSER, PGDATABASE, PGSSLMODE) for eval in a POSIX shell",
        flags=(
            target_flag("The configured database to print, by its name in status (empty for the first)"),
            database_flag(
                "The database to set as PGDATABASE (empty for the target's database, else databricks_postgres)"
            ),
            Flag(
                "with-password",
                "Also export PGPASSWORD, a fresh credential valid for about an hour",
                kind=BOOLEAN,
                default="false",
            ),
        ),
        offered=_LABS_AND_SANDBOX,
        needs_login=True,
        handler=f"{_LABS}:env",
    ),
    Command(
        "password",
        "Print the current credential of one configured database and nothing else (for pgAdmin, DBeaver, Postico)",
        flags=(
            target_flag("The configured database, by its name in status (empty for the first)"),
            CONSOLE_CONFIG_FLAG,
            *PASSWORD_CONNECTION_FLAGS,
        ),
        offered=(*_LABS_AND_SANDBOX, CONSOLE),
        needs_workspace=False,
        handler=f"{_LABS}:password",
        console=(_ROTATOR, "password"),
    ),
    Command(
        "wait",
        "Wait until every configured database (or the one named) has a credential on file beyond the margin",
        flags=(
            target_flag("The configured database to wait for, by its name in status (empty for all)"),
            wait_timeout_flag("Seconds to wait before giving up with exit code 1"),
            CONSOLE_CONFIG_FLAG,
        ),
        offered=(LABS, CONSOLE),
        needs_workspace=False,
        handler=f"{_LABS}:wait",
        console=(_ROTATOR, "wait"),
    ),
    Command(
        "shutdown",
        "Stop the scheduler that serves the config and wait until it has exited",
        flags=(
            wait_timeout_flag("Seconds to wait for it to exit before giving up with exit code 1"),
            CONSOLE_CONFIG_FLAG,
        ),
        offered=(LABS, CONSOLE),
        needs_workspace=False,
        handler=f"{_LABS}:shutdown",
        console=(_ROTATOR, "shutdown"),
    ),
    Command(
        "exec",
        "Run a program with a fresh credential: PGHOST, PGPORT, PGDATABASE, PGUSER, PGSSLMODE and a PGPASSFILE kept "
        "fresh while it runs in its environment; its exit code",
        flags=(
            target_flag("The configured database, by its name in status (default: the first)"),
            CONSOLE_CONFIG_FLAG,
            Flag(
                "env-password",
                "also PGPASSWORD and DATABASE_URL (without the password), for programs that read no password file",
                kind=BOOLEAN,
                default="false",
            ),
        ),
        # Console only: labs passes every flag as a string and has no `-- COMMAND ARG...` tail (docs/labs.md).
        offered=(CONSOLE,),
        needs_workspace=False,
        handler="databricks.labs.oauth_rotator.commands.rotator_script:exec_command",
        console=(_ROTATOR, "exec"),
        tail="COMMAND [ARG...]",
    ),
)
"""Every command, in the order labs.yml lists them (the console-only ones last)."""


def command_named(name: str) -> Command:
    """The command called `name` (KeyError if there is none)."""
    for command in COMMANDS:
        if command.name == name:
            return command
    raise KeyError(name)


def offered_by(entry_point: str) -> tuple[Command, ...]:
    """The commands `entry_point` offers, in the record's order."""
    return tuple(command for command in COMMANDS if entry_point in command.offered)


def console_command(script: str, word: str = "") -> Command:
    """The command a console script runs: its own (`word` empty) or its sub-command `word` (KeyError if none)."""
    for command in COMMANDS:
        if command.console == (script, word):
            return command
    raise KeyError(f"{script} {word}".strip())


def console_words(script: str) -> tuple[str, ...]:
    """The sub-command words of a console script (`password` for `databricks-oauth-rotator`)."""
    return tuple(c.console[1] for c in COMMANDS if c.console is not None and c.console[0] == script and c.console[1])


def handler_of(command: Command) -> object:
    """The function that runs `command` for labs and the sandbox, imported now (`__import__`: no importlib)."""
    module_name, _, function = command.handler.partition(":")
    module = __import__(module_name, fromlist=[function])
    return getattr(module, function)
