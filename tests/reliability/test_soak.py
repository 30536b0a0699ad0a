"""The soak: the daemon rotates 15-second credentials for `--soak-minutes` (default 30) while psql logs in every
second, the workspace misbehaves now and then (a 3 s burst of 503s, a malformed answer, an empty token), and the
daemon is SIGKILLed and restarted every few minutes. Run with `make soak` (`pytest ... --soak -s`).

Checks: every `.pgpass` version valid (the watch), 0 psql logins failing while a valid credential exists, the
scheduler's resident memory growing less than 10 MB and its open files flat, no temp or lock files piling up.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from tests.reliability.conftest import Figures, Home
from tests.reliability.rig import fd_count, rss_kib, temp_files
from tests.rigs.workspace import FakeWorkspace

TTL_SECONDS = 15
KILL_EVERY_SECONDS = 300
FAULT_EVERY_SECONDS = 90
SAMPLE_EVERY_SECONDS = 10
WARM_UP_SECONDS = 60


def _burst(ws: FakeWorkspace) -> None:
    ws.fail_next(100_000, status=503)
    time.sleep(3)
    ws.fail_next(0, status=503)


FAULTS: dict[str, Callable[[FakeWorkspace], None]] = {
    "503 burst (3 s)": _burst,
    "malformed answer": lambda ws: ws.malformed_next(1, path_prefix="/api/2.0/database/credentials"),
    "empty token": lambda ws: ws.empty_token_next(1),
}


@pytest.mark.soak
def test_soak(home: Home, figures: Figures, request: pytest.FixtureRequest):
    minutes = float(request.config.getoption("--soak-minutes"))
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    kill_every = min(KILL_EVERY_SECONDS, minutes * 60 / 3)
    home.workspace.ttl_seconds = TTL_SECONDS
    home.write_user_lines()
    daemon = home.daemon(name="soak-0")
    kills = 0
    faults: dict[str, int] = dict.fromkeys(FAULTS, 0)
    samples: list[tuple[int, float, int, int]] = []  # (daemon number, seconds into its life, RSS KiB, open fds)
    entries: list[int] = []
    started = time.monotonic()
    born = started
    next_kill = started + rng.uniform(0.5, 1.5) * kill_every
    next_fault = started + rng.uniform(0.5, 1.5) * FAULT_EVERY_SECONDS
    next_sample = started + SAMPLE_EVERY_SECONDS
    end = started + minutes * 60
    with home.watch() as watch:
        home.wait_first_rotation()
        with home.judge(interval=1.0) as judge:
            while time.monotonic() < end:
                now = time.monotonic()
                if now >= next_kill:
                    time.sleep(rng.uniform(0, TTL_SECONDS / 2))  # a random point of a cycle
                    daemon.kill_group()
                    kills += 1
                    daemon = home.daemon(name=f"soak-{kills}")
                    born = time.monotonic()
                    next_kill = born + rng.uniform(0.5, 1.5) * kill_every
                elif now >= next_fault:
                    name = rng.choice(sorted(FAULTS))
                    FAULTS[name](home.workspace)
                    faults[name] += 1
                    next_fault = time.monotonic() + rng.uniform(0.5, 1.5) * FAULT_EVERY_SECONDS
                elif now >= next_sample:
                    rss, fds = rss_kib(daemon.pid), fd_count(daemon.pid)
                    if rss is not None and fds is not None:
                        samples.append((kills, now - born, rss, fds))
                    entries.append(_entries(home))
                    next_sample = now + SAMPLE_EVERY_SECONDS
                time.sleep(0.2)
        counts = judge.counts
    code = daemon.terminate()
    temps = temp_files(home.root) + temp_files(home.status_file.parent)
    # Memory and files of each daemon life, after it settled.
    growth = []
    for life in sorted({s[0] for s in samples}):
        settled = [s for s in samples if s[0] == life and s[1] >= WARM_UP_SECONDS]
        if len(settled) >= 2:
            growth.append((settled[-1][2] - settled[0][2], max(s[3] for s in settled) - min(s[3] for s in settled)))
    rss_growth_kib = max((g[0] for g in growth), default=0)
    fd_spread = max((g[1] for g in growth), default=0)
    rss_values = [s[2] for s in samples]
    rotations = len(watch.writes)
    figures.record(
        "soak/rotation-under-faults-and-kills",
        group="Soak",
        injected=f"{minutes:g} min of {TTL_SECONDS} s credentials; psql every second; "
        f"{sum(faults.values())} faults ({', '.join(f'{n} x {k}' for k, n in faults.items())}); {kills} SIGKILL "
        f"+ restart; seed {seed}",
        goal="every `.pgpass` version valid; 0 logins fail while a valid credential exists; scheduler RSS growth "
        "< 10 MB and flat open files per daemon life; no temp or lock files piling up",
        measured=f"{rotations} credentials written, {len(watch.anomalies)} bad; {counts.text()} "
        f"({counts.superseded} lost the test server's supersede race); scheduler RSS "
        f"{min(rss_values, default=0) / 1024:.1f}-{max(rss_values, default=0) / 1024:.1f} MB, growth "
        f"{rss_growth_kib / 1024:.2f} MB per life; open files spread {fd_spread}; directory entries "
        f"{min(entries, default=0)}-{max(entries, default=0)}; {len(temps)} temp files at the end",
        minutes=minutes,
        rotations=rotations,
        kills=kills,
        faults=faults,
        bad_writes=len(watch.anomalies),
        rss_growth_kib=rss_growth_kib,
        fd_spread=fd_spread,
        temp_files=len(temps),
        data=counts.summary(),
    )
    assert watch.anomalies == [], watch.anomalies[:10]
    assert counts.failed == 0, counts.failures[:10]
    assert rss_growth_kib < 10 * 1024
    assert fd_spread <= 2
    assert temps == [] and code == 0
    assert max(entries, default=0) - min(entries, default=0) <= 1


def _entries(home: Home) -> int:
    """Files next to `.pgpass` and in the state folder, but for the daemons' own output files (soak-N.*)."""
    names = [p.name for p in home.root.iterdir() if not p.name.startswith("soak-")]
    return len(names) + len(list(home.status_file.parent.iterdir()))
