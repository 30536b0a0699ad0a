"""Benchmark 1: `databricks-oauth-rotator --once` against one SDK credential call in a bare Python process.

Both run as child processes with OAuth M2M set in the environment, against the fake workspace on loopback, and
make the same HTTP exchanges (the rotator is told the host and the user, so it looks up neither): the
difference is the rotator's own imports and work, including its durable `.pgpass` write and status record.
Measured per process with `os.wait4`: wall time from spawn to exit, peak RSS, CPU.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

from bench.fleet_workspace import WorkspaceServer, instance_host, instance_name
from bench.harness import BenchError, Options, scratch, standalone
from bench.processes import FLOOR_SDK_LABEL, FLOOR_SDK_SCRIPT, ChildRun, child_env, rotator_command, run_child
from bench.stats import figure, measure_interleaved

NAME = "once"
GOAL_RATIO = 1.15


def rotator_argv(pgpass_file: Path, user: str) -> list[str]:
    """`--once` for one Provisioned instance, host and user given (as the floor, no lookups)."""
    return [
        *rotator_command(),
        "--once",
        f"--instance={instance_name(0)}",
        f"--pg-host={instance_host(0)}",
        "--pg-port=5432",
        f"--pg-username={user}",
        f"--pgpass-file={pgpass_file}",
    ]


def run(options: Options) -> dict[str, Any]:
    with scratch(options, NAME) as tmp, WorkspaceServer(instances=1) as server:
        home = tmp / "home"
        home.mkdir()
        env = child_env(home, server.auth_env())
        pgpass_file = tmp / "pgpass"
        commands = {
            "rotator": rotator_argv(pgpass_file, server.user_name),
            "floor": [sys.executable, str(FLOOR_SDK_SCRIPT), instance_name(0)],
        }
        requests: dict[str, list[int]] = {name: [] for name in commands}

        def subject(name: str) -> ChildRun:
            before = server.requests()
            result = run_child(commands[name], env=env)
            requests[name].append(server.requests() - before)
            return result

        runs = measure_interleaved(
            {name: functools.partial(subject, name) for name in commands}, runs=options.runs, warmup=options.warmup
        )
        if instance_host(0).encode() not in pgpass_file.read_bytes():
            raise BenchError(f"--once did not write its line to {pgpass_file}")
    rotator, floor = runs["rotator"], runs["floor"]
    return {
        "title": "databricks-oauth-rotator --once, one provisioned target (M2M)",
        "floor": FLOOR_SDK_LABEL,
        "requests_per_run": {name: sorted(set(counts)) for name, counts in requests.items()},
        "figures": [
            figure(
                "--once",
                "wall time",
                "s",
                [r.wall for r in rotator],
                floor=FLOOR_SDK_LABEL,
                floor_values=[r.wall for r in floor],
                goal_ratio=GOAL_RATIO,
            ),
            figure(
                "--once",
                "peak RSS",
                "MiB",
                [r.max_rss_mib for r in rotator],
                floor=FLOOR_SDK_LABEL,
                floor_values=[r.max_rss_mib for r in floor],
                goal_ratio=GOAL_RATIO,
            ),
            figure(
                "--once",
                "CPU (user+sys)",
                "s",
                [r.cpu for r in rotator],
                floor=FLOOR_SDK_LABEL,
                floor_values=[r.cpu for r in floor],
            ),
        ],
    }


if __name__ == "__main__":
    standalone(NAME, run, __doc__ or NAME)
