"""What the background service runs, and the interface every OS's service manager implements.

A `ServiceSpec` says what to run; a `ServiceManager` writes the OS's definition for it (a systemd user unit, a
launchd agent, a Task Scheduler task) and drives the OS's own tool through an injected `CommandRunner`, so tests
assert the exact commands without touching the machine. Nothing in this package imports the Databricks SDK.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import MappingProxyType
from typing import Protocol

from databricks.labs.oauth_rotator.errors import ConfigError, FileWriteError, RotatorError
from databricks.labs.oauth_rotator.files.writer import make_private_directories
from databricks.labs.oauth_rotator.secrets import is_secret_name, looks_secret

logger = logging.getLogger(__name__)

MODULE = "databricks.labs.oauth_rotator"
STDOUT_LOG_NAME = ".databricks_oauth_rotator_stdout.log"
STDERR_LOG_NAME = ".databricks_oauth_rotator_stderr.log"
"""Where a definition that cannot load an environment file itself (launchd) tells the daemon to find it."""
COMMAND_TIMEOUT_SECONDS = 60

# Paths (never secrets) that change where the daemon reads and writes; services start with a minimal environment.
_FORWARDED = ("PGPASSFILE", "DATABRICKS_CONFIG_FILE", "DATABRICKS_LABS_CONFIG_DIR", "DATABRICKS_LABS_STATE_DIR")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_OUTPUT = 2000


class ServiceError(RotatorError):
    """The OS's service tool (systemctl, launchctl, schtasks) failed; the message carries the command and output."""

    exit_code = 1
    needs_person = True

    def __init__(
        self,
        message: str,
        *,
        command: Sequence[str] = (),
        returncode: int | None = None,
        output: str = "",
        fix: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        self.command = tuple(command)
        self.returncode = returncode
        self.output = output

    @classmethod
    def from_result(
        cls, argv: Sequence[str], result: subprocess.CompletedProcess[str], *, fix: str | None = None
    ) -> ServiceError:
        """The error for a command that exited non-zero, quoting its stderr and stdout."""
        parts = [text.strip() for text in (result.stderr, result.stdout) if text and text.strip()]
        output = "\n".join(parts)[:_MAX_OUTPUT]
        message = f"`{shlex.join(argv)}` failed with exit code {result.returncode}: {output or '(no output)'}"
        return cls(message, command=argv, returncode=result.returncode, output=output, fix=fix)


class CommandRunner(Protocol):
    """Runs one command (an argv, never a shell string) and returns its exit code and text output."""

    def __call__(self, argv: Sequence[str], /) -> subprocess.CompletedProcess[str]: ...


def default_runner(argv: Sequence[str], /) -> subprocess.CompletedProcess[str]:
    """`subprocess.run` without a shell, with captured text output and a timeout; a missing tool is a ServiceError."""
    command = list(argv)
    try:
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,  # never wait for a prompt (polkit, a pager)
            capture_output=True,
            text=True,
            errors="replace",
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise ServiceError(f"`{shlex.join(command)}` did not finish within {e.timeout} s", command=command) from e
    except OSError as e:
        raise ServiceError(f"`{shlex.join(command)}` could not run: {e}", command=command) from e


@dataclass(frozen=True)
class ServiceSpec:
    """What the background service runs: the interpreter, the saved config, a profile name, and where output goes.

    `environment` holds non-secret variables only (paths, a profile *name*); secrets live in a ~/.databrickscfg
    profile or in `env_file`, a 0600 file that the definition references by path and never inlines.
    Build one with `ServiceSpec.create(...)` for the defaults. Raises ConfigError for a secret-looking variable,
    a relative path, or a value with control characters (no definition format can carry them safely).
    """

    python: str
    config_path: Path
    profile: str | None
    home: Path
    stdout_log: Path
    stderr_log: Path
    environment: Mapping[str, str] = field(default_factory=dict)
    env_file: Path | None = None

    def __post_init__(self) -> None:
        # Freeze the mapping too, so a spec cannot change after it was validated.
        object.__setattr__(self, "environment", MappingProxyType(dict(self.environment)))
        _check_absolute("python", self.python)
        for name in ("config_path", "home", "stdout_log", "stderr_log", "env_file"):
            value = getattr(self, name)
            if value is not None:
                _check_absolute(name, str(value))
        if self.profile is not None:
            _check_text("profile", self.profile)
            if not self.profile.strip():
                raise ConfigError("profile: empty profile name")
        _check_environment(self.environment)
        self._check_consistent()

    @classmethod
    def create(
        cls,
        config_path: Path,
        *,
        profile: str | None = None,
        python: str | None = None,
        home: Path | None = None,
        environment: Mapping[str, str] | None = None,
        env_file: Path | None = None,
        cli_path: str | None = None,
        source_environ: Mapping[str, str] | None = None,
    ) -> ServiceSpec:
        """A spec with the defaults: `sys.executable`, logs in the home directory, the Databricks CLI's path.

        `cli_path` defaults to `shutil.which("databricks")` (services get a minimal PATH: launchd's lacks
        Homebrew); pass "" to leave DATABRICKS_CLI_PATH out. PGPASSFILE, DATABRICKS_CONFIG_FILE and
        DATABRICKS_LABS_{CONFIG,STATE}_DIR are copied from `source_environ` (default `os.environ`) when set;
        `environment` adds or overrides variables.
        """
        home = home if home is not None else Path.home()
        source = os.environ if source_environ is None else source_environ
        merged = {key: source[key] for key in _FORWARDED if source.get(key)}
        cli = cli_path if cli_path is not None else shutil.which("databricks")
        if cli:
            merged["DATABRICKS_CLI_PATH"] = cli
        merged.update(environment or {})
        return cls(
            python=python if python is not None else sys.executable,
            config_path=config_path,
            profile=profile,
            home=home,
            stdout_log=home / STDOUT_LOG_NAME,
            stderr_log=home / STDERR_LOG_NAME,
            environment=merged,
            env_file=env_file,
        )

    @property
    def argv(self) -> list[str]:
        """The daemon's command line: `python -m databricks.labs.oauth_rotator run --config <config_path>`."""
        return [self.python, "-m", MODULE, "run", "--config", str(self.config_path)]

    @property
    def service_environment(self) -> dict[str, str]:
        """Every variable a definition sets, sorted: HOME, the pinned profile name, then `environment`."""
        merged = {"HOME": str(self.home)}
        if self.profile is not None:
            merged["DATABRICKS_CONFIG_PROFILE"] = self.profile
        merged.update(self.environment)
        return dict(sorted(merged.items()))

    def _check_consistent(self) -> None:
        home = self.environment.get("HOME")
        if home is not None and home != str(self.home):
            raise ConfigError(f"environment: HOME={home!r} differs from home={str(self.home)!r}")
        pinned = self.environment.get("DATABRICKS_CONFIG_PROFILE")
        if pinned is not None and pinned != self.profile:
            raise ConfigError(
                f"environment: DATABRICKS_CONFIG_PROFILE={pinned!r} differs from profile={self.profile!r}",
                fix="set the profile field instead",
            )


def _check_text(name: str, value: str) -> None:
    if _CONTROL.search(value):
        raise ConfigError(f"{name}: control characters (newline, tab, NUL...) cannot go in a service definition")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:  # an undecodable file name smuggled in through surrogateescape
        raise ConfigError(f"{name}: not valid text: {value!r}") from e


def _check_absolute(name: str, value: str) -> None:
    _check_text(name, value)
    # Services start in / (launchd) or a home directory, so relative paths would point elsewhere.
    if not (PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute()):
        raise ConfigError(f"{name}: must be an absolute path, got {value!r}")


def _check_environment(environment: Mapping[str, str]) -> None:
    for key, value in environment.items():
        if not _ENV_KEY.match(key):
            raise ConfigError(f"environment: invalid variable name {key!r}")
        if is_secret_name(key) or looks_secret(value):
            raise ConfigError(
                f"environment: {key} looks like a secret, and service definitions are readable by other tools",
                fix="keep secrets in a ~/.databrickscfg profile or in the 0600 env_file; pass only the profile name",
            )
        _check_text(f"environment {key}", value)


@dataclass(frozen=True)
class ServiceStatus:
    """What the OS says about the service. `last_exit_code` is None when unknown or when it never exited."""

    installed: bool
    running: bool
    pid: int | None = None
    last_exit_code: int | None = None
    detail: str = ""


class ServiceManager(ABC):
    """Installs, drives and inspects the background service on one OS.

    `install` is idempotent (a second call updates the definition in place and restarts a running service);
    `uninstall` of a service that is not installed is a no-op that says so. Both return a message for the user.
    Failures of the OS's tool raise ServiceError with the command and its output.
    """

    def __init__(self, runner: CommandRunner = default_runner, *, home: Path | None = None) -> None:
        self._runner = runner
        self._home = home if home is not None else Path.home()

    @property
    @abstractmethod
    def definition_path(self) -> Path:
        """Where the definition (unit, plist, task XML) is written."""

    @abstractmethod
    def render(self, spec: ServiceSpec) -> bytes:
        """The exact bytes `install` writes to `definition_path` for `spec`."""

    @abstractmethod
    def install(self, spec: ServiceSpec) -> str:
        """Write the definition, register it with the OS and (re)start the service."""

    @abstractmethod
    def uninstall(self) -> str:
        """Stop the service, unregister it and remove the definition."""

    @abstractmethod
    def restart(self) -> None:
        """Stop and start the service, clearing a failed state where the OS keeps one."""

    @abstractmethod
    def status(self) -> ServiceStatus:
        """Ask the OS whether the service is installed and running."""

    def _run(self, argv: Sequence[str], *, fix: str | None = None) -> subprocess.CompletedProcess[str]:
        result = self._runner(argv)
        if result.returncode != 0:
            raise ServiceError.from_result(argv, result, fix=fix)
        return result


def prepare_log_files(spec: ServiceSpec) -> None:
    """Create the log files (0600) and their directories (0700) if missing.

    systemd and launchd open these files themselves and fail the job if the directory is missing; created here,
    the files are private whatever mode the OS would have used. Existing files are left as they are.
    """
    for path in dict.fromkeys((spec.stdout_log, spec.stderr_log)):
        try:
            make_private_directories(path.parent)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        except OSError as e:
            raise FileWriteError(f"could not create the service log {path}: {e}") from e


def tail_lines(path: Path, lines: int, block_size: int = 65536) -> list[str]:
    """The last `lines` lines of a file, read backwards in blocks (launchd never rotates its log files)."""
    if lines <= 0:
        return []
    with path.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        data = b""
        while end > 0 and data.count(b"\n") <= lines:
            step = min(block_size, end)
            end -= step
            f.seek(end)
            data = f.read(step) + data
    return data.decode("utf-8", errors="replace").splitlines()[-lines:]


class MockServiceManager(ServiceManager):
    """An in-memory service manager for other modules' tests: records calls, keeps state, can fail on demand.

    `calls` lists method names in call order; `spec` is the installed spec (None when not installed);
    `failures` maps a method name to the error that method raises.
    """

    def __init__(
        self,
        *,
        spec: ServiceSpec | None = None,
        running: bool = False,
        failures: Mapping[str, Exception] | None = None,
    ) -> None:
        super().__init__(home=spec.home if spec else Path("/mock-home"))
        self.spec = spec
        self.running = running
        self.failures = dict(failures or {})
        self.calls: list[str] = []

    @property
    def definition_path(self) -> Path:
        return self._home / "mock-service-definition"

    def render(self, spec: ServiceSpec) -> bytes:
        return shlex.join(spec.argv).encode("utf-8")

    def install(self, spec: ServiceSpec) -> str:
        self._call("install")
        updated = self.spec is not None
        self.spec, self.running = spec, True
        return f"{'Updated' if updated else 'Installed'} and started the mock service."

    def uninstall(self) -> str:
        self._call("uninstall")
        if self.spec is None:
            return "The mock service is not installed; nothing to do."
        self.spec, self.running = None, False
        return "Uninstalled the mock service."

    def restart(self) -> None:
        self._call("restart", needs_install=True)
        self.running = True

    def status(self) -> ServiceStatus:
        self._call("status")
        state = "running" if self.running else "stopped"
        return ServiceStatus(self.spec is not None, self.running, 4242 if self.running else None, None, state)

    def _call(self, name: str, *, needs_install: bool = False) -> None:
        self.calls.append(name)
        failure = self.failures.get(name)
        if failure is not None:
            raise failure
        if needs_install and self.spec is None:
            raise ServiceError(f"mock service: cannot {name}, not installed", command=["mock", name])
