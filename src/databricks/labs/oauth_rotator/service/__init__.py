"""The background service: a systemd user unit (Linux), a launchd agent (macOS) or a logon task (Windows).

`for_platform()` picks the manager for this OS; `MockServiceManager` stands in for it in tests. Every manager
renders its definition from a `ServiceSpec` on any OS, so definitions are tested everywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

from databricks.labs.oauth_rotator.service.base import (
    CommandRunner,
    MockServiceManager,
    ServiceError,
    ServiceManager,
    ServiceSpec,
    ServiceStatus,
    default_runner,
)
from databricks.labs.oauth_rotator.service.launchd import LaunchdServiceManager
from databricks.labs.oauth_rotator.service.systemd import SystemdServiceManager
from databricks.labs.oauth_rotator.service.windows import WindowsServiceManager

__all__ = [
    "CommandRunner",
    "LaunchdServiceManager",
    "MockServiceManager",
    "ServiceError",
    "ServiceManager",
    "ServiceSpec",
    "ServiceStatus",
    "SystemdServiceManager",
    "WindowsServiceManager",
    "default_runner",
    "for_platform",
]


def for_platform(
    platform: str = sys.platform, *, runner: CommandRunner = default_runner, home: Path | None = None
) -> ServiceManager:
    """The service manager for `platform` (a `sys.platform` value); ServiceError on any other OS.

    Leave `home` None in production: a manager given an explicit home (as tests do) also stops reading
    `os.environ` (XDG_CONFIG_HOME, USER, USERNAME), so it never touches the real user's files.
    """
    if platform.startswith("linux"):
        return SystemdServiceManager(runner, home=home)
    if platform == "darwin":
        return LaunchdServiceManager(runner, home=home)
    if platform in {"win32", "cygwin"}:
        return WindowsServiceManager(runner, home=home)
    raise ServiceError(
        f"no background service support on {platform}",
        fix="run `databricks labs oauth-rotator run` under your own process supervisor",
    )
