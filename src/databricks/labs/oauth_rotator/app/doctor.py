"""`doctor`: every reason a `psql` login could still fail, each with what to do about it.

Runs the checks, grouped by subject in their own modules, in the order a person should read them: the config,
the login and each target (`doctor_auth`), what Lakebase would refuse or ignore (`doctor_lakebase`), who may
replace each file, the `.pgpass` file and the credentials in it (`doctor_files`), libpq and its environment
(`doctor_client`), the background service (`doctor_service`), and the pgbouncer front when there is one
(`doctor_front`). Collaborators are passed in, so tests run it against the fake workspace and a recording command
runner.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.app.doctor_auth import WorkspaceClientFactory, check_workspace
from databricks.labs.oauth_rotator.app.doctor_client import check_environment, check_libpq, libpq_cuts_long_lines
from databricks.labs.oauth_rotator.app.doctor_files import (
    check_credentials,
    check_permissions,
    check_pgpass,
    guarded_files,
)
from databricks.labs.oauth_rotator.app.doctor_findings import FAIL, OK, WARN, Finding, message_of, print_findings
from databricks.labs.oauth_rotator.app.doctor_front import check_front
from databricks.labs.oauth_rotator.app.doctor_lakebase import check_lakebase
from databricks.labs.oauth_rotator.app.doctor_service import check_service
from databricks.labs.oauth_rotator.app.rotate import pgpass_path_for
from databricks.labs.oauth_rotator.config import RotatorConfig
from databricks.labs.oauth_rotator.deadlines import DOCTOR_DEADLINE_SECONDS
from databricks.labs.oauth_rotator.errors import RotatorError
from databricks.labs.oauth_rotator.files.config_store import load_config
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status
from databricks.labs.oauth_rotator.service import CommandRunner, ServiceManager, default_runner, for_platform
from databricks.labs.oauth_rotator.trust import UntrustedPathError

__all__ = [
    "FAIL",
    "OK",
    "WARN",
    "Doctor",
    "Finding",
    "check_front",
    "check_installation",
    "libpq_cuts_long_lines",
    "print_findings",
]


class Doctor:
    """Runs the checks; `run()` returns the findings in the order a person should read them."""

    def __init__(
        self,
        config_path: Path,
        *,
        workspace_client_factory: WorkspaceClientFactory,
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
        """Every check, each subject's findings together."""
        config, found = self._check_config()
        self.findings = [found]
        if config is not None:
            self.findings.extend(check_workspace(config, self._workspace_client, self._deadline))
            self.findings.extend(check_lakebase(config))
        status = self._load_status()
        files = guarded_files(self._config_path, config, self._state.path, self._environ)
        self.findings.extend(check_permissions(files, self._environ))
        pgpass_file = pgpass_path_for(config) if config else paths.default_pgpass_path(self._environ)
        self.findings.extend(check_pgpass(pgpass_file, status, platform=self._platform))
        self.findings.extend(check_credentials(status, self._now()))
        self.findings.extend(check_environment(config, self._environ))
        self.findings.append(check_libpq(self._runner))
        self.findings.extend(
            check_service(
                self._manager_factory, config, platform=self._platform, runner=self._runner, environ=self._environ
            )
        )
        if config is not None and config.front is not None:
            self.findings.extend(check_front(config, status))
        return self.findings

    def _check_config(self) -> tuple[RotatorConfig | None, Finding]:
        try:
            config = load_config(self._config_path)
        except RotatorError as err:
            fix = err.fix or "run `databricks labs oauth-rotator configure`"
            return None, Finding(FAIL, "config", message_of(err), fix)
        profile = f"profile {config.profile}" if config.profile else "no profile (the environment's login)"
        return config, Finding(OK, "config", f"{self._config_path}: {len(config.targets)} target(s), {profile}")

    def _load_status(self) -> Status:
        try:
            return self._state.load()
        except UntrustedPathError:
            return Status()  # `permissions` says why and how to fix it


def check_installation(config_path: Path | None = None) -> list[Finding]:
    """`doctor` for the saved config (or `config_path`), with this machine's login, status file and service."""
    from databricks.labs.oauth_rotator.lakebase.workspace import pinned_workspace_client

    checks = Doctor(
        config_path or paths.default_config_file(),
        workspace_client_factory=lambda config: pinned_workspace_client(config.profile, host=config.workspace_url),
        state=StateStore(paths.status_file()),
    )
    return checks.run()
