"""The files a config names, checked before a rotation: each one writable (or creatable) and controlled by the user
alone (`trust.py`), so that a setup that could never work is refused with exit code 2 before anything is requested.

Split from the config's schema (`config.py`); `app/preflight.py` runs these with the machine's checks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.config import (
    PATH_KEYS,
    RotatorConfig,
    to_raw,
    validate_raw,
)
from databricks.labs.oauth_rotator.paths import log_path_for, pg_service_path_for, pgpass_path_for
from databricks.labs.oauth_rotator.setting_checks import InvalidSetting, check_path_text, named_as
from databricks.labs.oauth_rotator.trust import check_trusted


def check_file_path(path: Path, where: str) -> None:
    """A file we create or replace: not a directory, in an existing directory we can write to.

    The directory is that of the resolved path: a symlinked `.pgpass` is written next to the file it names.
    """
    if path.is_dir():
        raise InvalidSetting(where, f"{path} is a directory, not a file")
    folder = Path(os.path.realpath(path)).parent
    if not folder.is_dir() and paths.creatable_folder(folder):
        return  # %APPDATA%\\postgresql: libpq never creates it; the writer does
    if not folder.is_dir():
        state = "is not a directory" if folder.exists() else "does not exist"
        raise InvalidSetting(where, f"cannot write {path}: directory {folder} {state}")
    if not os.access(folder, os.W_OK | os.X_OK) and not _read_only_mount(folder):
        raise InvalidSetting(where, f"cannot write {path}: directory {folder} is not writable")


def check_folder_path(path: Path, where: str) -> None:
    """A folder we create when it is missing: its nearest existing ancestor must be a writable directory."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing == path and path.is_dir():
        return
    if not existing.is_dir():
        raise InvalidSetting(where, f"cannot create {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK) and not _read_only_mount(existing):
        raise InvalidSetting(where, f"cannot create {path}: directory {existing} is not writable")


def _read_only_mount(folder: Path) -> bool:
    """A file system mounted read-only is a fault that a rotation reports and retries (it gets remounted), not a
    setting that can never work: only permissions make a path unusable before a rotation."""
    statvfs = getattr(os, "statvfs", None)
    if statvfs is None:  # Windows
        return False
    try:
        return bool(statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_paths(
    config: RotatorConfig, names: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> None:
    """Refuse, before any credential is requested, files that could never be written: exit 2, not 1 later.

    Errors name the setting the path came from (`pgpass_file`, else `PGPASSFILE`; `DATABRICKS_LABS_STATE_DIR`),
    or what `names` calls it.
    """
    environ = os.environ if environ is None else environ
    with named_as(names):
        for key in PATH_KEYS:
            check_path_text(getattr(config, key), key)
        check_file_path(pgpass_path_for(config, environ), _source("pgpass_file", "PGPASSFILE", config, environ))
        check_file_path(log_path_for(config, environ), "log_file")
        if config.pg_service:
            where = _source("pg_service_file", "PGSERVICEFILE", config, environ)
            check_file_path(pg_service_path_for(config, environ), where)
        where = "DATABRICKS_LABS_STATE_DIR" if environ.get("DATABRICKS_LABS_STATE_DIR") else "state folder"
        check_folder_path(paths.state_dir(environ), where)
    check_trusted_paths(config, environ)


def check_trusted_paths(config: RotatorConfig, environ: Mapping[str, str] | None = None) -> None:
    """Refuse, before any credential is requested, files that another user could replace or read through a
    directory they control: `.pgpass` and its lock, the log, `pg_service.conf`, `status.json` (`trust.py`)."""
    environ = os.environ if environ is None else environ
    pgpass = Path(os.path.realpath(pgpass_path_for(config, environ)))
    wanted = [pgpass_path_for(config, environ), pgpass.with_name(pgpass.name + ".lock"), log_path_for(config, environ)]
    if config.pg_service:
        wanted.append(pg_service_path_for(config, environ))
    wanted.append(paths.status_file(environ))
    for path in wanted:
        check_trusted(path, for_write=True, environ=environ)


def _source(key: str, variable: str, config: RotatorConfig, environ: Mapping[str, str]) -> str:
    return variable if getattr(config, key) is None and environ.get(variable) else key


def check_config(
    config: RotatorConfig, names: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> RotatorConfig:
    """Every check a entry point runs before it asks for a credential: the settings, then the files it writes.

    Raises `ConfigError` (exit code 2) naming the setting as `names` spells it; returns `config`.
    """
    validate_raw(to_raw(config), names)
    check_paths(config, names, environ)
    return config
