"""The background service as a launchd LaunchAgent, driven with `launchctl bootstrap/bootout/kickstart/print`.

The plist is generated with `plistlib`, which escapes XML; the deprecated `launchctl load/unload` is never used.
"""

from __future__ import annotations

import logging
import os
import plistlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from databricks.labs.oauth_rotator.files.writer import write_public
from databricks.labs.oauth_rotator.paths import ENV_FILE_VARIABLE
from databricks.labs.oauth_rotator.service.base import (
    CommandRunner,
    ServiceError,
    ServiceManager,
    ServiceSpec,
    ServiceStatus,
    default_runner,
    prepare_log_files,
)

logger = logging.getLogger(__name__)

LABEL = "com.databricks.labs.oauth-rotator"
# launchctl's exit codes: 3 (ESRCH, "No such process") and 113 ("Could not find service") mean "not loaded";
# 5 (EIO) and 37 (EALREADY) right after a bootout mean the old job is still being torn down.
_NOT_LOADED = frozenset({3, 113})
_BUSY = frozenset({5, 37})
_BOOTSTRAP_ATTEMPTS = 4
_RETRY_SECONDS = 0.5


def plist_document(spec: ServiceSpec) -> dict[str, Any]:
    """The LaunchAgent as a plist dictionary; it holds paths and a profile name, never a secret."""
    environment = spec.service_environment
    if spec.env_file is not None:
        # launchd cannot load an environment file; the daemon reads the 0600 file named here at start-up.
        environment[ENV_FILE_VARIABLE] = str(spec.env_file)
    return {
        "Label": LABEL,
        "ProgramArguments": spec.argv,
        "EnvironmentVariables": environment,
        "WorkingDirectory": str(spec.home),  # launchd starts jobs in /
        "RunAtLoad": True,
        # Restart only after a failure: a clean exit (a configuration error reported once) must not loop.
        "KeepAlive": {"SuccessfulExit": False},
        "ProcessType": "Background",
        "ThrottleInterval": 30,
        "StandardOutPath": str(spec.stdout_log),
        "StandardErrorPath": str(spec.stderr_log),
        "Umask": 0o077,
    }


def render_plist(spec: ServiceSpec) -> bytes:
    """The plist file for `spec` (XML, keys sorted)."""
    return plistlib.dumps(plist_document(spec), fmt=plistlib.PlistFormat.FMT_XML)


def extract_argv(plist: bytes) -> list[str]:
    """The argv launchd runs for a plist: its ProgramArguments."""
    return list(plistlib.loads(plist)["ProgramArguments"])


def parse_print(text: str) -> ServiceStatus:
    """The state, pid and last exit code from `launchctl print gui/<uid>/<label>` output."""
    state = _first(r"^\s*state = (.+)$", text) or "unknown"
    pid = _first(r"^\s*pid = (\d+)$", text)
    exit_code = _first(r"^\s*last exit code = (-?\d+)", text)
    return ServiceStatus(
        installed=True,
        running=state == "running",
        pid=int(pid) if pid else None,
        last_exit_code=int(exit_code) if exit_code else None,
        detail=f"state = {state}",
    )


def _first(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, flags=re.MULTILINE)
    return match.group(1).strip() if match else None


class LaunchdServiceManager(ServiceManager):
    """The service as `~/Library/LaunchAgents/com.databricks.labs.oauth-rotator.plist` in the `gui/<uid>` domain."""

    def __init__(
        self,
        runner: CommandRunner = default_runner,
        *,
        home: Path | None = None,
        uid: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(runner, home=home)
        self._uid = uid
        self._sleep = sleep

    @property
    def definition_path(self) -> Path:
        return self._home / "Library" / "LaunchAgents" / f"{LABEL}.plist"

    @property
    def domain(self) -> str:
        """The launchd domain of the logged-in user, `gui/<uid>`."""
        uid = self._uid if self._uid is not None else os.getuid()
        return f"gui/{uid}"

    @property
    def target(self) -> str:
        """The service target, `gui/<uid>/<label>`."""
        return f"{self.domain}/{LABEL}"

    def render(self, spec: ServiceSpec) -> bytes:
        return render_plist(spec)

    def install(self, spec: ServiceSpec) -> str:
        data = self.render(spec)
        existed = self.definition_path.exists()
        write_public(self.definition_path, data, mode=0o644)
        prepare_log_files(spec)
        # bootstrap refuses a label that is already loaded, so an update unloads the old job first.
        self._bootout()
        self._bootstrap()
        verb = "Updated" if existed else "Installed"
        return f"{verb} {self.definition_path} and started {self.target}."

    def uninstall(self) -> str:
        if not self.definition_path.exists():
            # A job loaded from a plist that was deleted by hand still runs: unload it, quietly if that fails.
            if self._runner(["launchctl", "bootout", self.target]).returncode == 0:
                return f"Stopped {self.target}; {self.definition_path} did not exist."
            message = f"{LABEL} is not installed ({self.definition_path} does not exist); nothing to do."
            logger.info(message)
            return message
        self._bootout()
        self.definition_path.unlink(missing_ok=True)
        return f"Stopped {self.target} and removed {self.definition_path}."

    def restart(self) -> None:
        if self._is_loaded():
            self._launchctl("kickstart", "-k", self.target)
        else:
            self._bootstrap()

    def status(self) -> ServiceStatus:
        installed = self.definition_path.exists()
        result = self._runner(["launchctl", "print", self.target])
        if result.returncode in _NOT_LOADED:
            return ServiceStatus(installed=installed, running=False, detail="not loaded")
        if result.returncode != 0:
            raise ServiceError.from_result(["launchctl", "print", self.target], result)
        parsed = parse_print(result.stdout)
        return ServiceStatus(installed, parsed.running, parsed.pid, parsed.last_exit_code, parsed.detail)

    def _is_loaded(self) -> bool:
        return self._runner(["launchctl", "print", self.target]).returncode == 0

    def _bootout(self) -> bool:
        """Unload the job; False when it was not loaded (not an error here)."""
        argv = ["launchctl", "bootout", self.target]
        result = self._runner(argv)
        if result.returncode in _NOT_LOADED:
            return False
        if result.returncode != 0:
            raise ServiceError.from_result(argv, result)
        return True

    def _bootstrap(self) -> None:
        argv = ["launchctl", "bootstrap", self.domain, str(self.definition_path)]
        fix = f"check the plist with `plutil -lint {self.definition_path}` and `launchctl print {self.target}`"
        for attempt in range(1, _BOOTSTRAP_ATTEMPTS + 1):
            result = self._runner(argv)
            if result.returncode == 0:
                return
            if result.returncode not in _BUSY or attempt == _BOOTSTRAP_ATTEMPTS:
                raise ServiceError.from_result(argv, result, fix=fix)
            # bootout returns before the old job is gone; bootstrap then fails with EIO for a short while.
            self._sleep(_RETRY_SECONDS * attempt)

    def _launchctl(self, *args: str) -> None:
        self._run(["launchctl", *args], fix=f"reinstall with `databricks labs oauth-rotator install` ({self.target})")
