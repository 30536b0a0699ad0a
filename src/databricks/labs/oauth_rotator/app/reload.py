"""The configuration in force in a running scheduler, and its reload (SIGHUP, or an edit of the file).

The scheduler reads the config file once at start, and again on each reload; a config that does not pass the one
preflight is not applied: the running one stays, with one logged line. Its workers never read the file: each gets
the configuration in force as data in its request (the settings, already merged with the flags), so a broken or
half-saved edit cannot reach a cycle between the reload that refused it and the next good one. Why not a copy on
disk: the request already carries the overrides the same way, and data in a pipe needs no file to keep private.

A reload puts in force what changed: a target added gets its line at the cycle that follows at once; a target
removed is no longer refreshed and our lines for it leave `.pgpass` (only lines holding the credential we recorded
for it: someone else's line for the same host is not ours); a `pgbouncer:` front added or removed starts or stops
pgbouncer; changed front settings reach pgbouncer through the cycle's files and its SIGHUP (sessions stay), or a
restart when pgbouncer cannot take them on a reload (its program, user or listening addresses).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from databricks.labs.oauth_rotator.app.request import RotationRequest
from databricks.labs.oauth_rotator.config import PgbouncerConfig, RotatorConfig, to_raw
from databricks.labs.oauth_rotator.errors import RotatorError
from databricks.labs.oauth_rotator.rotation.state import StateStore
from databricks.labs.oauth_rotator.text import one_line

TYPE_CHECKING = False
if TYPE_CHECKING:  # the resident scheduler imports pgbouncer's supervisor (and shutil) only with a front
    from databricks.labs.oauth_rotator.rotation.front_process import Supervisor

logger = logging.getLogger(__name__)

ConfigReader = Callable[[], RotatorConfig]
"""Reads the configuration anew and puts it through the preflight (a `RotatorError` when it fails)."""
SupervisorFactory = Callable[[RotatorConfig], "Supervisor | None"]


def worker_request(request: RotationRequest, config: RotatorConfig) -> dict[str, Any]:
    """The worker's request with `config` in it as data: the worker reads no file, so only a checked config runs."""
    return {**request.to_worker(), "config": None, "overrides": to_raw(config)}


class ConfigInForce:
    """The scheduler's configuration, the front it supervises, and how both change on a reload."""

    def __init__(
        self,
        config: RotatorConfig,
        *,
        read: ConfigReader,
        state: StateStore,
        supervisor_of: SupervisorFactory,
        use: Callable[[RotatorConfig], None],
    ) -> None:
        self.config = config
        self._read = read
        self._state = state
        self._supervisor_of = supervisor_of
        self._use = use
        self.supervisor: Supervisor | None = None

    def start_front(self) -> None:
        """The front of the configuration in force, when it has one."""
        self.supervisor = self._supervisor_of(self.config)
        if self.supervisor is not None:
            self.supervisor.start()

    def stop_front(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None

    def reload(self) -> str | None:
        """The daemon's `Reloader`: None once the new configuration is in force, else the one line saying why not."""
        try:
            config = self._read()
        except RotatorError as err:
            reason = one_line(str(err))
            logger.error(f"The configuration was not reloaded ({reason}): the running one stays")
            return reason
        old, self.config = self.config, config
        self._retire_lines(old, config)
        self._change_front(old, config)
        self._use(config)
        logger.info(f"Reloaded the configuration: {', '.join(t.label for t in config.targets) or 'no targets'}")
        return None

    def _retire_lines(self, old: RotatorConfig, new: RotatorConfig) -> None:
        """Our lines of the targets the new configuration no longer has leave `.pgpass` (ours: by fingerprint)."""
        kept = {t.label for t in new.targets}
        gone = [t.label for t in old.targets if t.label not in kept]
        if not gone:
            return
        status = self._state.load()
        kept_keys = {key for label in kept if label in status.targets for key in status.targets[label].pgpass_keys()}
        retired = {}
        for label in gone:
            target = status.targets.get(label)
            if target is not None and target.fingerprint:
                retired.update({key: target.fingerprint for key in target.pgpass_keys() if key not in kept_keys})
        path = status.pgpass_file
        if retired and path:
            from pathlib import Path

            from databricks.labs.oauth_rotator.files.pgpass_merge import without_lines
            from databricks.labs.oauth_rotator.files.writer import update_file

            try:
                update_file(Path(path), lambda data: without_lines(data, retired))
            except (RotatorError, OSError) as err:  # the new configuration is in force all the same
                logger.warning(f"Could not remove the lines of {', '.join(gone)} from {path}: {one_line(str(err))}")
        logger.info(f"No longer refreshed: {', '.join(gone)}")

    def _change_front(self, old: RotatorConfig, new: RotatorConfig) -> None:
        """Start, stop or restart the front as the new configuration says; settings pgbouncer takes on a reload are
        left to the cycle that follows (it writes the front's files and sends SIGHUP)."""
        was, now = _managed(old), _managed(new)
        if was and now and _reloadable(old, new):
            replacement = self._supervisor_of(new)
            if self.supervisor is not None and replacement is not None:
                self.supervisor.adopt(replacement)  # its next (re)start writes the new files
            return
        if was:
            logger.info(f"Stopping the pgbouncer front{' to start it with its new settings' if now else ''}")
            self.stop_front()
        if now:
            self.start_front()


def _managed(config: RotatorConfig) -> bool:
    return config.front is not None and config.front.is_managed


def _reloadable(old: RotatorConfig, new: RotatorConfig) -> bool:
    """Whether pgbouncer takes the change on SIGHUP: not its program, its user, or where it listens."""
    if old.front is None or new.front is None:
        return False
    return _fixed_at_start(old.front) == _fixed_at_start(new.front)


def _fixed_at_start(front: PgbouncerConfig) -> tuple[object, ...]:
    """What pgbouncer reads only when it starts."""
    return (
        front.binary,
        front.run_as,
        front.effective_listen_address,
        front.effective_listen_port,
        front.unix_socket_dir,
    )
