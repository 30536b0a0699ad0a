"""Benchmark 4: one rotation cycle for 1, 10, 50, 100 and 500 targets, each response of the workspace 50 ms late.

In process: `rotate.build_cycle(config_store.load_config(path)).run(force=True)`, timed from reading the config
to the end of the cycle, for a config listing `instance: inst-<i>` per target (no host, no user: the cycle asks
who it is once and looks up each instance's host). The fake workspace runs in its own process and holds 500
instances (`add_instance("inst-<i>", read_write_dns="h<i>.example.com")`), with `delay_seconds=0.05` on every
route.

The floor is the concurrency floor of that same cycle: the requests it made (counted by the workspace, run by run)
times the delay, divided by the cycle's concurrency (`cycle.MAX_CONCURRENT_FETCHES`): what the cycle would take
if nothing but the workspace's delay cost time and every request overlapped with as many others as the cycle
allows. Goal for 500 targets: at most 1.3 times that floor.

The write phase (`CycleReport.write_seconds`: `.pgpass` with its lookups, `pg_service.conf`, status.json, from the
end of fetching to the end of the cycle) is reported for each size; for 500 targets against the one for 50, from
the same run, with the goal that ten times the targets cost at most 12 times as long.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fleet_workspace import WorkspaceServer, instance_name
from bench.harness import BenchError, Options, scratch, standalone
from bench.processes import environment
from bench.results import TIMES
from bench.stats import figure, measure_interleaved

NAME = "fleet"
SIZES = (1, 10, 50, 100, 500)
SMOKE_SIZES = (1, 10)
DELAY_SECONDS = 0.05
FLOOR_LABEL = f"requests {TIMES} delay \u00f7 concurrency"
FLOOR_GOAL = 1.3
"""The goal for 500 targets: at most this many times the concurrency floor."""
FLOOR_GOAL_SIZE = 500
WRITE_GOAL = 12.0
"""The goal for the write phase: ten times the targets (500 against 50) take at most this many times as long."""
SUBLINEAR_FACTOR = 4
"""The goal for growth: a cycle for N targets takes at most N / 4 times as long as a cycle for one."""


@dataclass(frozen=True)
class Run:
    """One measured cycle."""

    seconds: float
    write_seconds: float
    requests: int


def write_config(path: Path, targets: int, *, host: str, pgpass_file: Path) -> Path:
    """A config file (as `configure` writes it) listing `targets` instances by name."""
    lines = ["version: 1", f"workspace_url: {host}", f"pgpass_file: {pgpass_file}", "targets:"]
    lines += [f"- instance: {instance_name(i)}" for i in range(targets)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def one_cycle(config_file: Path, targets: int, server: WorkspaceServer) -> Run:
    """One forced cycle, timed from reading the config; every target must have rotated."""
    import time

    from databricks.labs.oauth_rotator.app import rotate
    from databricks.labs.oauth_rotator.files import config_store

    before = server.requests()
    started = time.perf_counter()
    report = rotate.build_cycle(config_store.load_config(config_file)).run(force=True)
    seconds = time.perf_counter() - started
    requests = server.requests() - before
    if report.failed or len(report.rotated) != targets:
        failed = "; ".join(f"{k}: {v}" for k, v in list(report.failed.items())[:3])
        raise BenchError(f"{targets} targets: {len(report.rotated)} rotated, {len(report.failed)} failed: {failed}")
    return Run(seconds, report.write_seconds, requests)


def concurrency() -> int:
    from databricks.labs.oauth_rotator.rotation.cycle import MAX_CONCURRENT_FETCHES

    return MAX_CONCURRENT_FETCHES


def run(options: Options) -> dict[str, Any]:
    sizes = SMOKE_SIZES if options.smoke else SIZES
    runs: dict[int, list[Run]] = {}
    with scratch(options, NAME) as tmp, WorkspaceServer(instances=max(sizes), delay=DELAY_SECONDS) as server:
        home = tmp / "home"
        home.mkdir()
        settings = {"HOME": str(home), "DATABRICKS_LABS_STATE_DIR": str(home / "state"), **server.auth_env()}
        with environment(settings):
            for n in sizes:
                config_file = write_config(tmp / f"config-{n}.yml", n, host=server.host, pgpass_file=tmp / "pgpass")
                measured = measure_interleaved(
                    {"cycle": functools.partial(one_cycle, config_file, n, server)},
                    runs=options.runs,
                    warmup=options.warmup,
                )
                runs[n] = measured["cycle"]
    return summarize(sizes, runs, concurrency())


def floor_seconds(run_: Run, workers: int) -> float:
    return run_.requests * DELAY_SECONDS / workers


def summarize(sizes: Sequence[int], runs: dict[int, list[Run]], workers: int) -> dict[str, Any]:
    figures = []
    walls = {n: [r.seconds for r in runs[n]] for n in sizes}
    one = statistics.median(walls[sizes[0]])
    growth = {}
    for n in sizes:
        case = f"{n} target{'s' if n > 1 else ''}"
        figures.append(
            figure(
                case,
                "cycle wall time",
                "s",
                walls[n],
                floor=FLOOR_LABEL,
                floor_values=[floor_seconds(r, workers) for r in runs[n]],
                goal_ratio=FLOOR_GOAL if n == FLOOR_GOAL_SIZE else None,
            )
        )
        figures.append(figure(case, "time per target", "ms", [w * 1000 / n for w in walls[n]]))
        growth[n] = statistics.median(walls[n]) / one
        if n > 1:
            figures.append(
                figure(
                    case,
                    f"growth vs {sizes[0]} target",
                    TIMES,
                    [w / one for w in walls[n]],
                    goal_value=n / SUBLINEAR_FACTOR,
                )
            )
    small, large = write_pair(sizes)
    figures.append(
        figure(
            f"{large} targets",
            "write phase",
            "ms",
            [r.write_seconds * 1000 for r in runs[large]],
            floor=f"write phase for {small} target{'s' if small > 1 else ''}",
            floor_values=[r.write_seconds * 1000 for r in runs[small]],
            goal_ratio=WRITE_GOAL,
        )
    )
    return {
        "title": f"one cycle for many targets, every response {DELAY_SECONDS * 1000:.0f} ms late",
        "floor": FLOOR_LABEL,
        "delay_seconds": DELAY_SECONDS,
        "concurrency": workers,
        "sizes": list(sizes),
        "requests_per_cycle": {str(n): runs[n][0].requests for n in sizes},
        "write_phase_ms": {str(n): round(statistics.median(r.write_seconds for r in runs[n]) * 1000, 3) for n in sizes},
        "growth": {str(n): round(g, 3) for n, g in growth.items()},
        "figures": figures,
    }


def write_pair(sizes: Sequence[int]) -> tuple[int, int]:
    """The sizes whose write phases are compared: 50 and 500 targets (the two largest in a smoke run)."""
    if 50 in sizes and 500 in sizes:
        return 50, 500
    return sizes[-2], sizes[-1]


if __name__ == "__main__":
    standalone(NAME, run, __doc__ or NAME)
