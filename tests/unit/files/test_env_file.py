"""The service's environment file: `KEY=value` lines from a file only its owner can read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files.env_file import read_environment_file


def env_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    tmp_path.chmod(0o700)
    path = tmp_path / "oauth-rotator.env"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_lines_comments_blanks_and_quotes_as_systemd_reads_them(tmp_path: Path) -> None:
    text = "# the service's login\n\nDATABRICKS_CLIENT_ID = app-id\n; old style\nQUOTED=\"a b\"\nSINGLE='x'\nEMPTY=\n"
    assert read_environment_file(env_file(tmp_path, text)) == {
        "DATABRICKS_CLIENT_ID": "app-id",
        "QUOTED": "a b",
        "SINGLE": "x",
        "EMPTY": "",
    }


def test_a_value_keeps_its_own_equals_signs(tmp_path: Path) -> None:
    assert read_environment_file(env_file(tmp_path, "URL=https://h/?a=b\n")) == {"URL": "https://h/?a=b"}


@pytest.mark.parametrize("line", ["no separator", "1ABC=x", "A B=x", "=x"])
def test_a_line_that_is_not_key_equals_value_is_refused_with_its_number(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError, match=r"oauth-rotator\.env:2: expected KEY=value"):
        read_environment_file(env_file(tmp_path, f"A=1\n{line}\n"))


@pytest.mark.skipif(os.name != "posix", reason="mode bits")
def test_a_file_others_can_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = env_file(tmp_path, "A=1\n", mode=0o640)
    with pytest.raises(ConfigError, match="readable by others") as refused:
        read_environment_file(path)
    assert refused.value.fix == f"chmod 600 {path}"


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    with pytest.raises(ConfigError):
        read_environment_file(tmp_path / "missing.env")
