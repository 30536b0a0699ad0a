"""The background service: install (or update) and start it for a saved config, restart it, and uninstall it,
optionally taking oauth-rotator's lines out of `.pgpass`. Every entry point (the labs commands, the console
scripts, the installer and the uninstall hook) does these through here.

The service package, `files`, `pgpass` and `state` are imported in the functions that use them, so that an
entry point that only shows status loads none of them.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: `databricks-oauth-status` does without typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from databricks.labs.oauth_rotator.app.request import RotationRequest
    from databricks.labs.oauth_rotator.config import RotatorConfig
    from databricks.labs.oauth_rotator.service import ServiceManager, ServiceSpec


LINES_STAY = "oauth-rotator's .pgpass lines stay (their credentials expire within the hour)."


NO_PROFILE_NOTICE = (
    "The config names no profile, so the service logs in the way `databricks` does without one (the DEFAULT "
    "profile of ~/.databrickscfg): logins passed in environment variables are never copied into a service. "
    "Put them in a ~/.databrickscfg profile and run `databricks labs oauth-rotator configure` (or "
    "`databricks-oauth-install --profile NAME ...`) to pin it."
)


def service_spec(config: RotatorConfig, config_path: Path, environ: Mapping[str, str] | None = None) -> ServiceSpec:
    """What the service runs: this interpreter, the saved config and its profile name, never a secret."""
    from pathlib import Path

    from databricks.labs.oauth_rotator.service import ServiceSpec

    return ServiceSpec.create(
        Path(os.path.abspath(config_path)),
        profile=config.profile,
        source_environ=os.environ if environ is None else environ,
    )


def install_service(
    config: RotatorConfig, config_path: Path, *, manager: ServiceManager, environ: Mapping[str, str] | None = None
) -> str:
    """Install (or update in place) and start the service for a saved config; returns what was done."""
    from databricks.labs.oauth_rotator.app.preflight import preflight

    # A service that could never write its files, or whose front could never start, is refused now (exit 2), not
    # restarted for ever.
    preflight(config, environ=environ)
    return _install_checked(config, config_path, manager=manager, environ=environ)


def _install_checked(
    config: RotatorConfig, config_path: Path, *, manager: ServiceManager, environ: Mapping[str, str] | None
) -> str:
    message = manager.install(service_spec(config, config_path, environ))
    return message if config.profile else f"{message}\n{NO_PROFILE_NOTICE}"


def restart_service(manager: ServiceManager) -> str:
    from databricks.labs.oauth_rotator.service import ServiceError

    try:
        installed = manager.status().installed
    except ServiceError:
        if manager.definition_path.exists():
            raise
        installed = False  # the OS cannot be asked (no user manager), and there is no definition either
    if not installed:
        raise ServiceError("the background service is not installed", fix="run `databricks labs oauth-rotator install`")
    manager.restart()
    return "Restarted the background service."


def uninstall_service(
    manager: ServiceManager, *, purge: bool, environ: Mapping[str, str] | None = None, purge_flag: str = "--purge true"
) -> str:
    """Stop and remove the service; with `purge`, also take oauth-rotator's lines out of `.pgpass`."""
    messages = [manager.uninstall()]
    if purge:
        messages.append(purge_pgpass_lines(environ))
    else:
        messages.append(f"{LINES_STAY} `{purge_flag}` removes them.")
    return "\n".join(messages)


def purge_pgpass_lines(environ: Mapping[str, str] | None = None) -> str:
    """Remove the `.pgpass` lines `status.json` records as ours (every other byte stays), then the status file."""
    from pathlib import Path

    from databricks.labs.oauth_rotator import paths
    from databricks.labs.oauth_rotator.files import pgpass, writer
    from databricks.labs.oauth_rotator.rotation.state import StateStore

    store = StateStore(paths.status_file(environ))
    status = store.load()
    keys = sorted({(k[0], k[1], k[2], k[3]) for t in status.targets.values() for k in t.keys if len(k) == 4})
    path = Path(status.pgpass_file) if status.pgpass_file else paths.default_pgpass_path(environ)
    removed = 0

    def transform(old: bytes) -> bytes:
        nonlocal removed
        removed = sum(1 for line in pgpass.parse(old) if line.entry is not None and line.entry.key in keys)
        return pgpass.merge(old, [], remove=keys)

    if keys and path.exists():
        writer.update_file(path, transform)
    store.path.unlink(missing_ok=True)
    if not keys:
        return "No .pgpass lines are recorded as oauth-rotator's; nothing to remove."
    return f"Removed {removed} line(s) of oauth-rotator's from {path}."


def save_and_install(
    request: RotationRequest, *, environ: Mapping[str, str], manager: ServiceManager
) -> tuple[Path, str]:
    """`databricks-oauth-install`: the config from the request saved (with `service: true`), then the service
    installed and started for it; returns where the config went and what was done."""
    from dataclasses import replace

    from databricks.labs.oauth_rotator.app.preflight import preflight
    from databricks.labs.oauth_rotator.files.config_store import effective_config, save_config
    from databricks.labs.oauth_rotator.paths import default_config_file

    default = default_config_file(environ)
    base = request.config_path or (default if default.is_file() else None)
    config = replace(effective_config(base, request.overrides), service=True)
    preflight(config, environ=environ)  # before the config is saved: nothing written for a setup that cannot work
    path = save_config(config, request.config_path or default)
    return path, _install_checked(config, path, manager=manager, environ=environ)
