"""The flags that several commands of the record share: the console script's own (`databricks-oauth-rotator` and
`databricks-oauth-install`), `password`'s connection flags, and the `--target` / `--database` every labs command
spells the same way. Plain data, as the record is (`commands.record`), cheap to import."""

from databricks.labs.oauth_rotator.commands.command_types import BOOLEAN, CONSOLE, INTEGER, MINUTES, PORT, Flag

# ---- the console script's own flags (`databricks-oauth-rotator`, and `databricks-oauth-install`'s) -------------

VERIFY = Flag(
    "verify",
    "After rotating, log in once with each credential to prove it works",
    kind=BOOLEAN,
    default="false",
)
TARGET_FLAGS = (
    Flag(
        "workspace-url",
        "the workspace URL (default: DATABRICKS_HOST or the profile's host)",
        metavar="URL",
        offered=(CONSOLE,),
    ),
    Flag(
        "profile",
        "~/.databrickscfg profile (default: DATABRICKS_CONFIG_PROFILE)",
        metavar="NAME",
        offered=(CONSOLE,),
    ),
    Flag(
        "pg-host",
        "Lakebase host, resolved to its instance or endpoint (DATABRICKS_PG_HOST)",
        metavar="HOST",
        offered=(CONSOLE,),
    ),
    Flag("pg-port", "port (default 5432)", kind=PORT, metavar="PORT", offered=(CONSOLE,)),
    Flag(
        "pg-database",
        "database field of the .pgpass line (default '*', any database)",
        metavar="NAME",
        offered=(CONSOLE,),
    ),
    Flag(
        "pg-username",
        "Postgres role (default: the authenticated identity)",
        metavar="USER",
        offered=(CONSOLE,),
    ),
    Flag(
        "instance",
        "a Lakebase Provisioned instance name",
        metavar="NAME",
        offered=(CONSOLE,),
        group="target",
    ),
    Flag(
        "endpoint",
        "projects/<p>/branches/<b>/endpoints/<e> (Autoscaling)",
        metavar="PATH",
        offered=(CONSOLE,),
        group="target",
    ),
    Flag(
        "pgpass-file",
        "password file (default: PGPASSFILE, else ~/.pgpass)",
        metavar="PATH",
        offered=(CONSOLE,),
    ),
    Flag(
        "log-file",
        "log file (default ~/.databricks_oauth_rotator.log)",
        metavar="PATH",
        offered=(CONSOLE,),
    ),
    Flag(
        "config",
        "config file (default ~/.databricks/labs/oauth-rotator/config/config.yml)",
        metavar="PATH",
        offered=(CONSOLE,),
    ),
)
"""What to rotate and where to write, as the original tool took them (`databricks-oauth-install` takes them too)."""
ROTATOR_FLAGS = (
    Flag(
        "once",
        "rotate every target once and exit (default: run as a daemon)",
        kind=BOOLEAN,
        default="false",
        offered=(CONSOLE,),
    ),
    Flag(
        "interval",
        "refresh at least this often (default 50)",
        kind=MINUTES,
        metavar="MINUTES",
        offered=(CONSOLE,),
    ),
    *TARGET_FLAGS[:-1],
    Flag(
        "exec-after",
        "run COMMAND (no shell) after a rotation changed the password file",
        metavar="COMMAND",
        offered=(CONSOLE,),
    ),
    TARGET_FLAGS[-1],
    Flag(
        "verify",
        VERIFY.help,
        kind=BOOLEAN,
        default="false",
        offered=(CONSOLE,),
    ),
    Flag(
        "http-address",
        "address of the HTTP endpoints (default 127.0.0.1)",
        metavar="ADDRESS",
        offered=(CONSOLE,),
    ),
    Flag(
        "http-port",
        "serve /startup /liveness /readiness /metrics",
        kind=PORT,
        metavar="PORT",
        offered=(CONSOLE,),
    ),
    Flag(
        "quitquitquit",
        "serve POST /quitquitquit (stops the rotator) on the admin port",
        kind=BOOLEAN,
        default="false",
        offered=(CONSOLE,),
    ),
    Flag(
        "admin-port",
        "the admin port, on 127.0.0.1 only (default 9092)",
        kind=PORT,
        metavar="PORT",
        offered=(CONSOLE,),
    ),
    Flag("debug", "debug logging (never includes tokens)", kind=BOOLEAN, default="false", offered=(CONSOLE,)),
)


PASSWORD_CONNECTION_FLAGS = (
    Flag(
        "host",
        "instead of --target: the host the client connects to (pgAdmin: %HOSTNAME%), matched as .pgpass matches",
        metavar="HOST",
        offered=(CONSOLE,),
    ),
    Flag("port", "with --host: its port (pgAdmin: %PORT%)", metavar="PORT", offered=(CONSOLE,)),
    Flag("user", "with --host: the Postgres role (pgAdmin: %USERNAME%)", metavar="USER", offered=(CONSOLE,)),
    Flag("database", "with --host: the database", metavar="NAME", offered=(CONSOLE,)),
)
"""`password`'s other way to name a target: the connection a client is about to open (pgAdmin's placeholders).
Strings, as `quick.password_flags` reads them without argparse; the port is checked by `app/password_pick.py`."""


def target_flag(help_text: str) -> Flag:
    """`--target`: which configured database, by its name in status."""
    return Flag("target", help_text, metavar="NAME")


CONSOLE_CONFIG_FLAG = Flag("config", "config file (default: the saved one)", metavar="PATH", offered=(CONSOLE,))
"""`--config` of the console commands that read the saved config (labs always reads the saved one)."""


def wait_timeout_flag(help_text: str) -> Flag:
    """`--timeout`: whole seconds to wait (30 by default)."""
    return Flag("timeout", help_text, kind=INTEGER, default="30")


def database_flag(help_text: str) -> Flag:
    return Flag("database", help_text, metavar="NAME")
