"""The Python API's way out: typed errors raised to the caller, never a line printed or an exit."""

from __future__ import annotations

import pytest

from databricks.labs.oauth_rotator import DatabricksOAuthRotator
from databricks.labs.oauth_rotator.errors import ConfigError


def test_a_bad_argument_raises_a_typed_error_with_the_value_escaped(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(tmp_path / "state"))
    with pytest.raises(ConfigError) as raised:
        DatabricksOAuthRotator(pg_host="h\x1b[2Jost", pgpass_file=str(tmp_path / ".pgpass"))
    assert raised.value.exit_code == 2
    assert str(raised.value) == "pg_host: must not contain control characters: 'h\\x1b[2Jost'"
    assert capsys.readouterr() == ("", "")
    assert not (tmp_path / ".pgpass").exists()
