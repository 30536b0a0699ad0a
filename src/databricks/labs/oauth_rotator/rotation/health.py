"""What the sidecar's HTTP endpoints answer: the scheduler's health, read from `status.json` and the loop's turns.

Stdlib only, and nothing here runs unless the endpoints are on (`--http-port`, `--quitquitquit`): the scheduler
records each turn and each cycle's outcome here; the servers (`commands/endpoints.py`, `commands/admin.py`) ask for
the answers. No answer carries a secret or a host: `status.json` holds no secret, only names, times and counts are
read from it, and a target named by its host alone is shown as `unnamed`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from databricks.labs.oauth_rotator.deadlines import CYCLE_TIMEOUT_SECONDS
from databricks.labs.oauth_rotator.rotation.schedule import MAX_SLEEP_SECONDS
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status

STUCK_AFTER_SECONDS = max(3 * MAX_SLEEP_SECONDS, CYCLE_TIMEOUT_SECONDS + 2 * MAX_SLEEP_SECONDS)
"""A loop with no turn for this long is stuck: three of its longest sleeps, or a cycle at its timeout and more."""


DEFAULT_ADMIN_PORT = 9092
"""The admin port when `--quitquitquit` is given without one (9091 is the probes' in deploy/kubernetes/)."""


@dataclass(frozen=True)
class EndpointsPlan:
    """What the scheduler serves over HTTP: the probes on `address:port`, `/quitquitquit` on the loopback at
    `admin_port`; each off when its port is None."""

    address: str
    port: int | None
    admin_port: int | None


@dataclass(frozen=True)
class Answer:
    """An HTTP status code and a short plain-text body."""

    code: int
    body: str


class Health:
    """The scheduler's turns and outcomes, and the probes' answers from them and from `status.json`."""

    def __init__(
        self,
        state: StateStore,
        *,
        margin_seconds: float,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        stuck_after: float = STUCK_AFTER_SECONDS,
        host_labels: frozenset[str] = frozenset(),
        front: Callable[[], str | None] | None = None,
    ) -> None:
        self._state = state
        self._margin = margin_seconds
        self._wall = wall
        self._monotonic = monotonic
        self._stuck_after = stuck_after
        self._host_labels = host_labels
        """The labels of targets with no name, instance or endpoint: their host, which no answer shows."""
        self._front = front
        """Why the pgbouncer front is not serving, or None: set when the config says the front is required."""
        self._lock = threading.Lock()
        self._last_turn = monotonic()
        self._seen_attempts: dict[str, float | None] = {}
        self.rotations: dict[tuple[str, str], int] = {}
        """Rotation attempts per (target, outcome), outcome `success` or `failure`, counted since the start."""
        self.on_quit: Callable[[], None] | None = None
        """What POST /quitquitquit on the admin port calls: the scheduler's stop (it then exits 0)."""

    def quit(self) -> None:
        """Stop the scheduler, as SIGTERM does."""
        if self.on_quit is not None:
            self.on_quit()

    def turned(self) -> None:
        """The loop went round once (it does at least once a minute)."""
        with self._lock:
            self._last_turn = self._monotonic()

    def cycle_finished(self) -> None:
        """Count what the cycle just run did for each target: a new attempt, a success when it is also the last
        success. Read from `status.json`, which the worker recorded before it exited."""
        status = self.status()
        with self._lock:
            for name, target in status.targets.items():
                if target.last_attempt is None or target.last_attempt == self._seen_attempts.get(name):
                    continue
                self._seen_attempts[name] = target.last_attempt
                outcome = "success" if target.last_success == target.last_attempt else "failure"
                self.rotations[(name, outcome)] = self.rotations.get((name, outcome), 0) + 1

    def counts(self) -> dict[tuple[str, str], int]:
        """A copy of `rotations` (the server's threads read while the scheduler counts)."""
        with self._lock:
            return dict(self.rotations)

    def status(self) -> Status:
        """`status.json` now (an empty status when there is none yet)."""
        return self._state.load()

    def public_labels(self, status: Status) -> dict[str, str]:
        """Each target's label as the endpoints show it: a target known by its host alone is `unnamed`
        (`unnamed-1`, `unnamed-2`, ... when there are several), so that no probe or scrape tells a host."""
        names = set(status.targets) | {name for name, _ in self.counts()}
        hidden = sorted(
            name
            for name in names
            if name in self._host_labels or (name in status.targets and name in status.targets[name].hosts)
        )
        labels = {name: name for name in names}
        if len(hidden) == 1:
            labels[hidden[0]] = "unnamed"
        else:
            labels.update({name: f"unnamed-{n}" for n, name in enumerate(hidden, 1)})
        return labels

    def startup(self) -> Answer:
        """200 once every target has been written at least once."""
        status = self.status()
        targets, label = status.targets, self.public_labels(status)
        waiting = sorted(label[name] for name, t in targets.items() if t.last_success is None)
        if not targets:
            return Answer(503, "no target written yet\n")
        if waiting:
            return Answer(503, f"not written yet: {', '.join(waiting)}\n")
        return Answer(200, "started\n")

    def liveness(self) -> Answer:
        """200 while the scheduler's loop turns; 503 once it has not for `stuck_after` seconds."""
        with self._lock:
            idle = self._monotonic() - self._last_turn
        if idle > self._stuck_after:
            return Answer(503, f"the scheduler loop has not turned for {idle:.0f} s\n")
        return Answer(200, "alive\n")

    def readiness(self) -> Answer:
        """200 while every target's credential on file has more than the margin left, or is being refreshed on
        time: a credential inside the margin is 503 only once its refresh failed (a normal refresh is not)."""
        now = self._wall()
        status = self.status()
        targets, label = status.targets, self.public_labels(status)
        if not targets:
            return Answer(503, "no credential on file yet\n")
        short = sorted(
            label[name]
            for name, t in targets.items()
            if not self._fresh_enough(t.expires_at, t.issued_at, t.failures, now)
        )
        if short:
            return Answer(503, f"credential within the margin and not refreshed: {', '.join(short)}\n")
        down = self._front() if self._front is not None else None
        if down is not None:
            return Answer(503, f"the pgbouncer front is {down}\n")
        return Answer(200, "ready\n")

    def _fresh_enough(self, expires_at: float | None, issued_at: float | None, failures: int, now: float) -> bool:
        if expires_at is None or expires_at <= now:
            return False
        lifetime = expires_at - issued_at if issued_at is not None else self._margin * 2
        margin = min(self._margin, lifetime / 2)  # as RefreshPolicy: a short-lived credential has half its life
        return expires_at - now > margin or failures == 0
