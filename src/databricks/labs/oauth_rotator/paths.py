"""Where oauth-rotator keeps its own files, following the `databricks labs` layout."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from databricks.labs.oauth_rotator.config import RotatorConfig

PRODUCT = "oauth-rotator"
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
SERVICE_STDOUT_LOG_NAME = ".databricks_oauth_rotator_stdout.log"
SERVICE_STDERR_LOG_NAME = ".databricks_oauth_rotator_stderr.log"
"""The service's own output, in the home directory as the original tool had it."""


def labs_home(environ: Mapping[str, str] | None = None) -> Path:
    """`~/.databricks/labs/oauth-rotator`, the folder the Databricks CLI manages for this project."""
    environ = os.environ if environ is None else environ
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".databricks" / "labs" / PRODUCT


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The config folder: `DATABRICKS_LABS_CONFIG_DIR` when the CLI sets it, else `<labs home>/config`."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("DATABRICKS_LABS_CONFIG_DIR")
    return Path(explicit) if explicit else labs_home(environ) / "config"


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The state folder: `DATABRICKS_LABS_STATE_DIR` when the CLI sets it, else `<labs home>/state`."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("DATABRICKS_LABS_STATE_DIR")
    return Path(explicit) if explicit else labs_home(environ) / "state"


def own_labs_folders(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that point a process the Databricks CLI started for another labs project (the sandbox) at
    oauth-rotator's own folders, `<labs home>/config` and `<labs home>/state`, so that every way in finds one config,
    one `status.json` and one service. The CLI's config folder is kept as LOGIN_DIR_VARIABLE (its `login.json`
    names the profile the user installed that project with)."""
    environ = os.environ if environ is None else environ
    home = labs_home(environ)
    moved = {"DATABRICKS_LABS_CONFIG_DIR": str(home / "config"), "DATABRICKS_LABS_STATE_DIR": str(home / "state")}
    given = environ.get("DATABRICKS_LABS_CONFIG_DIR")
    if given and given != moved["DATABRICKS_LABS_CONFIG_DIR"] and not environ.get(LOGIN_DIR_VARIABLE):
        moved[LOGIN_DIR_VARIABLE] = given
    return moved


def default_config_file(environ: Mapping[str, str] | None = None) -> Path:
    return config_dir(environ) / "config.yml"


def default_log_file(environ: Mapping[str, str] | None = None) -> Path:
    """The original tool's log location, kept so existing users find their log where it was."""
    environ = os.environ if environ is None else environ
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".databricks_oauth_rotator.log"


def default_pgpass_path(environ: Mapping[str, str] | None = None, *, platform: str = sys.platform) -> Path:
    """The password file libpq reads: PGPASSFILE, else `%APPDATA%\\postgresql\\pgpass.conf` on Windows,
    else `$HOME/.pgpass` (the passwd home directory when HOME is unset or empty, as libpq does)."""
    environ = os.environ if environ is None else environ
    if environ.get("PGPASSFILE"):
        return Path(environ["PGPASSFILE"])
    if platform == "win32":
        appdata = environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(appdata) / "postgresql" / "pgpass.conf"
    return Path(environ.get("HOME") or _passwd_home()) / ".pgpass"


def libpq_windows_folder(environ: Mapping[str, str] | None = None, *, platform: str = sys.platform) -> Path | None:
    """`%APPDATA%\\postgresql` on Windows: where libpq reads `pgpass.conf`, a folder libpq never creates (so a fresh
    machine has none, and the rotator creates it), else None."""
    if platform != "win32":
        return None
    environ = os.environ if environ is None else environ
    appdata = environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
    return Path(appdata) / "postgresql"


def creatable_folder(folder: Path, environ: Mapping[str, str] | None = None, *, platform: str = sys.platform) -> bool:
    """Whether a missing `folder` is one the rotator creates itself: libpq's Windows folder, under an existing
    APPDATA."""
    return folder == libpq_windows_folder(environ, platform=platform) and folder.parent.is_dir()


def _passwd_home() -> str:
    import pwd  # POSIX only

    return pwd.getpwuid(os.geteuid()).pw_dir


def pgpass_path_for(config: RotatorConfig, environ: Mapping[str, str] | None = None) -> Path:
    """The file libpq reads: the configured one, else `PGPASSFILE`, else the platform default."""
    if config.pgpass_file:
        return Path(os.path.expanduser(config.pgpass_file))
    return default_pgpass_path(environ)


def pg_service_path_for(config: RotatorConfig, environ: Mapping[str, str] | None = None) -> Path:
    """The service file libpq reads first: the configured one, else `PGSERVICEFILE`, else `~/.pg_service.conf`."""
    environ = os.environ if environ is None else environ
    if config.pg_service_file:
        return Path(os.path.expanduser(config.pg_service_file))
    if environ.get("PGSERVICEFILE"):
        return Path(environ["PGSERVICEFILE"])
    return Path(environ.get("HOME") or Path.home()) / ".pg_service.conf"


def log_path_for(config: RotatorConfig, environ: Mapping[str, str] | None = None) -> Path:
    return Path(os.path.expanduser(config.log_file)) if config.log_file else default_log_file(environ)


def status_file(environ: Mapping[str, str] | None = None) -> Path:
    """`state/status.json`: what was rotated, when it expires, what failed (never a secret)."""
    return state_dir(environ) / STATUS_FILE_NAME


def pgbouncer_dir_for(config: RotatorConfig, environ: Mapping[str, str] | None = None) -> Path:
    """The pgbouncer front's folder (ini, auth file, pid, log, generated password): `pgbouncer.dir`, else
    `<state folder>/pgbouncer`."""
    front = config.pgbouncer
    if front is not None and front.dir:
        return Path(os.path.expanduser(front.dir))
    return state_dir(environ) / "pgbouncer"


def front_file(environ: Mapping[str, str] | None = None) -> Path:
    """`state/pgbouncer.json`: how clients reach the pgbouncer front (never a secret; the password's file by name)."""
    return state_dir(environ) / FRONT_FILE_NAME
