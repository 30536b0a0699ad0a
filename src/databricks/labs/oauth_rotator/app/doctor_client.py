"""`doctor`'s checks of the client side: the libpq version, and the variables that make libpq skip `.pgpass`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from databricks.labs.oauth_rotator.app.doctor_findings import FAIL, OK, WARN, Finding
from databricks.labs.oauth_rotator.app.rotate import pgpass_path_for
from databricks.labs.oauth_rotator.config import RotatorConfig
from databricks.labs.oauth_rotator.errors import RotatorError
from databricks.labs.oauth_rotator.service import CommandRunner

# The 2020 minor releases that lifted libpq's 320-byte limit on a .pgpass line; 13.0 and later never had it.
LONG_LINE_FIXED = {(9, 5): 23, (9, 6): 19, (10, 0): 14, (11, 0): 9, (12, 0): 4}
_PSQL_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def libpq_cuts_long_lines(version: str) -> bool | None:
    """Whether a `psql --version` line names a libpq that truncates `.pgpass` lines at 320 bytes (None: unknown)."""
    match = _PSQL_VERSION.search(version)
    if match is None:
        return None
    major, minor, patch = (int(part) if part else 0 for part in match.groups())
    if major >= 13:
        return False
    if major < 9 or (major == 9 and minor < 5):
        return True
    fixed = LONG_LINE_FIXED.get((major, minor) if major == 9 else (major, 0))
    installed = patch if major == 9 else minor
    return fixed is None or installed < fixed


def check_environment(config: RotatorConfig | None, environ: Mapping[str, str]) -> list[Finding]:
    """`PGPASSWORD` (libpq then never reads `.pgpass`) and a `PGPASSFILE` that is not the file we write."""
    findings = []
    if environ.get("PGPASSWORD") is not None:
        findings.append(
            Finding(
                WARN,
                "PGPASSWORD",
                "is set in this environment: libpq then sends it and never reads .pgpass",
                "unset PGPASSWORD",
            )
        )
    passfile = environ.get("PGPASSFILE")
    if passfile and config is not None and config.pgpass_file:
        configured = pgpass_path_for(config)
        if Path(os.path.expanduser(passfile)) != configured:
            findings.append(
                Finding(
                    WARN,
                    "PGPASSFILE",
                    f"points libpq to {passfile}, but oauth-rotator writes {configured}",
                    "make them the same file, or unset PGPASSFILE",
                )
            )
    return findings


def check_libpq(runner: CommandRunner) -> Finding:
    """The libpq version `psql --version` names, and whether it cuts Lakebase's long `.pgpass` lines."""
    try:
        result = runner(["psql", "--version"])
    except RotatorError:
        return Finding(WARN, "libpq", "psql not found: cannot tell the libpq version", "install the PostgreSQL client")
    version = result.stdout.strip()
    cuts = libpq_cuts_long_lines(version) if result.returncode == 0 else None
    if cuts is None:
        return Finding(WARN, "libpq", f"cannot read the version from `psql --version`: {version or result.stderr}")
    if cuts:
        return Finding(
            FAIL,
            "libpq",
            f"{version}: this libpq truncates .pgpass lines at 320 bytes, and Lakebase credentials are longer",
            "upgrade the PostgreSQL client to 13+ (or 9.5.23, 9.6.19, 10.14, 11.9, 12.4 or later)",
        )
    return Finding(OK, "libpq", version)
