"""The service's environment file: `KEY=value` lines (systemd `EnvironmentFile` style) that only its owner can read.

systemd reads it itself; launchd cannot, so the scheduler loads the file named by `DATABRICKS_OAUTH_ROTATOR_ENV_FILE`
at start and its worker children inherit the variables.
"""

from __future__ import annotations

from pathlib import Path

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.paths import ENV_FILE_VARIABLE
from databricks.labs.oauth_rotator.trust import check_trusted


def read_environment_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines (systemd EnvironmentFile style) from a file only its owner can read (and only they or root
    can replace: its variables reach every child the scheduler starts)."""
    check_trusted(path, for_write=False)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{ENV_FILE_VARIABLE}: cannot read {path}: {err.strerror}") from err
    if mode & 0o077:
        raise ConfigError(f"{ENV_FILE_VARIABLE}: {path} is readable by others", fix=f"chmod 600 {path}")
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{ENV_FILE_VARIABLE}: {path}:{number}: expected KEY=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values
