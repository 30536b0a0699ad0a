"""One rotation cycle: fetch every due target's credential concurrently, write `.pgpass` once, record status."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.deadlines import map_on_daemon_threads
from databricks.labs.oauth_rotator.errors import ConfigError, CredentialError, NeedsPersonError, RotatorError
from databricks.labs.oauth_rotator.files import pgpass, pgservice, writer
from databricks.labs.oauth_rotator.hostos import CURRENT
from databricks.labs.oauth_rotator.lakebase.catalog import HOST_ROLES
from databricks.labs.oauth_rotator.lakebase.targets import resolve_source
from databricks.labs.oauth_rotator.lakebase.workspace import auth_error, current_user_name
from databricks.labs.oauth_rotator.names import login_database
from databricks.labs.oauth_rotator.rotation.adoption import OnFile, Planned, not_older, with_credential
from databricks.labs.oauth_rotator.rotation.due import plan
from databricks.labs.oauth_rotator.rotation.front_files import FrontUpdate
from databricks.labs.oauth_rotator.rotation.notify import Notifier
from databricks.labs.oauth_rotator.rotation.outcomes import Outcome, Recorder, entry_for
from databricks.labs.oauth_rotator.rotation.schedule import Clock, RefreshPolicy
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState
from databricks.labs.oauth_rotator.text import human_duration, one_line

logger = logging.getLogger(__name__)

MAX_CONCURRENT_FETCHES = 16
"""Credential requests in flight at once, each on a daemon thread (a blocked one must not keep a process alive)."""


@dataclass
class CycleReport:
    """What one cycle did. `exit_code` is 0 when every attempted target succeeded, else 1."""

    rotated: list[str] = field(default_factory=list)
    keys: list[tuple[str, str, str, str]] = field(default_factory=list)
    """The `.pgpass` keys (host, port, database, user) written for the rotated targets."""
    failed: dict[str, RotatorError] = field(default_factory=dict)
    changed: bool = False
    next_due: float | None = None
    fetch_seconds: float = 0.0
    """How long fetching the due targets' credentials took (elapsed, not wall-clock, time)."""
    write_seconds: float = 0.0
    """How long the write phase took: `.pgpass`, `pg_service.conf` and status.json, for all of them at once."""
    front: FrontUpdate | None = None
    """What writing the pgbouncer front's files did, when there is a front."""

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


class RotationCycle:
    """Rotates the targets of one config. Collaborators are passed in, so tests need no patching."""

    def __init__(  # pylint: disable=too-many-arguments  # each collaborator is passed in, none is built here
        self,
        config: RotatorConfig,
        workspace_client: Callable[[], WorkspaceClient],
        *,
        pgpass_path: Path,
        state: StateStore,
        clock: Clock,
        policy: RefreshPolicy,
        hook: Callable[[Sequence[str], Path], int | None] | None = None,
        notifier: Notifier | None = None,
        pg_service_path: Path | None = None,
        front: Callable[[bytes, Status], FrontUpdate] | None = None,
    ) -> None:
        self._config = config
        self._workspace_client = workspace_client
        self._pgpass_path = pgpass_path
        self._state = state
        self._clock = clock
        self._policy = policy
        self._hook = hook
        self._notifier = notifier
        self._pg_service_path = pg_service_path
        self._front = front
        """Writes pgbouncer's files from `.pgpass` and the status after each cycle, and reloads it when they changed."""
        self._interactive = False
        """A forced cycle is someone asking now: it says every failure, not only the ones that changed."""

    def run(self, *, force: bool = False, only: Collection[str] | None = None) -> CycleReport:
        """Refresh the targets that are due (all of them with `force`); one failing target never stops the rest.

        `only` limits the cycle to the targets of those labels (the others, and their status, are left alone).

        A target whose lines all hold someone else's credential that outlives ours (another rotator's, a pasted
        one) is not due: no credential is minted, and status.json follows that one's expiry instead.

        Raises only `RotatorError`: anything else that goes wrong (a bug, an answer of a shape nobody foresaw) is a
        retryable `CredentialError` naming it, so that a scheduler backs off and tries again, never dies.
        """
        try:
            return self._run(force=force, only=only)
        except RotatorError:
            raise
        except Exception as err:  # pylint: disable=broad-exception-caught  # see the docstring
            logger.debug("The rotation cycle failed unexpectedly", exc_info=True)
            raise CredentialError(f"the rotation cycle failed: {type(err).__name__}: {one_line(str(err))}") from err

    def _run(self, *, force: bool, only: Collection[str] | None) -> CycleReport:
        self._make_private()
        status = self._state.load()
        current = _read(self._pgpass_path)
        now = self._clock.time()
        chosen = plan(self._config.targets, status, current, now=now, policy=self._policy, force=force, only=only)
        report = CycleReport()
        self._interactive = force
        if chosen.adopted:
            status = self._adopt(chosen.adopted)
        if chosen.due:
            started = time.perf_counter()
            outcomes = self._fetch(chosen.due)
            fetched = time.perf_counter()
            report.changed = self._write(outcomes, status)
            self._write_services(outcomes)
            status = self._record(outcomes)
            report.fetch_seconds, report.write_seconds = fetched - started, time.perf_counter() - fetched
            for outcome in outcomes:
                if outcome.credential is not None:
                    report.rotated.append(outcome.target.label)
                    report.keys.extend(entry.key for entry in outcome.entries)
                else:
                    report.failed[outcome.target.label] = outcome.error or CredentialError("unknown error")
            if report.changed and self._hook is not None:
                self._hook(report.rotated, self._pgpass_path)
        self._update_front(report, status)
        report.next_due = status.next_due()
        return report

    def _update_front(self, report: CycleReport, status: Status) -> None:
        """Every cycle, not only those that rotated: a front started (or its files lost) since the last rotation
        gets the credentials on file now. Its files change, and pgbouncer is reloaded, only when a credential did."""
        if self._front is None:
            return
        try:
            report.front = self._front(_read(self._pgpass_path), status)
        except RotatorError as err:
            logger.error(f"Could not update the pgbouncer front: {err}")
            report.failed["pgbouncer"] = err
            return
        for label, reason in report.front.refused.items():
            logger.error(reason)
            report.failed[label] = NeedsPersonError(reason)
        if report.front.changed:
            reloaded = f"; reloaded pgbouncer (pid {report.front.reloaded})" if report.front.reloaded else ""
            logger.info(f"Updated the pgbouncer front ({', '.join(report.front.databases) or 'no database'}){reloaded}")

    def _make_private(self) -> None:
        """A .pgpass others can read is ignored by libpq, every line of it: fix that even when nothing is due."""
        try:
            # Never on Windows, where every writable file reports 0666 and no chmod narrows it (hostos).
            shared = CURRENT.shared_mode(self._pgpass_path.stat())
        except OSError:
            return
        if not shared:
            return
        try:
            writer.update_file(self._pgpass_path, lambda old: old)  # the writer warns and sets 0600
        except RotatorError as err:
            logger.warning(f"{self._pgpass_path} is readable by others and could not be made private: {err}")

    def _adopt(self, adopted: Mapping[str, OnFile]) -> Status:
        """Record the longer-lived credentials found on due targets' lines, so that their schedule follows them."""
        now = self._clock.time()
        labels = [t.label for t in self._config.targets]

        def change(status: Status) -> None:
            status.updated_at = now
            for label, found in adopted.items():
                previous = status.targets.get(label) or TargetState(name=label)
                status.targets[label] = with_credential(previous, found)
                logger.info(
                    f"{label}: the credential already in .pgpass outlives ours (expires in "
                    f"{human_duration(found.expires_at - now)}): none minted; next refresh in "
                    f"{human_duration(found.due_at - now)}"
                )

        return self._state.update(change, keep=labels)

    def _fetch(self, targets: Sequence[TargetConfig]) -> list[Outcome]:
        try:
            ws = self._workspace_client()
            default_user = None if all(t.user for t in targets) else current_user_name(ws)
        except ConfigError:
            raise  # an unusable profile or auth setup ends the cycle: no target can succeed, a person must fix it
        except RotatorError as err:
            return [Outcome(t, error=err) for t in targets]
        return map_on_daemon_threads(
            lambda t: self._fetch_one(ws, t, t.user or default_user or ""),
            targets,
            limit=MAX_CONCURRENT_FETCHES,
            name="oauth-rotator-fetch",
        )

    def _fetch_one(self, ws: WorkspaceClient, target: TargetConfig, user: str) -> Outcome:
        try:
            source = resolve_source(ws, target, now=self._now, ttl_seconds=self._config.credential_ttl_seconds)
            credential = source.fetch(user, read_only=bool(target.read_only), pooled=bool(target.pooled))
            for host in (*credential.hosts, *(target.extra_hosts or [])):
                pgpass.format_entry(entry_for(target, credential, host))  # rejects what libpq cannot read
            return Outcome(target, credential=credential)
        except RotatorError as err:
            return Outcome(target, error=err)
        except OSError as err:  # the SDK's network faults (requests' errors are OSErrors)
            logger.debug(f"{target.label}: network error", exc_info=True)
            return Outcome(target, error=CredentialError(f"{target.label}: {type(err).__name__}: {one_line(str(err))}"))
        except ValueError as err:  # a token refresh the identity provider refused, or an unreadable answer
            logger.debug(f"{target.label}: refused or unreadable", exc_info=True)
            return Outcome(target, error=auth_error(err, self._config.profile, ws.config.auth_type))
        except Exception as err:  # pylint: disable=broad-exception-caught  # one target never stops the rest
            # The SDK parsing an answer of an unexpected shape (a list, a number where a string belongs), or anything
            # else nobody foresaw: a failure of this target, recorded and retried with backoff.
            logger.debug(f"{target.label}: unexpected answer", exc_info=True)
            message = (
                f"{target.label}: unexpected answer from the workspace ({type(err).__name__}: {one_line(str(err))})"
            )
            return Outcome(target, error=CredentialError(message))

    def _write(self, outcomes: list[Outcome], status: Status) -> bool:
        planned: list[Planned] = []
        for outcome in outcomes:
            if outcome.credential is not None:
                known = status.targets.get(outcome.target.label)
                expires_at = outcome.credential.expires_at.timestamp()
                planned.extend(Planned(entry, expires_at, known) for entry in outcome.entries)
        if not planned:
            return False
        kept: dict[pgpass.Key, str] = {}

        def transform(old: bytes) -> bytes:
            kept.clear()  # under the file's lock: what is in the file now, whatever an earlier attempt read
            kept.update(not_older(old, planned))
            return pgpass.merge(old, [p.entry for p in planned if p.entry.key not in kept])

        try:
            changed = writer.update_file(self._pgpass_path, transform)
        except RotatorError as err:
            for outcome in outcomes:
                if outcome.credential is not None:
                    outcome.credential, outcome.error = None, err
            return False
        for outcome in outcomes:
            if outcome.credential is not None:
                keys = [entry.key for entry in outcome.entries]
                outcome.kept = {key: kept[key] for key in keys if key in kept}
        return changed

    def _write_services(self, outcomes: list[Outcome]) -> None:
        """`pg_service.conf` sections for the targets rotated now; those of other configured targets stay."""
        if self._pg_service_path is None:
            return
        entries = []
        for outcome in outcomes:
            if outcome.credential is None:
                continue
            database = outcome.target.effective_database
            for role, host in outcome.credential.roles:
                entries.append(
                    pgservice.ServiceEntry(
                        name=pgservice.service_name(outcome.target.label, role),
                        host=host,
                        port=str(outcome.target.effective_port),
                        dbname=login_database(database),
                        user=outcome.credential.user,
                    )
                )
        keep = {pgservice.service_name(t.label, role) for t in self._config.targets for role in HOST_ROLES}
        try:
            writer.update_file(self._pg_service_path, lambda old: pgservice.merge(old, entries, keep=keep))
        except RotatorError as err:
            logger.warning(f"Could not update {self._pg_service_path}: {err}")

    def _record(self, outcomes: list[Outcome]) -> Status:
        now = self._clock.time()
        labels = [t.label for t in self._config.targets]
        recorder = Recorder(self._policy, self._notifier, interactive=self._interactive)

        def change(status: Status) -> None:
            status.pgpass_file = str(self._pgpass_path)
            status.updated_at = now
            for outcome in outcomes:
                label = outcome.target.label
                previous = status.targets.get(label) or TargetState(name=label)
                status.targets[label] = recorder.next_state(previous, outcome, now)

        return self._state.update(change, keep=labels)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.time(), tz=timezone.utc)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
