"""The pgbouncer front: one object for everything a rotation, the scheduler and `doctor` do with it.

Clients that take only a fixed user and password (BI tools, pgAdmin, tokio-postgres) log in to pgbouncer on the
loopback (port 6432) with a local password; pgbouncer logs in to Lakebase with the credential the cycle wrote into
its `[databases]` entry (`password=`), over TLS that checks Lakebase's certificate. `Front` is built once from the
config; a rotation calls `check` before anything is requested and `update` after `.pgpass` is written, the
scheduler asks it for its `supervisor`, `doctor` for its `findings`. The jobs live apart: the folder and how root
writes into it (`front_folder`), the files of a cycle (`front_files`), the process (`front_process`), the checks
(`front_checks`), the report (`front_report`); the ini's text is `files/pgbouncer_ini`.

Stdlib and our plain modules only: the scheduler imports this, and never the SDK.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from databricks.labs.oauth_rotator.config import PgbouncerConfig, RotatorConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.paths import pgbouncer_dir_for
from databricks.labs.oauth_rotator.rotation import front_checks, front_files, front_folder, front_process
from databricks.labs.oauth_rotator.rotation.front_files import FrontUpdate
from databricks.labs.oauth_rotator.rotation.front_folder import FrontFiles, ServiceUser
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status

logger = logging.getLogger(__name__)

__all__ = ["Front", "FrontFiles", "FrontUpdate"]

_NOT_INSTALLED_FIX = "install it (apt install pgbouncer, brew install pgbouncer) or set pgbouncer.binary"


class Front:
    """The pgbouncer front of one config: its files, its checks, its process."""

    def __init__(
        self,
        config: RotatorConfig,
        *,
        environ: Mapping[str, str] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        if config.front is None:
            raise ValueError("no pgbouncer block in this config")
        self.config = config
        self.settings: PgbouncerConfig = config.front
        self.files = FrontFiles(pgbouncer_dir_for(config, environ))
        self._environ = environ
        self._now = now

    @classmethod
    def of(cls, config: RotatorConfig, environ: Mapping[str, str] | None = None) -> Front | None:
        """The front of `config`, or None when it has none (or it is disabled)."""
        return cls(config, environ=environ) if config.front is not None else None

    @functools.cached_property
    def binary(self) -> str | None:
        return front_process.find_binary(self.settings.binary)

    @functools.cached_property
    def version(self) -> tuple[int, int, int] | None:
        """The installed pgbouncer's version: it decides the longest credential pgbouncer may be handed."""
        return front_process.binary_version(self.binary) if self.binary else None

    @functools.cached_property
    def user(self) -> ServiceUser | None:
        """Under root, who pgbouncer runs as (`ConfigError` without `run_as`)."""
        return front_checks.service_user(self.settings)

    @functools.cached_property
    def addresses(self) -> list[str]:
        return front_checks.listen_addresses(self.settings)

    def check(self, *, port: bool = True) -> None:
        """What the front needs from this machine, checked before anything is written: pgbouncer installed, a user
        to run it as who can reach its folder, a folder nobody else controls and, when `port`, its port free on
        every address (unless our pgbouncer holds it). `ConfigError` (exit 2).

        The scheduler checks without the port: a port someone holds is the supervisor's to report and retry, while
        `.pgpass` keeps being rotated."""
        if self.binary is None:
            named = f" at {self.settings.binary}" if self.settings.binary else " (on PATH or at /usr/sbin/pgbouncer)"
            raise ConfigError(f"pgbouncer: the pgbouncer program is not installed{named}", fix=_NOT_INSTALLED_FIX)
        problem = front_folder.location_problem(self.files.folder, self.user, self._environ)
        if problem is None and self.settings.unix_socket_dir:
            socket_dir = Path(os.path.expanduser(self.settings.unix_socket_dir))
            problem = front_folder.socket_dir_problem(socket_dir, self.user, self._environ)
        if problem is not None:
            raise problem
        if port and self.settings.is_managed and self.running_pid() is None:
            self.check_port()

    def check_port(self) -> None:
        problem = front_checks.ports_problem(self.addresses, self.settings.effective_listen_port)
        if problem is not None:
            raise problem

    def running_pid(self) -> int | None:
        """The pid of the pgbouncer running on our files, or None."""
        return front_process.running_pid(self.files.pidfile, self.user.uid if self.user else None)

    def update(self, pgpass_data: bytes, status: Status) -> FrontUpdate:
        """The files of a cycle, from the credentials on `.pgpass` lines, then SIGHUP when they changed. Raises
        `FileWriteError` or `ConfigError` when they cannot be written (the previous ones stay)."""
        update = front_files.write_cycle_files(
            self.config,
            self.files,
            pgpass_data,
            status,
            addresses=self.addresses,
            user=self.user,
            version=self.version,
            now=self._now,
        )
        front_files.describe(self.settings, self.files, update, self.addresses)
        if update.changed:
            owner = self.user.uid if self.user else None
            # A pgbouncer started on 0.2's files keeps its pid where 0.2 put it until it restarts.
            legacy = self.files.folder / "pgbouncer.pid"
            update.reloaded = front_process.reload(self.files.pidfile, owner) or (
                front_process.reload(legacy, owner) if legacy.exists() else None
            )
        return update

    def supervisor(self, pgpass_path: Path, state: StateStore) -> front_process.Supervisor:
        """The scheduler's child pgbouncer; before each start, its files from the credentials on file and its
        port checked (taken: a failed start, reported and retried with backoff)."""
        binary = self.binary
        if binary is None:
            raise ConfigError("pgbouncer: the pgbouncer program is not installed", fix=_NOT_INSTALLED_FIX)

        def prepare() -> None:
            self.check_port()
            self.update(_read(pgpass_path), state.load())

        def record(values: dict[str, object]) -> None:
            front_files.record_state({**values, "at": self._now()}, self._environ)

        return front_process.Supervisor(
            front_process.argv_for(binary, self.files, self.user), self.files, prepare=prepare, record=record
        )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
