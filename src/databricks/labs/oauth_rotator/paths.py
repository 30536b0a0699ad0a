"""Where oauth-rotator keeps its own files, following the `databricks labs` layout: every path, written once.

Part of the light tier (docs/architecture.md). Each path is computed as text from plain arguments (a setting's value,
the environment) by a `*_name` function that imports only `os` and `sys`, which `password` and `status` call
directly; the `Path` forms the full commands use are those same functions wrapped, and import `pathlib` only when
called (its `re` alone costs more than Python's start-up). Nothing here knows the config's classes: a caller passes
the setting, or anything with the settings' attribute names (`Settings`).
"""

from __future__ import annotations

import os
import sys

from databricks.labs.oauth_rotator.names import SYSTEMD_UNIT_NAME

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs a fifth of Python's start-up
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Protocol

    class FrontSettings(Protocol):
        """The pgbouncer block's one path setting."""

        @property
        def dir(self) -> str | None: ...

    class Settings(Protocol):
        """The path settings of a config, by the names the config file gives them."""

        @property
        def pgpass_file(self) -> str | None: ...
        @property
        def log_file(self) -> str | None: ...
        @property
        def pg_service_file(self) -> str | None: ...
        @property
        def pgbouncer(self) -> FrontSettings | None: ...


PRODUCT = "oauth-rotator"
CONFIG_FILE_NAME = "config.yml"
ENV_FILE_VARIABLE = "DATABRICKS_OAUTH_ROTATOR_ENV_FILE"
"""Names a 0600 `KEY=value` file the scheduler loads at start (launchd cannot read an EnvironmentFile)."""
CONFIG_ERROR_EXIT_VARIABLE = "DATABRICKS_OAUTH_ROTATOR_CONFIG_ERROR_EXIT"
"""Set by the launchd agent to 0: the exit code of the scheduler on an unusable configuration (else 2)."""
LOGIN_DIR_VARIABLE = "DATABRICKS_OAUTH_ROTATOR_LOGIN_DIR"
"""The folder of the `login.json` that the Databricks CLI keeps for the labs project it started, when that project is
not oauth-rotator (the sandbox): `own_labs_folders` sets it, the installer reads the default profile from it."""
STATUS_FILE_NAME = "status.json"
FRONT_FILE_NAME = "pgbouncer.json"
"""Where `status` finds the pgbouncer front: address, port, local user, databases, the generated password's file."""
CONFIG_CACHE_NAME = "config.json"
"""The parsed config, kept in the state folder by the full path for the fast commands (`config_cache`)."""
SERVICE_STDOUT_LOG_NAME = ".databricks_oauth_rotator_stdout.log"
SERVICE_STDERR_LOG_NAME = ".databricks_oauth_rotator_stderr.log"
"""The service's own output, in the home directory as the original tool had it."""


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def home_name(environ: Mapping[str, str] | None = None) -> str:
    """`$HOME`, else the user's home as Python finds it."""
    return _environ(environ).get("HOME") or os.path.expanduser("~")


def labs_home_name(environ: Mapping[str, str] | None = None) -> str:
    """`~/.databricks/labs/oauth-rotator`, the folder the Databricks CLI manages for this project."""
    return os.path.join(home_name(environ), ".databricks", "labs", PRODUCT)


def config_dir_name(environ: Mapping[str, str] | None = None) -> str:
    """The config folder: `DATABRICKS_LABS_CONFIG_DIR` when the CLI sets it, else `<labs home>/config`."""
    return _environ(environ).get("DATABRICKS_LABS_CONFIG_DIR") or os.path.join(labs_home_name(environ), "config")


def state_dir_name(environ: Mapping[str, str] | None = None) -> str:
    """The state folder: `DATABRICKS_LABS_STATE_DIR` when the CLI sets it, else `<labs home>/state`."""
    return _environ(environ).get("DATABRICKS_LABS_STATE_DIR") or os.path.join(labs_home_name(environ), "state")


def config_file_name(environ: Mapping[str, str] | None = None) -> str:
    """The default config file, `<config folder>/config.yml`."""
    return os.path.join(config_dir_name(environ), CONFIG_FILE_NAME)


def status_file_name(environ: Mapping[str, str] | None = None) -> str:
    """`state/status.json`: what was rotated, when it expires, what failed (never a secret)."""
    return os.path.join(state_dir_name(environ), STATUS_FILE_NAME)


def front_file_name(environ: Mapping[str, str] | None = None) -> str:
    """`state/pgbouncer.json`: how clients reach the pgbouncer front (never a secret; the password's file by name)."""
    return os.path.join(state_dir_name(environ), FRONT_FILE_NAME)


def log_file_name(configured: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The log: the configured file, else the original tool's `~/.databricks_oauth_rotator.log` (kept so existing
    users find their log where it was)."""
    if configured:
        return os.path.expanduser(configured)
    return os.path.join(home_name(environ), ".databricks_oauth_rotator.log")


def pgpass_file_name(
    configured: str | None, environ: Mapping[str, str] | None = None, *, platform: str = sys.platform
) -> str:
    """The password file libpq reads: the configured one, else PGPASSFILE, else `%APPDATA%\\postgresql\\pgpass.conf`
    on Windows, else `$HOME/.pgpass` (the passwd home directory when HOME is unset or empty, as libpq does)."""
    environ = _environ(environ)
    if configured:
        return os.path.expanduser(configured)
    if environ.get("PGPASSFILE"):
        return environ["PGPASSFILE"]
    if platform == "win32":
        appdata = environ.get("APPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Roaming")
        return os.path.join(appdata, "postgresql", "pgpass.conf")
    return os.path.join(environ.get("HOME") or _passwd_home(), ".pgpass")


def libpq_windows_folder(environ: Mapping[str, str] | None = None, *, platform: str = sys.platform) -> Path | None:
    """`%APPDATA%\\postgresql` on Windows: where libpq reads `pgpass.conf`, a folder libpq never creates (so a fresh
    machine has none, and the rotator creates it), else None."""
    if platform != "win32":
        return None
    from pathlib import Path

    environ = os.environ if environ is None else environ
    appdata = environ.get("APPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Roaming")
    return Path(appdata) / "postgresql"


def creatable_folder(folder: Path, environ: Mapping[str, str] | None = None, *, platform: str = sys.platform) -> bool:
    """Whether a missing `folder` is one the rotator creates itself: libpq's Windows folder, under an existing
    APPDATA."""
    return folder == libpq_windows_folder(environ, platform=platform) and folder.parent.is_dir()


def _passwd_home() -> str:
    import pwd  # POSIX only

    return pwd.getpwuid(os.geteuid()).pw_dir


def pg_service_file_name(configured: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The service file libpq reads first: the configured one, else `PGSERVICEFILE`, else `~/.pg_service.conf`."""
    environ = _environ(environ)
    if configured:
        return os.path.expanduser(configured)
    if environ.get("PGSERVICEFILE"):
        return environ["PGSERVICEFILE"]
    return os.path.join(home_name(environ), ".pg_service.conf")


def pgbouncer_dir_name(configured: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The pgbouncer front's folder (ini, auth file, pid, log, generated password): `pgbouncer.dir`, else
    `<state folder>/pgbouncer`."""
    return os.path.expanduser(configured) if configured else os.path.join(state_dir_name(environ), "pgbouncer")


def config_cache_name(environ: Mapping[str, str] | None = None) -> str:
    """`state/config.json`: the last config read in full, for the fast commands."""
    return os.path.join(state_dir_name(environ), CONFIG_CACHE_NAME)


def systemd_unit_file_name(home: str, environ: Mapping[str, str] | None = None) -> str:
    """Where the systemd user unit is: `$XDG_CONFIG_HOME/systemd/user/<unit>`, else under `<home>/.config` (the XDG
    spec says to ignore a relative XDG_CONFIG_HOME)."""
    config_home = _environ(environ).get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config_home):
        config_home = os.path.join(home, ".config")
    return os.path.join(config_home, "systemd", "user", SYSTEMD_UNIT_NAME)


def own_labs_folders(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that point a process the Databricks CLI started for another labs project (the sandbox) at
    oauth-rotator's own folders, `<labs home>/config` and `<labs home>/state`, so that every way in finds one config,
    one `status.json` and one service. The CLI's config folder is kept as LOGIN_DIR_VARIABLE (its `login.json`
    names the profile the user installed that project with)."""
    environ = _environ(environ)
    home = labs_home_name(environ)
    moved = {
        "DATABRICKS_LABS_CONFIG_DIR": os.path.join(home, "config"),
        "DATABRICKS_LABS_STATE_DIR": os.path.join(home, "state"),
    }
    given = environ.get("DATABRICKS_LABS_CONFIG_DIR")
    if given and given != moved["DATABRICKS_LABS_CONFIG_DIR"] and not environ.get(LOGIN_DIR_VARIABLE):
        moved[LOGIN_DIR_VARIABLE] = given
    return moved


# ---- the same paths as `pathlib.Path`, for the full commands ---------------------------------------------------


def _path(name: str) -> Path:
    from pathlib import Path

    return Path(name)


def labs_home(environ: Mapping[str, str] | None = None) -> Path:
    """`labs_home_name` as a `Path`."""
    return _path(labs_home_name(environ))


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`config_dir_name` as a `Path`."""
    return _path(config_dir_name(environ))


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`state_dir_name` as a `Path`."""
    return _path(state_dir_name(environ))


def default_config_file(environ: Mapping[str, str] | None = None) -> Path:
    """`config_file_name` as a `Path`."""
    return _path(config_file_name(environ))


def default_log_file(environ: Mapping[str, str] | None = None) -> Path:
    """The log when none is configured, as a `Path`."""
    return _path(log_file_name(None, environ))


def default_pgpass_path(environ: Mapping[str, str] | None = None, *, platform: str = sys.platform) -> Path:
    """The password file when none is configured, as a `Path`."""
    return _path(pgpass_file_name(None, environ, platform=platform))


def status_file(environ: Mapping[str, str] | None = None) -> Path:
    """`status_file_name` as a `Path`."""
    return _path(status_file_name(environ))


def front_file(environ: Mapping[str, str] | None = None) -> Path:
    """`front_file_name` as a `Path`."""
    return _path(front_file_name(environ))


def pgpass_path_for(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """The file libpq reads for these settings: `pgpass_file`, else `PGPASSFILE`, else the platform default."""
    return _path(pgpass_file_name(settings.pgpass_file, environ))


def pg_service_path_for(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """The service file for these settings: `pg_service_file`, else `PGSERVICEFILE`, else `~/.pg_service.conf`."""
    return _path(pg_service_file_name(settings.pg_service_file, environ))


def log_path_for(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """The log for these settings: `log_file`, else the default."""
    return _path(log_file_name(settings.log_file, environ))


def pgbouncer_dir_for(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """The pgbouncer front's folder for these settings: `pgbouncer.dir`, else `<state folder>/pgbouncer`."""
    front = settings.pgbouncer
    return _path(pgbouncer_dir_name(front.dir if front is not None else None, environ))
