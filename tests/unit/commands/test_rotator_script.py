"""`databricks-oauth-rotator`'s dispatch: --version, the sub-command words, one line and exit 2 for a bad one."""

from __future__ import annotations

import pytest

from databricks.labs.oauth_rotator.__about__ import __version__
from databricks.labs.oauth_rotator.commands import rotator_script


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        rotator_script.rotator_main(argv, environ={"HOME": "/nonexistent"})
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"databricks-oauth-rotator {__version__}"


def test_exec_without_a_program_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    code, out, err = run(["exec", "--config", str(tmp_path / "config.yml")], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "exec: give the program to run after --" in err


def test_wait_with_a_bad_timeout_goes_to_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["wait", "--timeout", "soon"], capsys)
    assert code == 2 and "--timeout" in err and "Traceback" not in err
