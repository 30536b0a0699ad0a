"""The scheduler's worker: whatever happens in a cycle, one error line, the JSON report, an exit code (issue 19)."""

from __future__ import annotations

import io
import json

import pytest

from databricks.labs.oauth_rotator.commands import worker


@pytest.mark.parametrize(
    ("request_text", "code"),
    [
        ("[]", 2),
        ("{", 2),
        (json.dumps({"overrides": {"target": 5}}), 1),  # an AttributeError deep inside, not a traceback
        (json.dumps({"overrides": "x"}), 2),
    ],
)
def test_a_request_the_worker_cannot_run_ends_in_a_report_not_a_traceback(request_text, code):
    out, err = io.StringIO(), io.StringIO()
    assert worker.main(io.StringIO(request_text), out, err) == code
    assert json.loads(out.getvalue().splitlines()[-1]) == {"exit_code": code, "next_due": None}
    assert "Traceback" not in err.getvalue()
    assert len(err.getvalue().strip().splitlines()) == 1


# ---- a dead stderr (issue #24, item 3) ---------------------------------------------------------------------------


def test_a_worker_whose_stderr_is_dead_still_reports_the_configuration_error(tmp_path):
    """The real worker process with stderr a pipe nobody reads any more (its reader closed, as when the scheduler
    under pythonw.exe has no console): writing to it raises BrokenPipeError (Python ignores SIGPIPE, the `signal`
    documentation), and the report must still reach stdout with exit code 2, or the scheduler retries for ever."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "databricks.labs.oauth_rotator.commands.worker"],
            input=json.dumps({"config": str(tmp_path / "missing.yml")}),
            stdout=subprocess.PIPE,
            stderr=write_end,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "HOME": str(tmp_path)},
        )
    finally:
        os.close(write_end)
    assert result.returncode == 2
    assert json.loads(result.stdout.splitlines()[-1]) == {"exit_code": 2, "next_due": None}


def test_a_worker_without_stderr_writes_its_report_and_nothing_else_on_stdout():
    out = io.StringIO()
    assert worker.main(io.StringIO("[]"), out, None) == 2
    assert out.getvalue().splitlines() == ['{"exit_code": 2, "next_due": null}']
