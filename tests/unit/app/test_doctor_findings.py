"""`doctor`'s findings: how each one reads, and the summary and exit code of a whole run."""

from __future__ import annotations

import io

from databricks.labs.oauth_rotator.app.doctor_findings import FAIL, OK, WARN, Finding, message_of, print_findings
from databricks.labs.oauth_rotator.errors import ConfigError


def test_findings_render_with_their_fix():
    finding = Finding(FAIL, ".pgpass", "mode 0644", "chmod 600 ~/.pgpass")
    assert finding.render() == "FAIL  .pgpass: mode 0644\n      fix: chmod 600 ~/.pgpass"
    assert Finding(OK, "libpq", "16.4").render() == "OK    libpq: 16.4"


def test_a_run_with_a_failure_exits_1_and_counts_each_level() -> None:
    out = io.StringIO()
    findings = [Finding(OK, "a", "fine"), Finding(WARN, "b", "fragile", "do x"), Finding(FAIL, "c", "broken")]
    assert print_findings(findings, out) == 1
    assert out.getvalue().splitlines()[-1] == "1 failed, 1 warning(s), 1 ok"
    assert "      fix: do x" in out.getvalue()


def test_warnings_alone_exit_0() -> None:
    assert print_findings([Finding(WARN, "b", "fragile")], io.StringIO()) == 0


def test_a_finding_shows_the_error_without_its_fix() -> None:
    err = ConfigError("the profile prod is missing", fix="run `databricks auth login -p prod`")
    assert message_of(err) == "the profile prod is missing"
    assert "auth login" in str(err)  # the error alone names its fix; a finding shows it on its own line
