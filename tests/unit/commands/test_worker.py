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
