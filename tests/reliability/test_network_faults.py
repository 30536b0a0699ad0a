"""The workspace misbehaves while the daemon runs with short-lived credentials; psql keeps logging in.

Each scenario starts `databricks-oauth-rotator run` for a Provisioned instance, waits for its first credential,
then injects one fault where the next refresh falls due, and measures:

* psql logins attempted and failed during the whole run (goal: none fails while a valid credential exists),
* the time from the end of the fault until a fresh credential is in `.pgpass` (goal: within the backoff cap,
  300 s; in practice seconds),
* every `.pgpass` version the watch saw (goal: never empty, expired, unknown, another user's, or older).

Timed faults start 2 s before the refresh is due and last less than the credential's remaining life, so the
old credential always covers the gap, as a 50-minute refresh of a 60-minute credential covers a short outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.reliability.conftest import Figures, Home
from tests.reliability.rig import log_lines, wait_for
from tests.rigs.workspace import FakeWorkspace

pytestmark = pytest.mark.timeout(300)  # scenarios wait for real cycles on a shared, loaded machine
GROUP = "Network faults"
BACKOFF_CAP_SECONDS = 300
CREDENTIALS = "/api/2.0/database/credentials"


@dataclass(frozen=True)
class Fault:
    scenario: str
    injected: str
    ttl: int
    inject: Callable[[FakeWorkspace], object]
    clear: Callable[[FakeWorkspace], object] | None = None
    hold: float = 0.0
    """Seconds the fault lasts; 0 means it is a number of bad answers, over when they have been served."""
    lead: float = 2.0
    """A timed fault starts this many seconds before the refresh falls due."""
    bad_answers: int = 0


def _burst(ws: FakeWorkspace) -> None:
    ws.fail_next(1, status=502)  # the SDK does not retry this one: a failed cycle, then backoff
    ws.fail_next(100_000, status=503)  # this one it retries within the cycle


def _clear_burst(ws: FakeWorkspace) -> None:
    for status in (502, 503):
        ws.fail_next(0, status=status)


def _slow(ws: FakeWorkspace) -> None:
    ws.delay_path_prefix = "/api/"
    ws.delay_seconds = 120  # far beyond the product's 10 s HTTP timeout


def _fast(ws: FakeWorkspace) -> None:
    ws.delay_seconds = 0  # releases the requests still waiting


TIMED = [
    Fault(
        "network/5xx-burst",
        "every API request fails for 10 s: a 502, then 503s",
        ttl=40,
        inject=_burst,
        clear=_clear_burst,
        hold=10,
    ),
    Fault(
        "network/429-retry-after",
        "every API request answers 429 with `Retry-After: 2` for 8 s",
        ttl=30,
        inject=lambda ws: ws.fail_next(100_000, status=429, retry_after=2),
        clear=lambda ws: ws.fail_next(0, status=429),
        hold=8,
    ),
    Fault(
        "network/timeouts",
        "every API response takes 120 s (client timeout 10 s) for 8 s",
        ttl=30,
        inject=_slow,
        clear=_fast,
        hold=8,
    ),
    Fault(
        "network/connection-refused",
        "the workspace port is closed for 40 s (the 2-minute outage scaled to a 90 s credential), from 20 s "
        "before its refresh",
        ttl=90,
        inject=lambda ws: ws.stop(),
        clear=lambda ws: ws.start(),
        hold=40,
        lead=20,
    ),
]

BAD_ANSWERS = [
    Fault(
        "network/malformed-json",
        "the next credential response is 200 with truncated JSON",
        ttl=30,
        inject=lambda ws: ws.malformed_next(1, path_prefix=CREDENTIALS),
        bad_answers=1,
    ),
    Fault(
        "network/empty-token",
        'the next 2 credential responses are 200 with `"token": ""`',
        ttl=50,
        inject=lambda ws: ws.empty_token_next(2),
        bad_answers=2,
    ),
    Fault(
        "network/expired-token",
        "the next credential expired a minute before it was issued",
        ttl=30,
        inject=lambda ws: ws.expired_token_next(1),
        bad_answers=1,
    ),
    Fault(
        "network/wrong-user",
        "the next credential is minted for another user (JWT `sub` = someone-else@example.com)",
        ttl=30,
        inject=lambda ws: ws.wrong_user_next(1),
        bad_answers=1,
    ),
]


def _bad_answers_served(ws: FakeWorkspace, before: int, count: int) -> Callable[[], bool]:
    return lambda: ws.calls[f"POST {CREDENTIALS}"] >= before + count


def run_fault(home: Home, figures: Figures, fault: Fault) -> None:
    """The user's story: the daemon keeps `.pgpass` fresh, the workspace misbehaves once, psql never notices."""
    ws = home.workspace
    ws.ttl_seconds = fault.ttl
    home.write_user_lines()
    daemon = home.daemon()
    with home.watch() as watch:
        home.wait_first_rotation()
        with home.judge() as judge:
            first = home.rig.credential(home.current_token())
            assert first is not None
            issued_at = home.rig.issued_at[first.token]
            if fault.hold:
                # Start just before the refresh falls due (half the lifetime), so the fault meets the refresh.
                time.sleep(max(0.0, issued_at + fault.ttl / 2 - fault.lead - time.time()))
            started, calls_before = time.time(), home.api_calls()
            credential_calls = ws.calls[f"POST {CREDENTIALS}"]
            fault.inject(ws)
            if fault.hold:
                time.sleep(fault.hold)
                assert fault.clear is not None
                fault.clear(ws)
            else:
                # Served at the next refresh and the retry after it (unless the first was taken for good).
                wait_for(_bad_answers_served(ws, credential_calls, fault.bad_answers), timeout=fault.ttl)
            ended = time.time()
            refused = home.api_calls() - calls_before
            recovered = wait_for(lambda: _fresh(home, started), timeout=120)
            recovery = max(0.0, time.time() - ended) if recovered is not None else None
            time.sleep(3)  # logins with the fresh credential
        counts = judge.counts
    code = daemon.terminate()
    failures = sum(1 for line in log_lines(home) if "Rotation of" in line and "fail" in line)  # the workers' lines
    figures.record(
        fault.scenario,
        group=GROUP,
        injected=fault.injected,
        goal="0 psql logins fail while a valid credential exists; recovery ≤ 300 s; no bad `.pgpass` write",
        measured=(
            f"{counts.text()}; fresh credential {recovery:.1f} s after the fault ended"
            if recovery is not None
            else f"{counts.text()}; NO fresh credential within 120 s"
        )
        + f"; {refused} API requests during the fault, {failures} failed cycles; "
        f"{len(watch.writes)} credentials written, {len(watch.anomalies)} bad",
        recovery_seconds=recovery,
        requests_during_fault=refused,
        failed_cycles=failures,
        credentials_written=len(watch.writes),
        bad_writes=len(watch.anomalies),
        data=counts.summary(),
    )
    assert watch.anomalies == [], watch.anomalies
    assert ws.calls[f"POST {CREDENTIALS}"] >= credential_calls + fault.bad_answers, "the fault was never served"
    assert recovery is not None and recovery <= BACKOFF_CAP_SECONDS
    assert counts.failed == 0 and counts.failed_no_valid == 0, counts.failures
    assert counts.ok > 0
    assert code == 0, daemon.stderr()[-2000:]


def _fresh(home: Home, since: float) -> bool:
    """`.pgpass` holds a valid credential for the user, issued after `since`."""
    token = home.current_token()
    return home.rig.valid(token, time.time()) and home.rig.issued_at.get(token or "", 0) >= since


@pytest.mark.parametrize(
    "fault",
    [pytest.param(f, marks=pytest.mark.slow) if f.hold > 30 else f for f in TIMED],
    ids=[f.scenario.split("/")[1] for f in TIMED],
)
def test_psql_keeps_working_through_a_network_fault(home: Home, figures: Figures, fault: Fault):
    run_fault(home, figures, fault)


@pytest.mark.parametrize("fault", BAD_ANSWERS, ids=[f.scenario.split("/")[1] for f in BAD_ANSWERS])
def test_a_bad_answer_is_never_written_and_the_next_good_one_is(home: Home, figures: Figures, fault: Fault):
    run_fault(home, figures, fault)
