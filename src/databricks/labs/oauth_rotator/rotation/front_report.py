"""What `doctor` says about the pgbouncer front: installed, recent enough to have the 1.25.2 security fixes,
running (or why it is down, in pgbouncer's own words), every credential on file short enough for it (or the
previous one kept, and the version that takes it), and the listener answering.

Findings are `(level, check, message, fix)`: `app/doctor.py` turns them into its `Finding`s.
"""

from __future__ import annotations

from pathlib import Path

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files import pgbouncer_ini, pgpass
from databricks.labs.oauth_rotator.paths import pgpass_path_for
from databricks.labs.oauth_rotator.rotation import front_checks, front_files
from databricks.labs.oauth_rotator.rotation.front import Front
from databricks.labs.oauth_rotator.rotation.state import Status
from databricks.labs.oauth_rotator.text import one_line, printable

SECURITY_FIXES = (1, 25, 2)
"""The pgbouncer release that fixes CVE-2026-6664 to CVE-2026-6667 (a pre-authentication crash among them)."""
FrontFinding = tuple[str, str, str, str | None]
OK, WARN, FAIL = "OK", "WARN", "FAIL"
CHECK = "pgbouncer"


def front_findings(front: Front, status: Status, *, timeout: float = 3.0) -> list[FrontFinding]:
    """Every finding about `front`, the most basic first."""
    if front.binary is None:
        fix = "install it (apt install pgbouncer, brew install pgbouncer) or set pgbouncer.binary"
        return [(FAIL, CHECK, "the pgbouncer program is not installed", fix)]
    version = front.version
    shown = ".".join(str(part) for part in version) if version else "of unknown version"
    findings: list[FrontFinding] = [(OK, CHECK, f"{front.binary} is pgbouncer {shown}", None)]
    outdated = security_finding(version)
    if outdated is not None:
        findings.append(outdated)
    findings.append(_process(front))
    findings.extend(_credentials(front, status, version))
    findings.append(_listener(front, timeout))
    return findings


def security_finding(version: tuple[int, int, int] | None) -> FrontFinding | None:
    """A warning for a pgbouncer older than `SECURITY_FIXES` (the front listens for every local client)."""
    if version is None or version >= SECURITY_FIXES:
        return None
    fixed = ".".join(str(part) for part in SECURITY_FIXES)
    return (
        WARN,
        CHECK,
        f"pgbouncer {'.'.join(str(part) for part in version)} predates {fixed}, which fixes four CVEs "
        "(CVE-2026-6664 to CVE-2026-6667, one an unauthenticated crash)",
        f"upgrade pgbouncer to {fixed} or later (the PGDG packages have it), or set pgbouncer.binary to one",
    )


def _process(front: Front) -> FrontFinding:
    try:
        pid = front.running_pid()
    except ConfigError as err:  # under root, no user to run it as
        return (FAIL, CHECK, str(err.args[0]), err.fix)
    recorded = front_files.read_state()
    if pid is not None:
        return (OK, CHECK, f"running (pid {pid}), log {front.files.logfile}", None)
    fix = (
        "restart the service: `databricks labs oauth-rotator restart`"
        if front.settings.is_managed
        else f"start it: pgbouncer -d {front.files.ini}"
    )
    said = recorded.get("error")
    why = f": {printable(one_line(str(said)))}" if said and recorded.get("process") != "stopped" else ""
    return (FAIL, CHECK, f"not running{why}", fix)


def _credentials(front: Front, status: Status, version: tuple[int, int, int] | None) -> list[FrontFinding]:
    data = _read(pgpass_path_for(front.config))
    refused = front_files.read_state().get("refused")
    findings: list[FrontFinding] = []
    for target in front.config.targets:
        known = status.targets.get(target.label)
        keys = [k for k in known.keys if len(k) == 4] if known is not None else []
        password = pgpass.lookup(data, *keys[0]) if keys else None
        if not password:
            continue
        reason = pgbouncer_ini.too_long(password, version)
        check = f"{CHECK} {target.label}"
        if reason is None:
            size, limit = len(password.encode()), pgbouncer_ini.password_limit(version)
            findings.append((OK, check, f"the credential ({size} bytes) fits pgbouncer's limit ({limit})", None))
            continue
        kept = isinstance(refused, dict) and "keeps the previous credential" in str(refused.get(target.label, ""))
        note = "; the front keeps the previous credential while it lives" if kept else ""
        findings.append((FAIL, check, reason + note, "upgrade pgbouncer, or connect through .pgpass instead"))
    return findings


def _listener(front: Front, timeout: float) -> FrontFinding:
    port = front.settings.effective_listen_port
    for address in front.addresses:
        problem = front_checks.listener_problem(address, port, timeout)
        shown = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        if problem is not None:
            return (FAIL, CHECK, f"no answer on {shown}: {problem}", f"read {front.files.logfile}")
    names = " and ".join(f"[{a}]" if ":" in a else a for a in front.addresses)
    return (OK, CHECK, f"answers on {names} port {port} (database names: the target names)", None)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
