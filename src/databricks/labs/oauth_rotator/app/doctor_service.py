"""`doctor`'s checks of the background service: installed, running, logging in with a pinned profile, and (on
Linux) kept running when the user's last session ends."""

from __future__ import annotations

import getpass
from collections.abc import Callable, Mapping

from databricks.labs.oauth_rotator.app.doctor_findings import FAIL, OK, WARN, Finding, message_of
from databricks.labs.oauth_rotator.config import RotatorConfig
from databricks.labs.oauth_rotator.errors import RotatorError
from databricks.labs.oauth_rotator.service import CommandRunner, ServiceManager


def check_service(
    manager_factory: Callable[[], ServiceManager],
    config: RotatorConfig | None,
    *,
    platform: str,
    runner: CommandRunner,
    environ: Mapping[str, str],
) -> list[Finding]:
    """What the OS says about the service, with what to do when it is missing or stopped."""
    try:
        found = manager_factory().status()
    except RotatorError as err:
        return [Finding(WARN, "service", f"cannot ask the OS about the service: {message_of(err)}", err.fix)]
    if not found.installed:
        return [
            Finding(
                WARN,
                "service",
                "not installed: nothing refreshes .pgpass in the background",
                "run `databricks labs oauth-rotator install`",
            )
        ]
    if not found.running:
        exit_code = f" (last exit code {found.last_exit_code})" if found.last_exit_code is not None else ""
        findings = [
            Finding(
                FAIL,
                "service",
                f"installed but not running{exit_code}: {found.detail}",
                "read `databricks labs oauth-rotator logs`, then `databricks labs oauth-rotator restart`",
            )
        ]
    else:
        findings = [Finding(OK, "service", f"running{f' (pid {found.pid})' if found.pid else ''}")]
    if config is not None and not config.profile:
        findings.append(
            Finding(
                WARN,
                "service",
                "the config names no profile: the service logs in with the DEFAULT profile of ~/.databrickscfg",
                "pin a profile with `databricks labs oauth-rotator configure`",
            )
        )
    if platform.startswith("linux"):
        findings.extend(check_linger(runner, environ))
    return findings


def check_linger(runner: CommandRunner, environ: Mapping[str, str]) -> list[Finding]:
    """systemd stops a user's services with their last session unless lingering is on: advice for headless hosts."""
    try:
        user = environ.get("USER") or getpass.getuser()
        result = runner(["loginctl", "show-user", user, "--property=Linger"])
    except (RotatorError, KeyError, OSError):
        return []  # no logind, or no name for our uid: nothing to advise
    if result.returncode == 0 and result.stdout.strip() == "Linger=no":
        return [
            Finding(
                WARN,
                "linger",
                f"off for {user}: the service stops when your last session ends",
                f"on a headless host, run `loginctl enable-linger {user}`",
            )
        ]
    return []
