"""The status table shows text from status.json (a workspace's error message, a hand edit) escaped (issue 19)."""

from __future__ import annotations

from typing import Any

from databricks.labs.oauth_rotator.app.status import render_table, status_rows


def test_escape_sequences_in_status_reach_the_table_escaped():
    targets: dict[str, Any] = {
        "inst\x1b]0;pwned\x07": {
            "hosts": ["db\x1b[2J.example.com"],
            "user": "ana\r@example.com",
            "last_error": "instance x: InternalError: \x1b]8;;http://evil\x07click\x1b]8;;\x07 \x9b31m",
            "failures": 2,
        }
    }
    (row,) = status_rows(targets, "running", 0.0)
    table = render_table([row])
    for control in ("\x1b", "\x07", "\r", "\x9b"):
        assert control not in table, repr(control)
    assert "\\x1b]8;;http://evil" in row["last_error"]
    assert row["target"].startswith("inst\\x1b]0;pwned")
