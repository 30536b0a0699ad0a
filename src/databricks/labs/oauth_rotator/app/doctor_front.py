"""`doctor`'s checks of the pgbouncer front: the program, the process, each credential's length, the listener."""

from __future__ import annotations

from databricks.labs.oauth_rotator.app.doctor_findings import FAIL, OK, Finding
from databricks.labs.oauth_rotator.app.rotate import pgpass_path_for
from databricks.labs.oauth_rotator.config import RotatorConfig
from databricks.labs.oauth_rotator.files import pgbouncer_ini, pgpass
from databricks.labs.oauth_rotator.rotation import pgbouncer
from databricks.labs.oauth_rotator.rotation.state import Status


def check_front(config: RotatorConfig, status: Status, *, timeout: float = 3.0) -> list[Finding]:
    """The pgbouncer front: installed, running, every credential on file short enough for it, the listener answers."""
    front = config.front
    if front is None:
        return []
    check = "pgbouncer"
    binary = pgbouncer.find_binary(front)
    if binary is None:
        fix = "install it (apt install pgbouncer, brew install pgbouncer) or set pgbouncer.binary"
        return [Finding(FAIL, check, "the pgbouncer program is not installed", fix)]
    version = pgbouncer.binary_version(binary)
    shown = ".".join(str(part) for part in version) if version else "of unknown version"
    findings = [Finding(OK, check, f"{binary} is pgbouncer {shown}")]
    files = pgbouncer.files_for(config)
    pid = pgbouncer.running_pid(files.pidfile)
    if pid is None:
        fix = (
            "restart the service: `databricks labs oauth-rotator restart`"
            if front.is_managed
            else f"start it: pgbouncer -d {files.ini}"
        )
        findings.append(Finding(FAIL, check, f"not running (no live pid in {files.pidfile})", fix))
    else:
        findings.append(Finding(OK, check, f"running (pid {pid}), log {files.logfile}"))
    findings.extend(_front_credentials(config, status, version))
    address = f"{front.effective_listen_address}:{front.effective_listen_port}"
    problem = pgbouncer.listener_problem(front.effective_listen_address, front.effective_listen_port, timeout)
    if problem is None:
        findings.append(Finding(OK, check, f"answers on {address} (database names: the target names)"))
    else:
        findings.append(Finding(FAIL, check, f"no answer on {address}: {problem}", f"read {files.logfile}"))
    return findings


def _front_credentials(config: RotatorConfig, status: Status, version: tuple[int, int, int] | None) -> list[Finding]:
    data = pgbouncer.read_pgpass(pgpass_path_for(config))
    findings = []
    for target in config.targets:
        known = status.targets.get(target.label)
        keys = [k for k in known.keys if len(k) == 4] if known is not None else []
        password = pgpass.lookup(data, *keys[0]) if keys else None
        if not password:
            continue
        reason = pgbouncer_ini.too_long(password, version)
        check = f"pgbouncer {target.label}"
        if reason is None:
            size, limit = len(password.encode()), pgbouncer_ini.password_limit(version)
            findings.append(Finding(OK, check, f"the credential ({size} bytes) fits pgbouncer's limit ({limit})"))
        else:
            findings.append(Finding(FAIL, check, reason, "upgrade pgbouncer, or connect through .pgpass instead"))
    return findings
