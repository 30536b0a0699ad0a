"""When a credential is due for refresh, how long to back off after a failure, and the clock both are read from.

Stdlib only: the long-lived scheduler imports this module and must stay light.
"""

from __future__ import annotations

import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from databricks.labs.oauth_rotator.names import DEFAULT_MARGIN_MINUTES, capped_margin

MAX_SLEEP_SECONDS = 60.0
"""The scheduler never sleeps longer than this, so a laptop waking from suspend is noticed within a minute:
`time.sleep` runs on the monotonic clock, which stops while the machine is suspended; the wall clock does not."""


MIN_REFRESH_SECONDS = 60.0
"""A credential is never replaced sooner than this after it was issued, whatever it says about its own life."""
MIN_REFRESH_VARIABLE = "DATABRICKS_OAUTH_ROTATOR_MIN_REFRESH_SECONDS"
"""Lowers that floor (1 to 60 seconds), for tests and demos whose fake workspace issues credentials that live
seconds; anything else in it is ignored. It cannot raise the floor, nor remove it."""


def min_refresh_seconds(environ: Mapping[str, str]) -> float:
    """The refresh floor: `MIN_REFRESH_SECONDS`, or the lower one `MIN_REFRESH_VARIABLE` asks for (at least 1 s)."""
    try:
        wanted = float(environ.get(MIN_REFRESH_VARIABLE, ""))
    except ValueError:
        return MIN_REFRESH_SECONDS
    return wanted if 1.0 <= wanted <= MIN_REFRESH_SECONDS else MIN_REFRESH_SECONDS


class Clock(ABC):
    """Wall-clock time and waiting, passed in so tests can jump time (suspend, expiry) without sleeping."""

    @abstractmethod
    def time(self) -> float:
        """Seconds since the epoch, from the wall clock."""

    @abstractmethod
    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait up to `seconds` or until `stop` is set; returns whether `stop` is set."""


class SystemClock(Clock):
    def time(self) -> float:
        return time.time()

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        return stop.wait(max(0.0, seconds))


class FakeClock(Clock):
    """A clock that moves only when waited on or told to jump (a suspend, a changed system time)."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self.waits: list[float] = []

    def time(self) -> float:
        return self._now

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self._now += max(0.0, seconds)
        return stop.is_set()

    def jump(self, seconds: float) -> None:
        """Move the wall clock as a suspend of `seconds` would."""
        self._now += seconds


@dataclass(frozen=True)
class RefreshPolicy:
    """The renewal ladder: refresh when less than `margin` is left, or `interval` after issue, whichever is first.

    A credential shorter-lived than twice the margin (tests, or a server that caps the lifetime) is refreshed
    at half its lifetime instead, and never sooner than `min_refresh_seconds` after issue, whatever the credential
    says: a workspace answering with two-second credentials gets one request a minute, not one a second.
    """

    margin_seconds: float = DEFAULT_MARGIN_MINUTES * 60.0
    interval_seconds: float = 3000.0
    min_refresh_seconds: float = MIN_REFRESH_SECONDS
    backoff_base_seconds: float = 5.0
    backoff_cap_seconds: float = 300.0
    needs_person_retry_seconds: float = 900.0

    def due_at(self, issued_at: float, expires_at: float) -> float:
        """The wall-clock time at which a credential issued at `issued_at` should be replaced."""
        margin = capped_margin(self.margin_seconds, expires_at - issued_at)
        return max(min(expires_at - margin, issued_at + self.interval_seconds), issued_at + self.min_refresh_seconds)

    def retry_delay(self, failures: int, *, needs_person: bool, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt number `failures + 1`, with jitter so many clients do not retry together.

        Errors that need a person are retried slowly: the user is told once, and hammering the identity
        provider will not fix an expired login.
        """
        if needs_person:
            return self.needs_person_retry_seconds
        rng = rng or random.Random()
        exponent = min(max(failures - 1, 0), 16)
        ceiling = min(self.backoff_cap_seconds, self.backoff_base_seconds * 2**exponent)
        return rng.uniform(ceiling / 2, ceiling)
