"""The one reader of the config file, the one merge of flag values over it, and its writer.

Every way in reads a config here: the console and labs commands, the scheduler, the worker, the installer, and
`password` when its cache (`config_cache`) does not answer. PyYAML reads any YAML a person writes (comments,
quotes, any key order, indented lists); the checks of `config.py` then refuse what is not a config, naming the key.
Files older than this oauth-rotator's config version are brought up to date by the `vN_migrate` hooks of
`RotatorConfig`, as blueprint's `Installation.load` does; a file is written with PyYAML (keys sorted, as blueprint
writes them), 0600 and atomically. Falsy values are kept (a saved `false` or `0` stays what it was) and a
corrupt file is an error, never read as the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from databricks.labs.oauth_rotator.config import RotatorConfig, from_raw, migrate, to_raw
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files.config_cache import ConfigSource
from databricks.labs.oauth_rotator.trust import check_trusted


def read_config(path: Path) -> ConfigSource:
    """The file's settings as plain data (migrated to this version, not yet checked), with the file's identity.

    A config that another user could replace is refused before it is read: it names the hook command we run.
    """
    import yaml

    check_trusted(path, for_write=False)
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such config file", fix="run `databricks labs oauth-rotator configure`") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {_first_line(err)}") from err
    source = ConfigSource.of(path, data)
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read config: {_first_line(err)}") from err
    except RecursionError as err:
        raise ConfigError(f"{path}: cannot read config: nested too deeply") from err
    try:
        source.raw = migrate(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    return source


def load_config(path: Path) -> RotatorConfig:
    """Read and check a config file; every problem is a `ConfigError` that names the file."""
    return checked(path, read_config(path).raw)


def checked(path: Path | None, raw: Any) -> RotatorConfig:
    """A config from plain data, every problem a `ConfigError` naming the file it came from."""
    try:
        return from_raw(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}" if path is not None else str(err)) from err
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{path}: {_first_line(err)}") from err


def save_config(config: RotatorConfig, path: Path) -> Path:
    """Check and write a config file (0600, atomically)."""
    import yaml

    from databricks.labs.oauth_rotator.files import writer  # here: the scheduler reads configs, never writes one

    config.validate()
    data = yaml.safe_dump({"version": RotatorConfig.__version__, **to_raw(config)}, sort_keys=True)
    writer.make_private_directories(path.parent)
    writer.atomic_write(path, data.encode("utf-8"), mode=0o600)
    return path


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def merge_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The one merge of flag values over a config's settings: each given value wins, and a `target` override
    replaces the targets. `raw` is not changed."""
    merged = dict(raw)
    for key, value in overrides.items():
        if key != "target" and value is not None:
            merged[key] = value
    target = overrides.get("target")
    if target:
        merged["targets"] = [{k: v for k, v in target.items() if v is not None}]
    return merged


def effective_config(path: Path | None, overrides: dict[str, Any]) -> RotatorConfig:
    """The config a run uses: the file (if any), then command-line overrides; a `target` override replaces targets.

    Every problem is a `ConfigError` raised before anything is written or requested.
    """
    return effective_source(path, overrides)[0]


def effective_source(path: Path | None, overrides: dict[str, Any]) -> tuple[RotatorConfig, ConfigSource | None]:
    """`effective_config`, and the file it read (None without one), for `config_cache.remember` once checked."""
    source = read_config(path) if path is not None else None
    raw: dict[str, Any] = to_raw(checked(path, source.raw)) if source is not None else {"targets": []}
    return from_raw(merge_overrides(raw, overrides)), source
