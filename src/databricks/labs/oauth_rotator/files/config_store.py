"""Reading and writing the config file with blueprint's typed serde, on the local disk.

blueprint's `Installation` keeps typed files in the workspace; `LocalInstallation` keeps them here, written
0600 and atomically. Two of blueprint's habits are wrong for a credentials tool and are closed off: it drops
falsy values on save (a saved `false` or `0` would come back as the default) and it falls back to defaults
when a value has the wrong type or the file is corrupt. So the raw file is validated first, with errors that
name the key, and a corrupt file is an error.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from databricks.labs.blueprint.installation import IllegalState, Installation, NotInstalled, SerdeError

from databricks.labs.oauth_rotator.config import RotatorConfig, from_raw, to_raw
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files import writer
from databricks.labs.oauth_rotator.paths import PRODUCT
from databricks.labs.oauth_rotator.trust import check_trusted


class LocalInstallation(Installation):
    """blueprint's typed file store on the local disk: files written 0600 and atomically, falsy values kept."""

    def __init__(self, folder: Path) -> None:
        super().__init__(None, PRODUCT, install_folder=str(folder))  # type: ignore[arg-type]

    def upload(self, filename: str, raw: bytes) -> str:
        target = Path(self.install_folder()) / filename
        writer.make_private_directories(target.parent)
        writer.atomic_write(target, raw, mode=0o600)
        return str(target)

    def load_raw(self, filename: str) -> Any:
        """The file's content as plain data, before any typing (for validation)."""
        return self._load_content(filename)

    def _load_content(self, filename: str) -> Any:
        path = Path(self.install_folder()) / filename
        try:
            with path.open("rb") as f:
                # Not blueprint's _convert_content: it reads a corrupt file as {} and so as the defaults.
                return self._load_yaml(f) if filename.endswith(".yml") else json.load(f)
        except FileNotFoundError as err:
            raise NotInstalled(f"{path} does not exist") from err

    def _marshal_dataclass(self, type_ref: type, path: list[str], inst: Any) -> tuple[Any, bool]:
        as_dict, ok = super()._marshal_dataclass(type_ref, path, inst)
        if ok and isinstance(as_dict, dict):
            for item in dataclasses.fields(inst):
                value = getattr(inst, item.name)
                if item.name not in as_dict and value is not None and not value and not isinstance(value, list):
                    as_dict[item.name] = value
        return as_dict, ok


def load_config(path: Path) -> RotatorConfig:
    """Read and check a config file; every problem is a `ConfigError` that names the file.

    A config that another user could replace is refused before it is read: it names the hook command we run.
    """
    check_trusted(path, for_write=False)
    installation = LocalInstallation(path.parent)
    try:
        raw = installation.load_raw(path.name)
    except NotInstalled as err:
        raise ConfigError(f"{path}: no such config file", fix="run `databricks labs oauth-rotator configure`") from err
    except (OSError, ValueError, SyntaxError) as err:
        raise ConfigError(f"{path}: cannot read config: {_first_line(err)}") from err
    except RecursionError as err:
        raise ConfigError(f"{path}: cannot read config: nested too deeply") from err
    try:
        # From the data already read and checked, not blueprint's `load`: it would read and parse the file again,
        # and its unmarshalling costs about 0.3 ms per target (0.15 s of a 500-target cycle).
        return from_raw(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    except (IllegalState, SerdeError, TypeError, ValueError) as err:
        raise ConfigError(f"{path}: {_first_line(err)}") from err


def save_config(config: RotatorConfig, path: Path) -> Path:
    """Check and write a config file (0600, atomically)."""
    config.validate()
    LocalInstallation(path.parent).save(config, filename=path.name)
    return path


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def effective_config(path: Path | None, overrides: dict[str, Any]) -> RotatorConfig:
    """The config a run uses: the file (if any), then command-line overrides; a `target` override replaces targets.

    Every problem is a `ConfigError` raised before anything is written or requested.
    """
    raw: dict[str, Any] = to_raw(load_config(path)) if path is not None else {"targets": []}
    target = overrides.get("target")
    for key, value in overrides.items():
        if key != "target" and value is not None:
            raw[key] = value
    if target:
        raw["targets"] = [{k: v for k, v in target.items() if v is not None}]
    return from_raw(raw)
