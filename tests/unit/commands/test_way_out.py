"""The one way out: an error becomes its exit code and one escaped, redacted line; never a traceback."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.commands import rotator_script, way_out, worker
from databricks.labs.oauth_rotator.errors import ConfigError, CredentialError, NeedsPersonError

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
"""A JWT's shape (every Lakebase credential has it); not a real token."""
HOSTILE = f"\x1b]0;title\x07\x1b[2J\u202e{TOKEN}"
"""An OSC title, a screen clear, a bidirectional override and a token: what a hostile workspace might answer."""


def assert_safe(err: str) -> None:
    """One line, with nothing of HOSTILE raw: no control character, no token."""
    assert len(err.splitlines()) == 1 and err.endswith("\n")
    assert TOKEN not in err
    assert err[:-1].isprintable(), repr(err)
    assert "\\x1b]0;title\\x07\\x1b[2J\\u202e<redacted>" in err


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("bad"), 2),
        (CredentialError("down"), 1),
        (NeedsPersonError("log in"), 1),
        (EOFError(), 1),
        (ValueError("a bug"), 1),
    ],
)
def test_an_error_is_its_exit_code_and_one_line(error, code):
    err = io.StringIO()

    def command() -> int:
        raise error

    assert way_out.finish("prog", command, err=err) == code
    assert err.getvalue().startswith("prog: error: ") and len(err.getvalue().splitlines()) == 1
    assert "Traceback" not in err.getvalue()


def test_ctrl_c_is_130_and_says_nothing():
    err = io.StringIO()

    def command() -> int:
        raise KeyboardInterrupt

    assert way_out.finish("prog", command, err=err) == way_out.INTERRUPTED == 130
    assert err.getvalue() == ""


def test_success_is_the_commands_code_and_an_exit_passes_through():
    assert way_out.finish("prog", lambda: 3) == 3
    assert way_out.finish("prog", lambda: None) == 0
    with pytest.raises(SystemExit):  # argparse's --help exits 0 by SystemExit: not an error
        way_out.finish("prog", lambda: sys.exit(0))


def test_a_fix_and_a_multi_line_message_stay_one_line():
    error = ConfigError("no such file\n  at line 3", fix="run `configure`")
    assert way_out.explain(error) == (2, "no such file\n  at line 3; run `configure`")
    assert way_out.error_line("p", str(error)) == "p: error: no such file at line 3; run `configure`"


def test_a_hostile_message_is_escaped_and_redacted():
    err = io.StringIO()

    def command() -> int:
        raise CredentialError(f"the workspace said {HOSTILE}")

    way_out.finish("prog", command, err=err)
    assert_safe(err.getvalue())


# ---- from each entry point --------------------------------------------------------------------------------------


def test_the_console_script(tmp_path, capsys):
    """`databricks-oauth-rotator --once --config PATH`: the path is the user's, and printed back in the error."""
    with pytest.raises(SystemExit) as exited:
        rotator_script.rotator_main(["--once", "--config", str(tmp_path / HOSTILE)], environ={"HOME": str(tmp_path)})
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("databricks-oauth-rotator: error: --config: no such file: ")
    assert_safe(err)


def test_the_labs_entrypoint(tmp_path):
    """`databricks labs oauth-rotator`, run as the CLI runs it, with a payload naming a hostile command."""
    payload = json.dumps({"command": HOSTILE, "flags": {"log_level": "warn"}, "output_type": ""})
    result = subprocess.run(
        [sys.executable, str(ROOT / "src/databricks/labs/oauth_rotator/commands/labs_main.py"), payload],
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("oauth-rotator: error: unknown command ")
    assert TOKEN not in result.stderr and result.stderr[:-1].isprintable() and "<redacted>" in result.stderr


def test_the_worker(monkeypatch):
    def hostile(request: dict, *, stream: io.StringIO) -> tuple[int, float | None]:
        raise CredentialError(f"the workspace said {HOSTILE}")

    monkeypatch.setattr(worker, "run_request", hostile)
    out, err = io.StringIO(), io.StringIO()
    assert worker.main(io.StringIO("{}"), out, err) == 1
    assert json.loads(out.getvalue()) == {"exit_code": 1, "next_due": None}
    assert err.getvalue().startswith("oauth-rotator: error: the workspace said ")
    assert_safe(err.getvalue())


def test_with_no_stderr_at_all_the_line_goes_to_the_log_never_to_stdout(monkeypatch, caplog, capsys):
    """`pythonw.exe` (the Windows task) has no console: `sys.stderr` is None, and print(file=None) means stdout."""
    import logging
    import sys

    from databricks.labs.oauth_rotator.commands import way_out

    monkeypatch.setattr(sys, "stderr", None)
    caplog.set_level(logging.ERROR, logger=way_out.PACKAGE_LOGGER)
    way_out.say("databricks-oauth-rotator", "bad \x1b[31msetting")
    assert capsys.readouterr().out == ""
    assert "bad \\x1b[31msetting" in caplog.text
