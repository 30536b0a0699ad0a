"""The installer prompts (`databricks labs install oauth-rotator`, `configure`): questions in, a saved config out.

The prompts, the workspace-client factory and the paths are passed in, so tests run the real questions with
blueprint's `MockPrompts` against the fake workspace, without patching anything.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from databricks.labs.blueprint.tui import Prompts
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files.config_store import load_config, save_config
from databricks.labs.oauth_rotator.lakebase.catalog import LakebaseCatalog
from databricks.labs.oauth_rotator.lakebase.workspace import (
    current_user_name,
    databrickscfg_profiles,
    login_profile,
    pinned_workspace_client,
)
from databricks.labs.oauth_rotator.names import DEFAULT_MARGIN_MINUTES
from databricks.labs.oauth_rotator.service import ServiceManager, for_platform
from databricks.labs.oauth_rotator.text import one_line, printable

logger = logging.getLogger(__name__)

WorkspaceClientFactory = Callable[[str | None], WorkspaceClient]
"""Builds the client for a profile name (None: the environment's auth, as the SDK resolves it)."""

NO_PROFILE = "none"
TYPE_A_HOST = "[type a host name]"


class Installer:
    """Asks for the profile, the databases, the Postgres user, the `.pgpass` file, the margin and the service.

    The current config's values are the defaults, so running it again and pressing Enter keeps everything.
    """

    def __init__(
        self,
        prompts: Prompts,
        workspace_client_factory: WorkspaceClientFactory,
        *,
        config_path: Path,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._prompts = prompts
        self._workspace_client = workspace_client_factory
        self._config_path = config_path
        self._environ = os.environ if environ is None else environ

    def run(self) -> RotatorConfig:
        """Ask every question, then check and save the config (0600); returns it."""
        current = self.current()
        profile = self._ask_profile(current)
        ws = self._workspace_client(profile)
        me = current_user_name(ws)  # fails here, clearly, when the login does not work
        logger.info(f"Authenticated as {me}" + (f" with profile {profile}" if profile else ""))
        targets = self._ask_targets(ws, current)
        user = self._ask_user(me, current)
        config = RotatorConfig(
            targets=[replace(t, user=user) for t in targets],
            profile=profile,
            workspace_url=current.workspace_url if current else None,
            pgpass_file=self._ask_pgpass(current),
            log_file=current.log_file if current else None,
            margin_minutes=self._ask_margin(current),
            interval_minutes=current.interval_minutes if current else None,
            credential_ttl_minutes=current.credential_ttl_minutes if current else None,
            service=self._yes_no(
                "Install the background service now?",
                default=current.service if current and current.service is not None else True,
            ),
        )
        save_config(config, self._config_path)
        return config

    def current(self) -> RotatorConfig | None:
        """The saved config, if there is a usable one; a broken one is reported and replaced."""
        if not self._config_path.exists():
            return None
        try:
            return load_config(self._config_path)
        except ConfigError as err:
            logger.warning(f"Ignoring the current config: {err}")
            return None

    def _ask_profile(self, current: RotatorConfig | None) -> str | None:
        default = login_profile(self._environ) or (current.profile if current else None) or NO_PROFILE
        known = databrickscfg_profiles(self._environ)
        listed = f"; profiles found: {', '.join(known)}" if known else ""
        answer = self._prompts.question(
            f"Databricks profile to authenticate with ('{NO_PROFILE}': the login in the environment{listed})",
            default=default,
        ).strip()
        return None if answer.lower() == NO_PROFILE else answer

    def _ask_targets(self, ws: WorkspaceClient, current: RotatorConfig | None) -> list[TargetConfig]:
        if current and current.targets:
            labels = ", ".join(t.label for t in current.targets)
            if self._yes_no(f"Keep the configured databases ({labels})?", default=True):
                return list(current.targets)
        options = dict(_choices(ws))
        if not options:
            logger.info("No Lakebase instance or endpoint is visible in this workspace: type a host name")
        chosen: list[TargetConfig] = []
        while True:
            remaining = [label for label, target in options.items() if target not in chosen]
            label = self._prompts.choice(
                "Which Lakebase database should oauth-rotator keep in .pgpass?", [*remaining, TYPE_A_HOST], sort=False
            )
            target = TargetConfig(host=self._ask_host()) if label == TYPE_A_HOST else options[label]
            if target.label not in {t.label for t in chosen}:
                chosen.append(target)
            if not self._yes_no("Add another database?", default=False):
                return chosen

    def _ask_host(self) -> str:
        return self._prompts.question(
            "Lakebase host name (e.g. instance-1234.database.cloud.databricks.com)",
            validate=lambda text: bool(text.strip()) and not any(c.isspace() for c in text.strip()),
        ).strip()

    def _ask_user(self, me: str, current: RotatorConfig | None) -> str:
        users = {t.user for t in current.targets} if current else set()
        shared = users.pop() if len(users) == 1 else None
        default = shared or me
        return self._prompts.question("PostgreSQL user name", default=default).strip()

    def _ask_pgpass(self, current: RotatorConfig | None) -> str:
        default = (current.pgpass_file if current else None) or str(paths.default_pgpass_path(self._environ))
        answer = self._prompts.question(
            "Password file to keep up to date",
            default=default,
            validate=lambda text: _usable_folder(Path(os.path.expanduser(text.strip())).parent, self._environ),
        ).strip()
        if not _usable_folder(Path(os.path.expanduser(answer)).parent, self._environ):
            raise ConfigError(f"pgpass file: directory {Path(os.path.expanduser(answer)).parent} does not exist")
        return answer

    def _ask_margin(self, current: RotatorConfig | None) -> int | float:
        margin = current.margin_minutes if current and current.margin_minutes is not None else DEFAULT_MARGIN_MINUTES
        answer = self._prompts.question(
            "Refresh when fewer than this many minutes of the 60-minute credential are left",
            default=f"{margin:g}",
            valid_number=True,
            validate=lambda text: text.isdigit() and 1 <= int(text) <= 59,
        )
        try:
            value = float(answer)
        except ValueError:
            raise ConfigError(f"margin: expected minutes, got {answer!r}") from None
        if not 1 <= value <= 59:
            raise ConfigError(f"margin: expected 1 to 59 minutes, got {answer}")
        return int(value) if value.is_integer() else value

    def _yes_no(self, text: str, *, default: bool) -> bool:
        answer = self._prompts.question(
            f"{text} (yes/no)", default="yes" if default else "no", valid_regex=r"(?i)^(y|yes|n|no)$"
        )
        return answer.strip().lower() in {"y", "yes"}


def _choices(ws: WorkspaceClient) -> Iterator[tuple[str, TargetConfig]]:
    """Every database the login can list, as the installer shows it; a product it cannot list is skipped."""
    catalog = LakebaseCatalog(ws)
    for listing, what in ((catalog.instances, "database instances"), (catalog.endpoints, "Lakebase projects")):
        try:
            for database in listing():
                where = f" ({printable(database.host)})" if database.host else ""
                yield f"{database.description}{where}", database.target()
        except (DatabricksError, OSError, ValueError) as err:  # no access, or Lakebase not enabled here
            logger.warning(f"Cannot list the workspace's {what}: {one_line(str(err))}")


def configure(
    prompts: Prompts,
    *,
    workspace_client_factory: WorkspaceClientFactory = pinned_workspace_client,
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    manager_factory: Callable[[], ServiceManager] = for_platform,
    out: TextIO | None = None,
) -> RotatorConfig:
    """`configure` and the install hook: the questions, the saved config, then the service if chosen."""
    from databricks.labs.oauth_rotator.app.doctor_lakebase import pooled_findings
    from databricks.labs.oauth_rotator.app.service import install_service

    out = out if out is not None else sys.stdout
    environ = os.environ if environ is None else environ
    config_path = config_path or paths.default_config_file(environ)
    config = Installer(prompts, workspace_client_factory, config_path=config_path, environ=environ).run()
    print(f"Saved {config_path}", file=out)
    for finding in pooled_findings(config):  # said now, not when the first login through those lines fails
        print(f"warning: {finding.check}: {finding.message}\n  fix: {finding.fix}", file=out)
    if config.service:
        print(install_service(config, config_path, manager=manager_factory(), environ=environ), file=out)
    else:
        print(
            "No background service: run `databricks labs oauth-rotator rotate` to refresh now, "
            "or `databricks labs oauth-rotator install` to keep .pgpass fresh in the background.",
            file=out,
        )
    return config


def keep(
    *,
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    manager_factory: Callable[[], ServiceManager] = for_platform,
    out: TextIO | None = None,
) -> RotatorConfig:
    """The install hook with no terminal to ask (`databricks labs upgrade` from a script): keep the saved config
    and, when it has the service, install it again so it runs the upgraded code."""
    from databricks.labs.oauth_rotator.app.service import install_service

    out = out if out is not None else sys.stdout
    environ = os.environ if environ is None else environ
    config_path = config_path or paths.default_config_file(environ)
    config = load_config(config_path)
    print(f"Kept {config_path} (no terminal to ask questions on; run `configure` to change it)", file=out)
    if config.service:
        print(install_service(config, config_path, manager=manager_factory(), environ=environ), file=out)
    return config


def _usable_folder(folder: Path, environ: Mapping[str, str]) -> bool:
    """An existing folder, or libpq's Windows folder (%APPDATA%\\postgresql), which the writer creates."""
    return folder.is_dir() or paths.creatable_folder(folder, environ)
