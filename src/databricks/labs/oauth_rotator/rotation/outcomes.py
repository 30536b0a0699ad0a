"""One target's result in a cycle, and what status.json says about the target after it.

A success records the credential (or, when a longer-lived one stayed on every line instead, that one); a failure
counts, backs off, is logged once per new message (each time when someone asked now), and may notify a person.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from databricks.labs.oauth_rotator.config import TargetConfig
from databricks.labs.oauth_rotator.errors import CredentialError, RotatorError
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.lakebase.credentials import Credential
from databricks.labs.oauth_rotator.rotation.adoption import expiry_on_file, on_file_record, with_credential
from databricks.labs.oauth_rotator.rotation.alerts import notify_once
from databricks.labs.oauth_rotator.rotation.notify import Notifier
from databricks.labs.oauth_rotator.rotation.schedule import RefreshPolicy
from databricks.labs.oauth_rotator.rotation.state import TargetState
from databricks.labs.oauth_rotator.text import human_duration

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """A target's credential, or why there is none."""

    target: TargetConfig
    credential: Credential | None = None
    error: RotatorError | None = None
    kept: dict[pgpass.Key, str] = field(default_factory=dict, repr=False)
    """The lines where a longer-lived credential already in `.pgpass` stayed instead of ours: key, password."""

    @property
    def hosts(self) -> list[str]:
        """The hosts of the target's lines: the credential's, then the configured extra ones."""
        hosts = self.credential.hosts if self.credential is not None else ()
        return [*hosts, *(self.target.extra_hosts or [])]

    @property
    def entries(self) -> list[pgpass.PgpassEntry]:
        """The `.pgpass` entries of the credential, one per host; none without a credential."""
        if self.credential is None:
            return []
        return [entry_for(self.target, self.credential, host) for host in self.hosts]


def entry_for(target: TargetConfig, credential: Credential, host: str) -> pgpass.PgpassEntry:
    """The `.pgpass` entry of a target's credential for one of its hosts."""
    return pgpass.PgpassEntry(
        host=host,
        port=str(target.effective_port),
        database=target.effective_database,
        user=credential.user,
        password=credential.token,
    )


@dataclass(frozen=True)
class Recorder:
    """Turns outcomes into target states: the policy schedules, the notifier tells a person."""

    policy: RefreshPolicy
    notifier: Notifier | None = None
    interactive: bool = False
    """A forced cycle is someone asking now: it says every failure, not only the ones that changed."""

    def next_state(self, previous: TargetState, outcome: Outcome, now: float) -> TargetState:
        """What status.json says about the target after this attempt."""
        state = TargetState(**{**previous.__dict__, "last_attempt": now})
        if outcome.credential is not None:
            return self._succeeded(state, previous, outcome, outcome.credential, now)
        return self._failed(state, previous, outcome, now)

    def _succeeded(  # pylint: disable=too-many-arguments
        self, state: TargetState, previous: TargetState, outcome: Outcome, credential: Credential, now: float
    ) -> TargetState:
        issued, expires = credential.issued_at.timestamp(), credential.expires_at.timestamp()
        hosts = outcome.hosts
        state.user, state.hosts = credential.user, hosts
        state.keys = [list(entry.key) for entry in outcome.entries]
        state.fingerprint = credential.fingerprint
        state.issued_at, state.expires_at = issued, expires
        state.due_at = self.policy.due_at(issued, expires)
        state.last_success, state.last_error, state.fix = now, None, None
        state.needs_person, state.failures, state.next_attempt = False, 0, None
        state.notified = None
        if outcome.kept and all(tuple(key) in outcome.kept for key in state.keys):
            # None of ours was written: status.json describes the credential that is in the file.
            state.last_success = previous.last_success
            kept = min((expiry_on_file(pw, previous, expires), pw) for pw in outcome.kept.values())
            found = on_file_record(kept[0], kept[1], lifetime=expires - issued, now=now, policy=self.policy)
            logger.info(
                f"Kept the longer-lived credential already in .pgpass for {outcome.target.label} (expires in "
                f"{human_duration(found.expires_at - now)}); next refresh in {human_duration(found.due_at - now)}"
            )
            return with_credential(state, found)
        logger.info(
            f"Rotated {outcome.target.label} ({credential.source}): {len(hosts)} .pgpass line(s) for "
            f"{credential.user} on {', '.join(hosts)}; expires in {human_duration(expires - now)}"
        )
        return state

    def _failed(self, state: TargetState, previous: TargetState, outcome: Outcome, now: float) -> TargetState:
        error = outcome.error or CredentialError("unknown error")
        message = str(error)
        state.failures = previous.failures + 1
        state.needs_person, state.fix = error.needs_person, error.fix
        # A person must fix it, but checking again is cheap (a full disk, a read-only directory): only errors that
        # retrying cannot fix (an expired login, a missing permission) wait the slow cadence.
        slow = error.needs_person and not error.retryable
        state.next_attempt = now + self.policy.retry_delay(state.failures, needs_person=slow)
        if message != previous.last_error or self.interactive:
            level = logging.ERROR if error.needs_person else logging.WARNING
            logger.log(level, f"Rotation of {outcome.target.label} failed: {message}")
        else:
            logger.info(f"Rotation of {outcome.target.label} still failing (attempt {state.failures})")
        state.last_error = message
        notify_once(outcome.target.label, state, now, margin_seconds=self.policy.margin_seconds, notifier=self.notifier)
        return state
