"""What `doctor` says: one finding per check, with its fix, and the summary line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from databricks.labs.oauth_rotator.errors import RotatorError

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass(frozen=True)
class Finding:
    """One check's verdict: `OK`, `WARN` (works, but fragile) or `FAIL` (a login will fail), and the fix."""

    level: str
    check: str
    message: str
    fix: str | None = None

    def render(self) -> str:
        line = f"{self.level:<5} {self.check}: {self.message}"
        return f"{line}\n      fix: {self.fix}" if self.fix else line


def message_of(err: RotatorError) -> str:
    """The error without its fix, which a finding shows on its own line."""
    return str(err.args[0]) if err.args else type(err).__name__


def print_findings(findings: list[Finding], out: TextIO) -> int:
    """Print each finding; returns 1 when any failed, else 0."""
    for finding in findings:
        print(finding.render(), file=out)
    failed = sum(1 for f in findings if f.level == FAIL)
    warned = sum(1 for f in findings if f.level == WARN)
    print(f"\n{failed} failed, {warned} warning(s), {len(findings) - failed - warned} ok", file=out)
    return 1 if failed else 0
