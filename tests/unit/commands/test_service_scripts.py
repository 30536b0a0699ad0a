"""`databricks-oauth-install`, `-status`, `-restart`, `-uninstall`: the console scripts' handlers, with an
in-memory service manager (`MockServiceManager`) and real files in a temp home."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.commands import service_scripts
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.service.base import MockServiceManager, ServiceError


def environ_for(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "DATABRICKS_LABS_CONFIG_DIR": str(home / "config"),
        "DATABRICKS_LABS_STATE_DIR": str(home / "state"),
        "PATH": "/usr/bin:/bin",
    }


def test_status_prints_json_rows_and_a_table(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    environ = environ_for(tmp_path)
    manager = MockServiceManager()
    code = service_scripts.status_command(
        ["--json"], environ=environ, manager_factory=lambda: manager, out=out, err=err
    )
    assert code == 0
    assert isinstance(json.loads(out.getvalue()), list)
    table = io.StringIO()
    service_scripts.status_command([], environ=environ, manager_factory=lambda: manager, out=table, err=err)
    assert table.getvalue().strip()  # a table (or the one line saying nothing is configured), never JSON
    assert not table.getvalue().lstrip().startswith("[")


def test_restart_of_a_service_that_is_not_installed_says_how_to_install_it() -> None:
    with pytest.raises(ServiceError, match="not installed") as raised:
        service_scripts.restart_command([], manager_factory=MockServiceManager, out=io.StringIO())
    assert raised.value.fix is not None and "install" in raised.value.fix


def test_uninstall_keeps_the_pgpass_lines_unless_purged(tmp_path: Path) -> None:
    out = io.StringIO()
    code = service_scripts.uninstall_command(
        [], environ=environ_for(tmp_path), manager_factory=MockServiceManager, out=out
    )
    assert code == 0
    assert "not installed" in out.getvalue() and "--purge" in out.getvalue()


def test_install_refuses_a_setup_that_cannot_work_before_anything_is_saved(tmp_path: Path) -> None:
    environ = environ_for(tmp_path)
    manager = MockServiceManager()
    argv = ["--pg-host", "db.example.com", "--pgpass-file", str(tmp_path / "missing" / ".pgpass")]
    with pytest.raises(ConfigError, match="cannot write"):
        service_scripts.install_command(argv, environ=environ, manager_factory=lambda: manager, out=io.StringIO())
    assert not (tmp_path / "config").exists()  # nothing saved
    assert "install" not in manager.calls
