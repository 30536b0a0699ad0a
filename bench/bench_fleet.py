"""Benchmark 4: one rotation cycle for 1, 10, 100 and 500 targets, each response of the workspace 50 ms late.

In process: `rotator.build_cycle(config_store.load_config(path)).run(force=True)`, timed from reading the config
to the end of the cycle, for a config listing `instance: inst-<i>` per target (no host, no user: the cycle asks
who it is once and looks up each instance's host). The fake workspace runs in its own process and holds 500
instances (`add_instance("inst-<i>", read_write_dns="h<i>.example.com")`), with `delay_seconds=0.05` on every
route. The floor, interleaved with each cycle: one SDK credential call in this process with the same delay
(a new client, its OAuth discovery and token, one `generate_database_credential`).
"""

from __future__ import annotations

import functools
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:  # `python bench/bench_fleet.py` puts bench/, not the repository, on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    TIMES,
    BenchError,
    Options,
    WorkspaceServer,
    environment,
    figure,
    instance_name,
    measure_interleaved,
    scratch,
    standalone,
    timed,
)

NAME = "fleet"
SIZES = (1, 10, 100, 500)
SMOKE_SIZES = (1, 10)
DELAY_SECONDS = 0.05
FLOOR_LABEL = "one SDK credential call, same delay"
SUBLINEAR_FACTOR = 4
"""The goal for growth: a cycle for N targets takes at most N / 4 times as long as a cycle for one."""


def write_config(path: Path, targets: int, *, host: str, pgpass_file: Path) -> Path:
    """A config file (as `configure` writes it) listing `targets` instances by name."""
    lines = ["version: 1", f"workspace_url: {host}", f"pgpass_file: {pgpass_file}", "targets:"]
    lines += [f"- instance: {instance_name(i)}" for i in range(targets)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def one_cycle(config_file: Path, targets: int) -> float:
    """Wall seconds of one forced cycle, from reading the config; every target must have rotated."""
    from databricks.labs.oauth_rotator import config_store, rotator

    outcome: dict[str, Any] = {}

    def cycle() -> None:
        outcome["report"] = rotator.build_cycle(config_store.load_config(config_file)).run(force=True)

    seconds = timed(cycle)
    report = outcome["report"]
    if report.failed or len(report.rotated) != targets:
        failed = "; ".join(f"{k}: {v}" for k, v in list(report.failed.items())[:3])
        raise BenchError(f"{targets} targets: {len(report.rotated)} rotated, {len(report.failed)} failed: {failed}")
    return seconds


def run(options: Options) -> dict[str, Any]:
    from bench.floor_sdk_call import credential_call

    sizes = SMOKE_SIZES if options.smoke else SIZES
    walls: dict[int, list[float]] = {}
    floors: dict[int, list[float]] = {}
    requests: dict[int, int] = {}
    with scratch(options, NAME) as tmp, WorkspaceServer(instances=max(sizes), delay=DELAY_SECONDS) as server:
        home = tmp / "home"
        home.mkdir()
        settings = {"HOME": str(home), "DATABRICKS_LABS_STATE_DIR": str(home / "state"), **server.auth_env()}
        auth = server.auth_env()
        host, client_id, secret = (
            auth["DATABRICKS_HOST"],
            auth["DATABRICKS_CLIENT_ID"],
            auth["DATABRICKS_CLIENT_SECRET"],
        )

        def floor_call() -> None:
            credential_call(host, client_id, secret, instance_name(0))

        with environment(settings):
            for n in sizes:
                config_file = write_config(tmp / f"config-{n}.yml", n, host=server.host, pgpass_file=tmp / "pgpass")
                before = server.requests()
                one_cycle(config_file, n)
                requests[n] = server.requests() - before
                runs = measure_interleaved(
                    {
                        "cycle": functools.partial(one_cycle, config_file, n),
                        "floor": functools.partial(timed, floor_call),
                    },
                    runs=options.runs,
                    warmup=options.warmup,
                )
                walls[n], floors[n] = runs["cycle"], runs["floor"]
    return summarize(sizes, walls, floors, requests)


def summarize(
    sizes: Sequence[int], walls: dict[int, list[float]], floors: dict[int, list[float]], requests: dict[int, int]
) -> dict[str, Any]:
    figures = []
    one = statistics.median(walls[sizes[0]])
    growth = {}
    for n in sizes:
        case = f"{n} target{'s' if n > 1 else ''}"
        figures.append(figure(case, "cycle wall time", "s", walls[n], floor=FLOOR_LABEL, floor_values=floors[n]))
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
    return {
        "title": f"one cycle for many targets, every response {DELAY_SECONDS * 1000:.0f} ms late",
        "floor": FLOOR_LABEL,
        "delay_seconds": DELAY_SECONDS,
        "sizes": list(sizes),
        "requests_per_cycle": {str(n): requests[n] for n in sizes},
        "growth": {str(n): round(g, 3) for n, g in growth.items()},
        "figures": figures,
    }


if __name__ == "__main__":
    standalone(NAME, run, __doc__ or NAME)
