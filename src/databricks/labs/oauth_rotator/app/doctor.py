"""`doctor`: every reason a `psql` login could still fail, each with what to do about it.

Checks the config, the login, each target, the `.pgpass` file (mode, owner, shadowing lines, lost or expired
credentials), `PGPASSWORD` and `PGPASSFILE`, the libpq version, and the background service. Collaborators are
passed in, so tests run it against the fake workspace and a recording command runner.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.app.rotate import pgpass_path_for
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.deadlines import DOCTOR_DEADLINE_SECONDS, map_on_daemon_threads, run_with_deadline
from databricks.labs.oauth_rotator.errors import CredentialError, RotatorError
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.files.config_store import load_config
from databricks.labs.oauth_rotator.lakebase.catalog import LakebaseCatalog
from databricks.labs.oauth_rotator.lakebase.credentials import WorkspaceToken, classify_sdk_error
from databricks.labs.oauth_rotator.lakebase.targets import resolve_host
from databricks.labs.oauth_rotator.lakebase.workspace import auth_type_in_use, current_user_name
from databricks.labs.oauth_rotator.rotation.cycle import MAX_CONCURRENT_FETCHES
from databricks.labs.oauth_rotator.rotation.front import Front
from databricks.labs.oauth_rotator.rotation.front_report import front_findings
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status
from databricks.labs.oauth_rotator.service import CommandRunner, ServiceManager, default_runner, for_platform
from databricks.labs.oauth_rotator.text import human_duration, one_line, printable
from databricks.labs.oauth_rotator.trust import UntrustedPathError, check_trusted

logger = logging.getLogger(__name__)

OK, WARN, FAIL = "OK", "WARN", "FAIL"
# The 2020 minor releases that lifted libpq's 320-byte limit on a .pgpass line; 13.0 and later never had it.
LONG_LINE_FIXED = {(9, 5): 23, (9, 6): 19, (10, 0): 14, (11, 0): 9, (12, 0): 4}
_PSQL_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?")


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


class Doctor:
    """Runs the checks; `run()` returns the findings in the order a person should read them."""

    def __init__(
        self,
        config_path: Path,
        *,
        workspace_client_factory: Callable[[RotatorConfig], WorkspaceClient],
        manager_factory: Callable[[], ServiceManager] = for_platform,
        state: StateStore,
        environ: Mapping[str, str] | None = None,
        runner: CommandRunner = default_runner,
        platform: str = sys.platform,
        now: Callable[[], float] = time.time,
        deadline: float = DOCTOR_DEADLINE_SECONDS,
    ) -> None:
        self._config_path = config_path
        self._workspace_client = workspace_client_factory
        self._manager_factory = manager_factory
        self._state = state
        self._environ = os.environ if environ is None else environ
        self._runner = runner
        self._platform = platform
        self._now = now
        self._deadline = deadline
        self.findings: list[Finding] = []

    def run(self) -> list[Finding]:
        self.findings = []
        config = self._check_config()
        if config is not None:
            self._check_workspace(config)
        status = self._load_status()
        self._check_permissions(config)
        self._check_pgpass(config, status)
        self._check_credentials(status)
        self._check_environment(config)
        self._check_libpq()
        self._check_service(config)
        if config is not None and config.front is not None:
            self.findings.extend(check_front(config, status))
        return self.findings

    def _add(self, level: str, check: str, message: str, fix: str | None = None) -> None:
        self.findings.append(Finding(level, check, message, fix))

    def _load_status(self) -> Status:
        try:
            return self._state.load()
        except UntrustedPathError:
            return Status()  # `permissions` says why and how to fix it

    def _check_permissions(self, config: RotatorConfig | None) -> None:
        """The StrictModes rule (`trust.py`) for every file a run reads or writes: each failure with its fix."""
        failed = False
        for what, path, for_write in self._guarded_files(config):
            try:
                check_trusted(path, for_write=for_write, environ=self._environ)
            except UntrustedPathError as err:
                failed = True
                self._add(FAIL, "permissions", f"{what}: {_message(err).removeprefix('unsafe permissions: ')}", err.fix)
        if not failed:
            self._add(OK, "permissions", "only you (or root) can replace the config, .pgpass, the log and the status")

    def _guarded_files(self, config: RotatorConfig | None) -> list[tuple[str, Path, bool]]:
        pgpass_file = pgpass_path_for(config, self._environ) if config else paths.default_pgpass_path(self._environ)
        real = Path(os.path.realpath(pgpass_file))
        files = [
            ("config", self._config_path, False),
            (".pgpass", pgpass_file, True),
            (".pgpass lock", real.with_name(real.name + ".lock"), True),
            ("status", self._state.path, True),
        ]
        if config is not None:
            files.append(("log", paths.log_path_for(config, self._environ), True))
            if config.pg_service:
                files.append(("pg_service.conf", paths.pg_service_path_for(config, self._environ), True))
        env_file = self._environ.get(paths.ENV_FILE_VARIABLE)
        if env_file:
            files.append((paths.ENV_FILE_VARIABLE, Path(env_file), False))
        return files

    def _check_config(self) -> RotatorConfig | None:
        try:
            config = load_config(self._config_path)
        except RotatorError as err:
            self._add(FAIL, "config", _message(err), err.fix or "run `databricks labs oauth-rotator configure`")
            return None
        profile = f"profile {config.profile}" if config.profile else "no profile (the environment's login)"
        self._add(OK, "config", f"{self._config_path}: {len(config.targets)} target(s), {profile}")
        return config

    def _check_workspace(self, config: RotatorConfig) -> None:
        """The login, then every target at once, all within one deadline: a workspace that never answers (or
        answers a byte a second) costs the deadline once, not once per check. Each target's check gives up when
        the deadline passes, so waiting for them all ends then too."""
        ends_at = time.monotonic() + self._deadline
        ws = self._check_login(config)
        if ws is None:
            return
        self.findings.extend(
            map_on_daemon_threads(
                lambda target: self._check_target(ws, target, ends_at),
                config.targets,
                limit=MAX_CONCURRENT_FETCHES,
                name="oauth-rotator-doctor",
            )
        )

    def _check_login(self, config: RotatorConfig) -> WorkspaceClient | None:
        def who_am_i() -> tuple[WorkspaceClient, str]:
            ws = self._workspace_client(config)
            return ws, current_user_name(ws)

        try:
            ws, me = run_with_deadline(who_am_i, self._deadline, what="login check")
        except RotatorError as err:
            self._add(FAIL, "login", _message(err), err.fix)
            return None
        self._add(OK, "login", f"authenticated as {me} at {ws.config.host} (auth type {auth_type_in_use(ws)})")
        return ws

    def _check_target(self, ws: WorkspaceClient, target: TargetConfig, ends_at: float) -> Finding:
        check = f"target {target.label}"
        seconds = max(0.0, ends_at - time.monotonic())
        try:
            level, message = run_with_deadline(lambda: self._describe(ws, target), seconds, what=check)
        except RotatorError as err:
            return Finding(FAIL, check, _message(err), err.fix)
        fix = None
        if level != OK:
            named = target.instance or target.endpoint
            fix = "start it in the workspace" if named else "set `instance` or `endpoint` for this target"
        return Finding(level, check, message, fix)

    def _describe(self, ws: WorkspaceClient, target: TargetConfig) -> tuple[str, str]:
        try:
            catalog = LakebaseCatalog(ws)
            if target.instance or target.endpoint:
                found = (
                    catalog.instance(target.instance) if target.instance else catalog.endpoint(target.endpoint or "")
                )
                where = printable(str(found.host))
                return (OK if found.ready else WARN), f"{found.description} is {printable(found.state)} at {where}"
            source = resolve_host(ws, target.host or "", now=lambda: datetime.now(timezone.utc))
        except DatabricksError as err:
            what = f"instance {target.instance}" if target.instance else f"endpoint {target.endpoint}"
            raise classify_sdk_error(err, what if target.instance or target.endpoint else str(target.host)) from err
        except OSError as err:  # the network, or the SDK's retries running out (TimeoutError)
            raise CredentialError(f"{type(err).__name__}: {one_line(str(err))}") from err
        if isinstance(source, WorkspaceToken):
            return WARN, (
                f"{target.host} matches no Lakebase instance or endpoint here: its password is the workspace token, "
                "which a Lakebase login may refuse"
            )
        return OK, f"{target.host} is served by {source.description}"

    def _check_pgpass(self, config: RotatorConfig | None, status: Status) -> None:
        path = pgpass_path_for(config) if config else paths.default_pgpass_path(self._environ)
        try:
            info = path.stat()
            data = path.read_bytes()
        except FileNotFoundError:
            self._add(WARN, ".pgpass", f"{path} does not exist yet", "run `databricks labs oauth-rotator rotate`")
            return
        except OSError as err:
            self._add(FAIL, ".pgpass", f"cannot read {path}: {err}")
            return
        if self._platform != "win32":
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o077:
                self._add(
                    FAIL,
                    ".pgpass",
                    f"{path} has mode {mode:04o}: libpq ignores a password file others can read",
                    f"chmod 600 {path}",
                )
            else:
                self._add(OK, ".pgpass", f"{path} has mode {mode:04o}")
            if hasattr(os, "getuid") and info.st_uid != os.getuid():
                self._add(WARN, ".pgpass", f"{path} belongs to uid {info.st_uid}, not to you", f"chown you {path}")
        keys = [tuple(k) for t in status.targets.values() for k in t.keys if len(k) == 4]
        entries = [pgpass.PgpassEntry(k[0], k[1], k[2], k[3], password="") for k in keys]
        shadows = pgpass.shadowed(data, entries)
        for shadow in shadows:
            self._add(
                WARN,
                "shadowing",
                f"{path}: {shadow.describe()}, so libpq never reads oauth-rotator's line",
                f"delete line {shadow.line} of {path}, or move it below oauth-rotator's lines",
            )
        for name in _lines_lost(status, data, {shadow.key for shadow in shadows}):
            self._add(
                WARN,
                f"credential {name}",
                f"its line is missing from {path}",
                "the service restores it within a minute; or run `databricks labs oauth-rotator rotate`",
            )

    def _check_credentials(self, status: Status) -> None:
        now = self._now()
        for name in sorted(status.targets):
            target = status.targets[name]
            if target.needs_person and target.last_error:
                self._add(FAIL, f"credential {name}", f"last rotation failed: {target.last_error}", target.fix)
            elif target.expires_at is not None and target.expires_at <= now:
                ago = human_duration(now - target.expires_at)
                self._add(
                    FAIL,
                    f"credential {name}",
                    f"the credential in .pgpass expired {ago} ago",
                    "run `databricks labs oauth-rotator rotate`, and check the service (`status`, `logs`)",
                )
            elif target.expires_at is not None:
                left = human_duration(target.expires_at - now)
                self._add(OK, f"credential {name}", f"valid for {left}")

    def _check_environment(self, config: RotatorConfig | None) -> None:
        if self._environ.get("PGPASSWORD") is not None:
            self._add(
                WARN,
                "PGPASSWORD",
                "is set in this environment: libpq then sends it and never reads .pgpass",
                "unset PGPASSWORD",
            )
        passfile = self._environ.get("PGPASSFILE")
        if passfile and config is not None and config.pgpass_file:
            configured = pgpass_path_for(config)
            if Path(os.path.expanduser(passfile)) != configured:
                self._add(
                    WARN,
                    "PGPASSFILE",
                    f"points libpq to {passfile}, but oauth-rotator writes {configured}",
                    "make them the same file, or unset PGPASSFILE",
                )

    def _check_libpq(self) -> None:
        try:
            result = self._runner(["psql", "--version"])
        except RotatorError:
            self._add(WARN, "libpq", "psql not found: cannot tell the libpq version", "install the PostgreSQL client")
            return
        version = result.stdout.strip()
        cuts = libpq_cuts_long_lines(version) if result.returncode == 0 else None
        if cuts is None:
            self._add(WARN, "libpq", f"cannot read the version from `psql --version`: {version or result.stderr}")
        elif cuts:
            self._add(
                FAIL,
                "libpq",
                f"{version}: this libpq truncates .pgpass lines at 320 bytes, and Lakebase credentials are longer",
                "upgrade the PostgreSQL client to 13+ (or 9.5.23, 9.6.19, 10.14, 11.9, 12.4 or later)",
            )
        else:
            self._add(OK, "libpq", version)

    def _check_service(self, config: RotatorConfig | None) -> None:
        try:
            manager = self._manager_factory()
            found = manager.status()
        except RotatorError as err:
            self._add(WARN, "service", f"cannot ask the OS about the service: {_message(err)}", err.fix)
            return
        if not found.installed:
            self._add(
                WARN,
                "service",
                "not installed: nothing refreshes .pgpass in the background",
                "run `databricks labs oauth-rotator install`",
            )
            return
        if not found.running:
            exit_code = f" (last exit code {found.last_exit_code})" if found.last_exit_code is not None else ""
            self._add(
                FAIL,
                "service",
                f"installed but not running{exit_code}: {found.detail}",
                "read `databricks labs oauth-rotator logs`, then `databricks labs oauth-rotator restart`",
            )
        else:
            self._add(OK, "service", f"running{f' (pid {found.pid})' if found.pid else ''}")
        if config is not None and not config.profile:
            self._add(
                WARN,
                "service",
                "the config names no profile: the service logs in with the DEFAULT profile of ~/.databrickscfg",
                "pin a profile with `databricks labs oauth-rotator configure`",
            )
        if self._platform.startswith("linux"):
            self._check_linger()

    def _check_linger(self) -> None:
        try:
            user = self._environ.get("USER") or getpass.getuser()
            result = self._runner(["loginctl", "show-user", user, "--property=Linger"])
        except (RotatorError, KeyError, OSError):
            return  # no logind, or no name for our uid: nothing to advise
        if result.returncode == 0 and result.stdout.strip() == "Linger=no":
            self._add(
                WARN,
                "linger",
                f"off for {user}: the service stops when your last session ends",
                f"on a headless host, run `loginctl enable-linger {user}`",
            )


def check_front(config: RotatorConfig, status: Status, *, timeout: float = 3.0) -> list[Finding]:
    """The pgbouncer front: installed, running, every credential on file short enough for it, the listener answers."""
    front = Front.of(config)
    return [Finding(*found) for found in front_findings(front, status, timeout=timeout)] if front else []


def _lines_lost(status: Status, data: bytes, shadowed: set[pgpass.Key]) -> list[str]:
    """The targets whose line is gone from `.pgpass`. A shadowed line of ours is there and reported as shadowed:
    libpq's lookup finds the earlier line's password instead, which alone would make ours look missing."""
    lost = []
    for name, target in status.targets.items():
        visible = [key for key in target.keys if tuple(key) not in shadowed]
        if target.fingerprint and replace(target, keys=visible).lines_lost(data):
            lost.append(name)
    return lost


def _message(err: RotatorError) -> str:
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


def check_installation(config_path: Path | None = None) -> list[Finding]:
    """`doctor` for the saved config (or `config_path`), with this machine's login, status file and service."""
    from databricks.labs.oauth_rotator.lakebase.workspace import pinned_workspace_client

    checks = Doctor(
        config_path or paths.default_config_file(),
        workspace_client_factory=lambda config: pinned_workspace_client(config.profile, host=config.workspace_url),
        state=StateStore(paths.status_file()),
    )
    return checks.run()
