"""`doctor`'s checks of the pgbouncer front: the program, the process, each credential's length, the listener
(the findings themselves come from the front, `rotation/front_report.py`)."""

from __future__ import annotations

from databricks.labs.oauth_rotator.app.doctor_findings import Finding
from databricks.labs.oauth_rotator.config import RotatorConfig
from databricks.labs.oauth_rotator.rotation.front import Front
from databricks.labs.oauth_rotator.rotation.front_report import front_findings
from databricks.labs.oauth_rotator.rotation.state import Status


def check_front(config: RotatorConfig, status: Status, *, timeout: float = 3.0) -> list[Finding]:
    """The pgbouncer front: installed, running, every credential on file short enough for it, the listener answers."""
    front = Front.of(config)
    return [Finding(*found) for found in front_findings(front, status, timeout=timeout)] if front else []
