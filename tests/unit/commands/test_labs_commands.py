"""The labs and sandbox handlers: each calls one application function and renders its result, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.commands import labs_commands
from databricks.labs.oauth_rotator.errors import ConfigError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DATABRICKS_LABS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv(paths.LOGIN_DIR_VARIABLE, raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return tmp_path


def test_status_prints_one_json_value_and_nothing_else(home, capsys):
    assert labs_commands.status(debug=False) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == [] and out.count("\n") == 1


def test_logs_prints_the_tail_of_the_log(home, capsys):
    log = home / ".databricks_oauth_rotator.log"
    log.write_text("".join(f"2026-01-01 00:00:0{i} - INFO - line {i}\n" for i in range(5)), encoding="utf-8")
    assert labs_commands.logs(lines=2) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-01-01 00:00:03 - INFO - line 3",
        "2026-01-01 00:00:04 - INFO - line 4",
    ]


@pytest.mark.parametrize("handler", ["rotate", "run", "install", "psql", "env"])
def test_a_handler_without_a_saved_config_raises_for_the_way_out_and_prints_nothing(home, capsys, handler):
    with pytest.raises(ConfigError, match="configure") as raised:
        getattr(labs_commands, handler)()
    assert raised.value.exit_code == 2
    assert capsys.readouterr().out == ""
