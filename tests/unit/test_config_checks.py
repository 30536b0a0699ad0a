"""The files a config names, checked before a rotation (`config_checks.py`): where the file really is, which setting
or variable the path came from, and folders we cannot write."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.config_checks import check_paths
from databricks.labs.oauth_rotator.errors import ConfigError


def test_the_paths_are_checked_where_the_file_really_is(tmp_path):
    environ = {"HOME": str(tmp_path), "DATABRICKS_LABS_STATE_DIR": str(tmp_path / "state")}
    link = tmp_path / ".pgpass"
    link.symlink_to(tmp_path / "dotfiles" / "pgpass")  # the writer replaces the file next to its target
    config = RotatorConfig(targets=[TargetConfig(instance="a")], pgpass_file=str(link))
    with pytest.raises(ConfigError, match=f"^pgpass_file: cannot write {link}: directory {tmp_path}/dotfiles does not"):
        check_paths(config, environ=environ)
    (tmp_path / "dotfiles").mkdir()
    check_paths(config, environ=environ)
    assert not (tmp_path / "state").exists()  # checked, not created


@pytest.mark.parametrize(
    ("environ", "config", "message"),
    [
        ({"PGPASSFILE": "{root}/no/pgpass"}, {}, "PGPASSFILE: cannot write"),
        ({"PGSERVICEFILE": "{root}/no/services"}, {"pg_service": True}, "PGSERVICEFILE: cannot write"),
        ({}, {"pg_service": True, "pg_service_file": "{root}"}, "pg_service_file: {root} is a directory"),
        ({"DATABRICKS_LABS_STATE_DIR": "{root}/file/state"}, {}, "DATABRICKS_LABS_STATE_DIR: cannot create"),
        ({"DATABRICKS_LABS_STATE_DIR": "{root}/file"}, {}, "DATABRICKS_LABS_STATE_DIR: cannot create"),
        ({"DATABRICKS_LABS_STATE_DIR": ""}, {"log_file": "{root}/file/log"}, "log_file: cannot write"),
    ],
)
def test_each_path_error_names_where_the_path_came_from(tmp_path, environ, config, message):
    (tmp_path / "file").write_text("")
    root = str(tmp_path)
    env = {"HOME": root, "DATABRICKS_LABS_STATE_DIR": f"{root}/state"}
    env.update({k: v.replace("{root}", root) for k, v in environ.items()})
    settings: dict[str, Any] = {k: v.replace("{root}", root) if isinstance(v, str) else v for k, v in config.items()}
    with pytest.raises(ConfigError, match="^" + re.escape(message.replace("{root}", root))) as failure:
        check_paths(RotatorConfig(targets=[TargetConfig(instance="a")], **settings), environ=env)
    assert failure.value.exit_code == 2


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write any directory")
def test_a_directory_we_cannot_write_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    config = RotatorConfig(targets=[TargetConfig(instance="a")], pgpass_file=str(locked / ".pgpass"))
    with pytest.raises(ConfigError, match="is not writable"):
        check_paths(config, environ={"HOME": str(tmp_path)})
