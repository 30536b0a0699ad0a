"""The background service: a systemd user unit (Linux), a launchd agent (macOS) or a logon task (Windows).

`for_platform()` picks the manager for this OS; `MockServiceManager` stands in for it in tests. Every manager
renders its definition from a `ServiceSpec` on any OS, so definitions are tested everywhere.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from databricks.labs.oauth_rotator.service.base import (
    CommandRunner,
    MockServiceManager,
    ServiceError,
    ServiceManager,
    ServiceSpec,
    ServiceStatus,
    default_runner,
)

if TYPE_CHECKING:
    from databricks.labs.oauth_rotator.service.launchd import LaunchdServiceManager
    from databricks.labs.oauth_rotator.service.systemd import SystemdServiceManager
    from databricks.labs.oauth_rotator.service.windows import WindowsServiceManager

_MANAGERS = {
    "LaunchdServiceManager": "databricks.labs.oauth_rotator.service.launchd",
    "SystemdServiceManager": "databricks.labs.oauth_rotator.service.systemd",
    "WindowsServiceManager": "databricks.labs.oauth_rotator.service.windows",
}


def __getattr__(name: str) -> Any:
    # Each OS needs one manager: `status` should not pay for importing the other two (plistlib, xml.etree).
    if name not in _MANAGERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MANAGERS[name]), name)


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
        from databricks.labs.oauth_rotator.service.systemd import SystemdServiceManager

        return SystemdServiceManager(runner, home=home)
    if platform == "darwin":
        from databricks.labs.oauth_rotator.service.launchd import LaunchdServiceManager

        return LaunchdServiceManager(runner, home=home)
    if platform == "win32":
        from databricks.labs.oauth_rotator.service.windows import WindowsServiceManager

        return WindowsServiceManager(runner, home=home)
    if platform == "cygwin":
        # Cygwin's Python hands Task Scheduler POSIX paths (/cygdrive/c/...) that Windows cannot start.
        raise ServiceError(
            "no background service support under Cygwin",
            fix="install the rotator with a native Windows Python (python.org), or run it under your own supervisor",
        )
    raise ServiceError(
        f"no background service support on {platform}",
        fix="run `databricks labs oauth-rotator run` under your own process supervisor",
    )
