"""`doctor`'s file checks: who may replace each file (the StrictModes rule), the `.pgpass` file itself (mode,
owner, shadowing lines, lost lines), and the credentials status.json says are in it."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.app.doctor_findings import FAIL, OK, WARN, Finding, message_of
from databricks.labs.oauth_rotator.app.rotate import pgpass_path_for
from databricks.labs.oauth_rotator.config import RotatorConfig
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.hostos import CURRENT, HostOS
from databricks.labs.oauth_rotator.rotation.state import Status
from databricks.labs.oauth_rotator.text import human_duration
from databricks.labs.oauth_rotator.trust import WINDOWS_SCOPE, UntrustedPathError, check_trusted

GuardedFile = tuple[str, Path, bool]
"""What it is (for people), its path, and whether a run writes it."""


def guarded_files(
    config_path: Path, config: RotatorConfig | None, status_path: Path, environ: Mapping[str, str]
) -> list[GuardedFile]:
    """Every file a run reads or writes: the config, `.pgpass` and its lock, the status, the log, ..."""
    pgpass_file = pgpass_path_for(config, environ) if config else paths.default_pgpass_path(environ)
    real = Path(os.path.realpath(pgpass_file))
    files = [
        ("config", config_path, False),
        (".pgpass", pgpass_file, True),
        (".pgpass lock", real.with_name(real.name + ".lock"), True),
        ("status", status_path, True),
    ]
    if config is not None:
        files.append(("log", paths.log_path_for(config, environ), True))
        if config.pg_service:
            files.append(("pg_service.conf", paths.pg_service_path_for(config, environ), True))
    env_file = environ.get(paths.ENV_FILE_VARIABLE)
    if env_file:
        files.append((paths.ENV_FILE_VARIABLE, Path(env_file), False))
    return files


def check_permissions(files: list[GuardedFile], environ: Mapping[str, str]) -> list[Finding]:
    """The StrictModes rule (`trust.py`) for every file a run reads or writes: each failure with its fix."""
    findings = []
    for what, path, for_write in files:
        try:
            check_trusted(path, for_write=for_write, environ=environ)
        except UntrustedPathError as err:
            message = f"{what}: {message_of(err).removeprefix('unsafe permissions: ')}"
            findings.append(Finding(FAIL, "permissions", message, err.fix))
    if not findings:
        findings.append(
            Finding(OK, "permissions", "only you (or root) can replace the config, .pgpass, the log and the status")
        )
    return findings


def check_pgpass(path: Path, status: Status, *, platform: str) -> list[Finding]:
    """The file libpq reads: there, private, ours; our lines present and not shadowed by earlier ones."""
    try:
        info = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        return [Finding(WARN, ".pgpass", f"{path} does not exist yet", "run `databricks labs oauth-rotator rotate`")]
    except OSError as err:
        return [Finding(FAIL, ".pgpass", f"cannot read {path}: {err}")]
    findings = _mode_and_owner(path, info) if platform != "win32" else []
    keys = [tuple(k) for t in status.targets.values() for k in t.keys if len(k) == 4]
    entries = [pgpass.PgpassEntry(k[0], k[1], k[2], k[3], password="") for k in keys]
    shadows = pgpass.shadowed(data, entries)
    for shadow in shadows:
        findings.append(
            Finding(
                WARN,
                "shadowing",
                f"{path}: {shadow.describe()}, so libpq never reads oauth-rotator's line",
                f"delete line {shadow.line} of {path}, or move it below oauth-rotator's lines",
            )
        )
    for name in lines_lost(status, data, {shadow.key for shadow in shadows}):
        findings.append(
            Finding(
                WARN,
                f"credential {name}",
                f"its line is missing from {path}",
                "the service restores it within a minute; or run `databricks labs oauth-rotator rotate`",
            )
        )
    return findings


def _mode_and_owner(path: Path, info: os.stat_result, host: HostOS = CURRENT) -> list[Finding]:
    if not host.permission_modes:  # Windows: every writable file reports 0666; its ACL is what counts
        return [Finding(OK, ".pgpass", f"{path}: {WINDOWS_SCOPE}")]
    mode = stat.S_IMODE(info.st_mode)
    if host.shared_mode(info):
        message = f"{path} has mode {mode:04o}: libpq ignores a password file others can read"
        findings = [Finding(FAIL, ".pgpass", message, f"chmod 600 {path}")]
    else:
        findings = [Finding(OK, ".pgpass", f"{path} has mode {mode:04o}")]
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        findings.append(
            Finding(WARN, ".pgpass", f"{path} belongs to uid {info.st_uid}, not to you", f"chown you {path}")
        )
    return findings


def lines_lost(status: Status, data: bytes, shadowed: set[pgpass.Key]) -> list[str]:
    """The targets whose line is gone from `.pgpass`. A shadowed line of ours is there and reported as shadowed:
    libpq's lookup finds the earlier line's password instead, which alone would make ours look missing."""
    lost = []
    for name, target in status.targets.items():
        visible = [key for key in target.keys if tuple(key) not in shadowed]
        if target.fingerprint and replace(target, keys=visible).lines_lost(data):
            lost.append(name)
    return lost


def check_credentials(status: Status, now: float) -> list[Finding]:
    """Each target's credential as status.json records it: valid for how long, expired, or a login to fix."""
    findings = []
    for name in sorted(status.targets):
        target = status.targets[name]
        if target.needs_person and target.last_error:
            findings.append(
                Finding(FAIL, f"credential {name}", f"last rotation failed: {target.last_error}", target.fix)
            )
        elif target.expires_at is not None and target.expires_at <= now:
            findings.append(
                Finding(
                    FAIL,
                    f"credential {name}",
                    f"the credential in .pgpass expired {human_duration(now - target.expires_at)} ago",
                    "run `databricks labs oauth-rotator rotate`, and check the service (`status`, `logs`)",
                )
            )
        elif target.expires_at is not None:
            findings.append(Finding(OK, f"credential {name}", f"valid for {human_duration(target.expires_at - now)}"))
    return findings
