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
from databricks.labs.oauth_rotator.lakebase.catalog import HOST_ROLES
from databricks.labs.oauth_rotator.lakebase.credentials import Credential
from databricks.labs.oauth_rotator.lakebase.targets import resolve_source
from databricks.labs.oauth_rotator.lakebase.tokeninfo import jwt_issued_at, token_fingerprint
from databricks.labs.oauth_rotator.lakebase.workspace import auth_error, current_user_name
from databricks.labs.oauth_rotator.rotation.front_files import FrontUpdate
from databricks.labs.oauth_rotator.rotation.notify import Notifier
from databricks.labs.oauth_rotator.rotation.schedule import Clock, RefreshPolicy
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState, foreign_expiry
from databricks.labs.oauth_rotator.rotation.verify import DEFAULT_DATABASE
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


@dataclass
class _Outcome:
    target: TargetConfig
    credential: Credential | None = None
    error: RotatorError | None = None
    kept: dict[pgpass.Key, str] = field(default_factory=dict, repr=False)
    """The lines where a longer-lived credential already in `.pgpass` stayed instead of ours: key, password."""


@dataclass(frozen=True)
class _OnFile:
    """A credential already on a target's lines that outlives ours: what status.json records for it."""

    fingerprint: str
    expires_at: float
    issued_at: float
    due_at: float


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
        on_file = pgpass.lookup_many(current, [k for t in status.targets.values() for k in t.pgpass_keys()])
        due: list[TargetConfig] = []
        adopted: dict[str, _OnFile] = {}
        for target in self._config.targets:
            if only is not None and target.label not in only:
                continue
            known = status.targets.get(target.label)
            if not force and not self._is_due(known, current, on_file):
                continue
            found = None if force or known is None else self._outliving(known, on_file)
            if found is not None:
                adopted[target.label] = found
            else:
                due.append(target)
        report = CycleReport()
        self._interactive = force
        if adopted:
            status = self._adopt(adopted)
        if due:
            started = time.perf_counter()
            outcomes = self._fetch(due)
            fetched = time.perf_counter()
            report.changed = self._write(outcomes, status)
            self._write_services(outcomes)
            status = self._record(outcomes)
            report.fetch_seconds, report.write_seconds = fetched - started, time.perf_counter() - fetched
            for outcome in outcomes:
                if outcome.credential is not None:
                    report.rotated.append(outcome.target.label)
                    report.keys.extend(_entry(outcome.target, outcome.credential, h).key for h in _hosts(outcome))
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
            shared = self._pgpass_path.stat().st_mode & 0o077
        except OSError:
            return
        if not shared:
            return
        try:
            writer.update_file(self._pgpass_path, lambda old: old)  # the writer warns and sets 0600
        except RotatorError as err:
            logger.warning(f"{self._pgpass_path} is readable by others and could not be made private: {err}")

    def _is_due(self, known: TargetState | None, current: bytes, on_file: Mapping[pgpass.Key, str | None]) -> bool:
        if known is None or known.expires_at is None or known.due_at is None:
            return True
        action_at = known.next_action_at()
        if action_at is not None and self._clock.time() >= action_at:
            return True
        # A line deleted or edited by the user (or a lost file) is restored now, not at the next refresh.
        return known.lines_lost(current, on_file)

    def _outliving(self, known: TargetState, on_file: Mapping[pgpass.Key, str | None]) -> _OnFile | None:
        """The credential on every line of a due target when it is not ours, outlives ours, and is itself not due
        yet (the one that expires first when the lines differ); else None, and the target is minted for."""
        if known.failures or known.expires_at is None:
            return None  # a failing target is retried as scheduled: its next success records what is on file
        found = []
        for key in known.pgpass_keys():
            password = on_file.get(key)
            if not password or known.is_recorded(password):
                return None
            expiry = known.expiry_of(password)
            if expiry is None or expiry <= known.expires_at:
                return None
            found.append((expiry, password))
        if not found:
            return None
        lifetime = known.expires_at - known.issued_at if known.issued_at is not None else None
        adopted = self._on_file(*min(found), lifetime=lifetime)
        return adopted if adopted.due_at > self._clock.time() else None

    def _on_file(self, expires_at: float, password: str, *, lifetime: float | None) -> _OnFile:
        """What to record for someone else's credential kept on our lines. It is due when it has as little life
        left as ours has when ours is due (`lifetime`: ours), so that the credential minted then outlives it."""
        now = self._clock.time()
        issued = jwt_issued_at(password)
        issued_at = issued if issued is not None and issued <= now else now
        if lifetime is None or lifetime <= 0:
            lifetime = expires_at - issued_at
        left_at_refresh = lifetime - self._policy.due_at(0.0, lifetime)
        return _OnFile(token_fingerprint(password), expires_at, issued_at, expires_at - left_at_refresh)

    def _adopt(self, adopted: Mapping[str, _OnFile]) -> Status:
        """Record the longer-lived credentials found on due targets' lines, so that their schedule follows them."""
        now = self._clock.time()
        labels = [t.label for t in self._config.targets]

        def change(status: Status) -> None:
            status.updated_at = now
            for label, found in adopted.items():
                previous = status.targets.get(label) or TargetState(name=label)
                status.targets[label] = _with_credential(previous, found)
                logger.info(
                    f"{label}: the credential already in .pgpass outlives ours (expires in "
                    f"{human_duration(found.expires_at - now)}): none minted; next refresh in "
                    f"{human_duration(found.due_at - now)}"
                )

        return self._state.update(change, keep=labels)

    def _fetch(self, targets: Sequence[TargetConfig]) -> list[_Outcome]:
        try:
            ws = self._workspace_client()
            default_user = None if all(t.user for t in targets) else current_user_name(ws)
        except ConfigError:
            raise  # an unusable profile or auth setup ends the cycle: no target can succeed, a person must fix it
        except RotatorError as err:
            return [_Outcome(t, error=err) for t in targets]
        return map_on_daemon_threads(
            lambda t: self._fetch_one(ws, t, t.user or default_user or ""),
            targets,
            limit=MAX_CONCURRENT_FETCHES,
            name="oauth-rotator-fetch",
        )

    def _fetch_one(self, ws: WorkspaceClient, target: TargetConfig, user: str) -> _Outcome:
        try:
            source = resolve_source(ws, target, now=self._now)
            credential = source.fetch(user, read_only=bool(target.read_only), pooled=bool(target.pooled))
            for host in (*credential.hosts, *(target.extra_hosts or [])):
                pgpass.format_entry(_entry(target, credential, host))  # rejects what libpq cannot read
            return _Outcome(target, credential=credential)
        except RotatorError as err:
            return _Outcome(target, error=err)
        except OSError as err:  # the SDK's network faults (requests' errors are OSErrors)
            logger.debug(f"{target.label}: network error", exc_info=True)
            return _Outcome(
                target, error=CredentialError(f"{target.label}: {type(err).__name__}: {one_line(str(err))}")
            )
        except ValueError as err:  # a token refresh the identity provider refused, or an unreadable answer
            logger.debug(f"{target.label}: refused or unreadable", exc_info=True)
            return _Outcome(target, error=auth_error(err, self._config.profile))
        except Exception as err:  # pylint: disable=broad-exception-caught  # one target never stops the rest
            # The SDK parsing an answer of an unexpected shape (a list, a number where a string belongs), or anything
            # else nobody foresaw: a failure of this target, recorded and retried with backoff.
            logger.debug(f"{target.label}: unexpected answer", exc_info=True)
            message = (
                f"{target.label}: unexpected answer from the workspace ({type(err).__name__}: {one_line(str(err))})"
            )
            return _Outcome(target, error=CredentialError(message))

    def _write(self, outcomes: list[_Outcome], status: Status) -> bool:
        planned: list[_Planned] = []
        for outcome in outcomes:
            if outcome.credential is not None:
                known = status.targets.get(outcome.target.label)
                expires_at = outcome.credential.expires_at.timestamp()
                for host in _hosts(outcome):
                    planned.append(_Planned(_entry(outcome.target, outcome.credential, host), expires_at, known))
        if not planned:
            return False
        kept: dict[pgpass.Key, str] = {}

        def transform(old: bytes) -> bytes:
            kept.clear()  # under the file's lock: what is in the file now, whatever an earlier attempt read
            kept.update(_not_older(old, planned))
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
                keys = [_entry(outcome.target, outcome.credential, h).key for h in _hosts(outcome)]
                outcome.kept = {key: kept[key] for key in keys if key in kept}
        return changed

    def _write_services(self, outcomes: list[_Outcome]) -> None:
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
                        dbname=database if database != "*" else DEFAULT_DATABASE,
                        user=outcome.credential.user,
                    )
                )
        keep = {pgservice.service_name(t.label, role) for t in self._config.targets for role in HOST_ROLES}
        try:
            writer.update_file(self._pg_service_path, lambda old: pgservice.merge(old, entries, keep=keep))
        except RotatorError as err:
            logger.warning(f"Could not update {self._pg_service_path}: {err}")

    def _record(self, outcomes: list[_Outcome]) -> Status:
        now = self._clock.time()
        labels = [t.label for t in self._config.targets]

        def change(status: Status) -> None:
            status.pgpass_file = str(self._pgpass_path)
            status.updated_at = now
            for outcome in outcomes:
                label = outcome.target.label
                previous = status.targets.get(label) or TargetState(name=label)
                status.targets[label] = self._next_state(previous, outcome, now)

        return self._state.update(change, keep=labels)

    def _next_state(self, previous: TargetState, outcome: _Outcome, now: float) -> TargetState:
        state = TargetState(**{**previous.__dict__, "last_attempt": now})
        if outcome.credential is not None:
            credential = outcome.credential
            issued, expires = credential.issued_at.timestamp(), credential.expires_at.timestamp()
            hosts = _hosts(outcome)
            state.user, state.hosts = credential.user, hosts
            state.keys = [list(_entry(outcome.target, credential, h).key) for h in hosts]
            state.fingerprint = credential.fingerprint
            state.issued_at, state.expires_at = issued, expires
            state.due_at = self._policy.due_at(issued, expires)
            state.last_success, state.last_error, state.fix = now, None, None
            state.needs_person, state.failures, state.next_attempt = False, 0, None
            state.notified = None
            if outcome.kept and all(tuple(key) in outcome.kept for key in state.keys):
                # None of ours was written: status.json describes the credential that is in the file.
                state.last_success = previous.last_success
                kept = min((_expiry_on_file(pw, previous, expires), pw) for pw in outcome.kept.values())
                found = self._on_file(kept[0], kept[1], lifetime=expires - issued)
                logger.info(
                    f"Kept the longer-lived credential already in .pgpass for {outcome.target.label} (expires in "
                    f"{human_duration(found.expires_at - now)}); next refresh in {human_duration(found.due_at - now)}"
                )
                return _with_credential(state, found)
            logger.info(
                f"Rotated {outcome.target.label} ({credential.source}): {len(hosts)} .pgpass line(s) for "
                f"{credential.user} on {', '.join(hosts)}; expires in {human_duration(expires - now)}"
            )
            return state
        error = outcome.error or CredentialError("unknown error")
        message = str(error)
        state.failures = previous.failures + 1
        state.needs_person, state.fix = error.needs_person, error.fix
        # A person must fix it, but checking again is cheap (a full disk, a read-only directory): only errors that
        # retrying cannot fix (an expired login, a missing permission) wait the slow cadence.
        slow = error.needs_person and not error.retryable
        state.next_attempt = now + self._policy.retry_delay(state.failures, needs_person=slow)
        if message != previous.last_error or self._interactive:
            level = logging.ERROR if error.needs_person else logging.WARNING
            logger.log(level, f"Rotation of {outcome.target.label} failed: {message}")
        else:
            logger.info(f"Rotation of {outcome.target.label} still failing (attempt {state.failures})")
        state.last_error = message
        self._notify(outcome.target.label, state, now)
        return state

    def _notify(self, label: str, state: TargetState, now: float) -> None:
        """Tell the user once per condition (and again only after it was resolved and came back)."""
        condition, message = None, ""
        if state.needs_person:
            condition, message = f"needs-person:{state.fix}", f"{label}: a person must act: {state.last_error}"
        elif state.expires_at is not None and state.issued_at is not None:
            warn_within = min(self._policy.margin_seconds / 2, (state.expires_at - state.issued_at) / 4)
            remaining = state.expires_at - now
            if remaining < warn_within:
                when = f"expires in {human_duration(remaining)}" if remaining > 0 else "has expired"
                condition = "expiring"
                message = f"{label}: the credential {when} and refreshing it keeps failing: {state.last_error}"
        if condition is None:
            state.notified = None
            return
        if condition == state.notified:
            return
        logger.warning(f"Notifying the user: {message}")
        if self._notifier is not None:
            self._notifier.notify(message)
        state.notified = condition

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.time(), tz=timezone.utc)


def _entry(target: TargetConfig, credential: Credential, host: str) -> pgpass.PgpassEntry:
    return pgpass.PgpassEntry(
        host=host,
        port=str(target.effective_port),
        database=target.effective_database,
        user=credential.user,
        password=credential.token,
    )


def _hosts(outcome: _Outcome) -> list[str]:
    hosts = outcome.credential.hosts if outcome.credential is not None else ()
    return [*hosts, *(outcome.target.extra_hosts or [])]


@dataclass(frozen=True)
class _Planned:
    """A line to write: the entry, when its credential expires (as the API said), what status.json knew."""

    entry: pgpass.PgpassEntry
    expires_at: float
    known: TargetState | None


def _expiry_on_file(password: str, known: TargetState | None, ours: float) -> float:
    """When a credential found on our line expires: the one we recorded by the expiry the API gave for it, any other
    by its JWT `exp` as `foreign_expiry` believes it against `ours` (the expiry of the credential we would write);
    0 when that cannot be told (such a credential never outlives ours)."""
    ourselves = known is not None and known.is_recorded(password)
    expiry = known.expires_at if known is not None and ourselves else foreign_expiry(password, ours)
    return expiry if expiry is not None else 0.0


def _not_older(current: bytes, planned: Sequence[_Planned]) -> dict[pgpass.Key, str]:
    """The lines that already hold a credential living longer than ours (a concurrent rotator's, a pasted one),
    which are left as they are: key, password. One pass over the file for all entries."""
    on_file = pgpass.lookup_many(current, [p.entry.key for p in planned])
    kept = {}
    for line in planned:
        existing = on_file[line.entry.key]
        if existing and _expiry_on_file(existing, line.known, line.expires_at) > line.expires_at:
            logger.info(f"Keeping the newer credential already in .pgpass for {line.entry.host} ({line.entry.user})")
            kept[line.entry.key] = existing
    return kept


def _with_credential(state: TargetState, found: _OnFile) -> TargetState:
    """`state` describing the credential found on its lines instead of one of ours."""
    return TargetState(
        **{
            **state.__dict__,
            "fingerprint": found.fingerprint,
            "issued_at": found.issued_at,
            "expires_at": found.expires_at,
            "due_at": found.due_at,
        }
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
