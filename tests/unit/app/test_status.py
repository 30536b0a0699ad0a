"""The status table shows text from status.json (a workspace's error message, a hand edit) escaped (issue 19)."""

from __future__ import annotations

import json
import sys
from typing import Any

from databricks.labs.oauth_rotator.app.status import collect_status, render_table, status_rows
from databricks.labs.oauth_rotator.service import MockServiceManager


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


def test_nothing_status_prints_holds_a_control_character_from_any_file_it_reads(tmp_path, capsys):
    """Issue 23 (11): the front's password file is written by the service user; status.json, pgbouncer.json and the
    paths come from files and variables too. The console and labs `status` print `collect_status`'s rows."""
    state = tmp_path / "state"
    state.mkdir()
    evil = "\x1b]0;pwned\x07\x1b[2J\r\u202e\x9b31m"
    (state / "status.json").write_text(
        json.dumps(
            {
                "targets": {
                    "sales": {"hosts": [f"h{evil}"], "user": f"u{evil}", "last_error": evil},
                    f"other{evil}": {"hosts": ["h"]},
                }
            }
        )
    )
    password_file = tmp_path / "password"
    password_file.write_text(f"local{evil}\n")
    front = {
        "address": f"127.0.0.1{evil}",
        "port": evil,
        "user": f"lakebase{evil}",
        "databases": ["sales", evil],
        "password_file": str(password_file),
    }
    (state / "pgbouncer.json").write_text(json.dumps(front))
    environ = {"HOME": str(tmp_path), "DATABRICKS_LABS_STATE_DIR": str(state)}
    rows = collect_status(environ=environ, manager_factory=MockServiceManager, err=sys.stderr)
    assert rows[1]["front_password"].startswith("local\\x1b]0;pwned")  # sorted: "other..." first
    printed = render_table(rows) + json.dumps(rows, ensure_ascii=False) + capsys.readouterr().err
    for control in ("\x1b", "\x07", "\r", "\u202e", "\x9b"):
        assert control not in printed, repr(control)
    missing = {"HOME": str(tmp_path), "DATABRICKS_LABS_STATE_DIR": str(tmp_path / f"none{evil}")}
    assert collect_status(environ=missing, manager_factory=MockServiceManager, err=sys.stderr) == []
    assert "\x1b" not in capsys.readouterr().err
