"""`python -m databricks.labs.oauth_rotator [run] [flags]` (`__main__.py`): the command line the service runs."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("prefix", [[], ["run"]])
def test_the_service_command_line_takes_an_optional_run(prefix: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "databricks.labs.oauth_rotator", *prefix, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ")
    assert "--once" in result.stdout


def test_a_bad_flag_after_run_is_bad_usage_on_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "databricks.labs.oauth_rotator", "run", "--bogus"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "--bogus" in result.stderr
