"""Benchmark 3: the resident daemon between rotations, and the CPU of one rotation cycle.

* Idle: the scheduler as the background service runs it (`python -m databricks.labs.oauth_rotator run`, here with
  target flags instead of `--config`) runs for `--daemon-minutes` against a fake workspace whose credentials live
  `--daemon-ttl` seconds, so it rotates every ttl/2 seconds. Every 0.5 s we read the daemon's own CPU
  (`utime + stime` in /proc/<pid>/stat: its worker children are not in it) and resident size (VmRSS), and whether
  a worker child exists (/proc/<pid>/task/<pid>/children). Intervals during which a worker ran are the rotation
  cycles; the rest is idle time, and the daemon's CPU in it is extrapolated to an hour. Startup (imports and the
  first cycle) is excluded. The floor is a Python process that waits on an Event in the same 60-second steps,
  sampled the same way at the same time. Goals: resident size between rotations ≤ 2 times the floor's (the ratio
  of the medians; the daemon's samples are flat) and at most 30 MiB in any sample; idle CPU ≤ 1 s per hour.
* One cycle: `python -m databricks.labs.oauth_rotator.commands.worker` with the daemon's own request on stdin (as
  `--instance ... --pg-host ... --pg-username ...` makes it, forced), measured with `os.wait4`, against the SDK
  credential call in a bare process.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fleet_workspace import WorkspaceServer, instance_host, instance_name
from bench.harness import BenchError, Options, scratch, standalone
from bench.processes import FLOOR_SDK_LABEL, FLOOR_SDK_SCRIPT, child_env, run_child, stop_process, tail, with_bytecode
from bench.results import duration
from bench.stats import figure, measure_interleaved
from databricks.labs.oauth_rotator.service.base import MODULE as SERVICE_MODULE

NAME = "daemon"
RSS_GOAL_MIB = 30.0
RSS_GOAL_RATIO = 2.0
IDLE_CPU_GOAL_SECONDS_PER_HOUR = 1.0
SAMPLE_SECONDS = 0.5
IDLE_FLOOR_LABEL = "idle python (Event.wait loop)"
IDLE_FLOOR_CODE = "import threading\nstop = threading.Event()\nwhile not stop.wait(60):\n    pass\n"
WORKER_MODULE = "databricks.labs.oauth_rotator.commands.worker"
SERVICE_COMMAND = [sys.executable, "-m", SERVICE_MODULE, "run"]
"""What every service definition runs (`ServiceSpec.argv`), without its `--config`."""
_TICKS = os.sysconf("SC_CLK_TCK")


def target_flags(pgpass_file: Path, user: str) -> list[str]:
    return [
        f"--instance={instance_name(0)}",
        f"--pg-host={instance_host(0)}",
        "--pg-port=5432",
        f"--pg-username={user}",
        f"--pgpass-file={pgpass_file}",
    ]


# ---- one cycle -------------------------------------------------------------------------------------------------


def run_cycles(options: Options) -> dict[str, Any]:
    """CPU, wall time and peak RSS of one forced cycle in a worker process, against the bare SDK call."""
    from databricks.labs.oauth_rotator.commands.flags import parse_invocation

    with scratch(options, "cycle") as tmp, WorkspaceServer(instances=1) as server:
        home = tmp / "home"
        home.mkdir()
        env = with_bytecode(child_env(home, server.auth_env()))
        invocation = parse_invocation(target_flags(tmp / "pgpass", server.user_name), env)
        request = json.dumps({**invocation.to_worker(), "force": True}).encode()
        worker = [sys.executable, "-m", WORKER_MODULE]
        floor = [sys.executable, str(FLOOR_SDK_SCRIPT), instance_name(0)]

        def cycle() -> Any:
            result = run_child(worker, env=env, stdin=request)
            report = json.loads(result.stdout.decode().strip().splitlines()[-1])
            if report.get("exit_code") != 0:
                raise BenchError(f"the worker reported {report}: {tail(result.stderr)}")
            return result

        runs = measure_interleaved(
            {"worker": cycle, "floor": lambda: run_child(floor, env=env)}, runs=options.runs, warmup=options.warmup
        )
    worker_runs, floor_runs = runs["worker"], runs["floor"]
    case = "one rotation cycle (worker)"
    return {
        "figures": [
            figure(
                case,
                "CPU (user+sys)",
                "s",
                [r.cpu for r in worker_runs],
                floor=FLOOR_SDK_LABEL,
                floor_values=[r.cpu for r in floor_runs],
            ),
            figure(
                case,
                "wall time",
                "s",
                [r.wall for r in worker_runs],
                floor=FLOOR_SDK_LABEL,
                floor_values=[r.wall for r in floor_runs],
            ),
            figure(
                case,
                "peak RSS",
                "MiB",
                [r.max_rss_mib for r in worker_runs],
                floor=FLOOR_SDK_LABEL,
                floor_values=[r.max_rss_mib for r in floor_runs],
            ),
        ]
    }


# ---- the resident process --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    at: float
    """Seconds since the daemon started (monotonic)."""
    cpu: float
    """The process's own user+system CPU seconds so far (children excluded)."""
    rss_mib: float
    busy: bool
    """A worker child existed."""


def read_sample(pid: int, started: float) -> Sample:
    """One reading of /proc for `pid`; an OSError when the process is gone."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: fields 14 and 15 of proc(5)
    rss_kib = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
        busy = bool(children.read().strip())
    return Sample(time.monotonic() - started, cpu, rss_kib / 1024, busy)


def sample_both(
    daemon: subprocess.Popen[bytes], floor: subprocess.Popen[bytes], seconds: float, stop: threading.Event
) -> tuple[list[Sample], list[Sample]]:
    """Sample the daemon and the floor process every `SAMPLE_SECONDS` for `seconds` from now, or until `stop`."""
    started = time.monotonic()
    deadline = started + seconds
    daemon_samples: list[Sample] = []
    floor_samples: list[Sample] = []
    while True:
        if daemon.poll() is not None:
            raise BenchError(f"the daemon exited early with code {daemon.returncode}")
        daemon_samples.append(read_sample(daemon.pid, started))
        floor_samples.append(read_sample(floor.pid, started))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return daemon_samples, floor_samples
        if stop.wait(min(SAMPLE_SECONDS, remaining)):
            raise BenchError("stopped before the end of the idle period")


def settled_index(samples: list[Sample]) -> int:
    """The first sample after the first cycle ended: startup (imports, first rotation) lies before it."""
    seen_cycle = False
    for i, sample in enumerate(samples):
        seen_cycle = seen_cycle or sample.busy
        if seen_cycle and not sample.busy:
            return i
    raise BenchError("the daemon never finished a first rotation cycle")


@dataclass(frozen=True)
class IdleAnalysis:
    idle_seconds: float
    idle_cpu: float
    window_seconds: float
    window_cpu: float
    cycles: int
    idle_rss: list[float]


def analyse(samples: list[Sample]) -> IdleAnalysis:
    """Split the window after startup into idle intervals and intervals with a worker child (a cycle)."""
    window = samples[settled_index(samples) :]
    if len(window) < 3:
        raise BenchError("too short a run after the first cycle to measure idling")
    idle_seconds = idle_cpu = 0.0
    cycles = 0
    for before, after in itertools.pairwise(window):
        if before.busy or after.busy:
            cycles += int(after.busy and not before.busy)
            continue
        idle_seconds += after.at - before.at
        idle_cpu += after.cpu - before.cpu
    return IdleAnalysis(
        idle_seconds=idle_seconds,
        idle_cpu=idle_cpu,
        window_seconds=window[-1].at - window[0].at,
        window_cpu=window[-1].cpu - window[0].cpu,
        cycles=cycles,
        idle_rss=[s.rss_mib for s in window if not s.busy],
    )


def run_idle(options: Options, stop: threading.Event | None = None) -> dict[str, Any]:
    """Run the daemon for `options.daemon_minutes` next to an idle Python process; sample both.

    Setting `stop` ends the run early (with a `BenchError`), the daemon and the workspace stopped cleanly.
    """
    seconds = options.daemon_minutes * 60
    with scratch(options, NAME) as tmp, WorkspaceServer(instances=1, ttl=options.daemon_ttl) as server:
        home = tmp / "home"
        home.mkdir()
        env = with_bytecode(child_env(home, server.auth_env()))
        pgpass_file = tmp / "pgpass"
        with (tmp / "daemon.log").open("wb") as log:
            daemon = subprocess.Popen(
                [*SERVICE_COMMAND, *target_flags(pgpass_file, server.user_name)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            floor = subprocess.Popen([sys.executable, "-c", IDLE_FLOOR_CODE], env=env, stdin=subprocess.DEVNULL)
            try:
                daemon_samples, floor_samples = sample_both(daemon, floor, seconds, stop or threading.Event())
                end_hwm = peak_rss_mib(daemon.pid)
            except BenchError as err:
                raise BenchError(f"{err}: {tail((tmp / 'daemon.log').read_bytes())}") from err
            finally:
                exit_code = stop_process(daemon, grace=100)
                stop_process(floor, grace=5)
        rotations = int(server.stats()["issued"])
    if exit_code != 0:
        raise BenchError(f"the daemon exited {exit_code} on SIGTERM")
    return summarize_idle(options, daemon_samples, floor_samples, rotations, end_hwm)


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process's peak resident size since it started."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def summarize_idle(
    options: Options, daemon_samples: list[Sample], floor_samples: list[Sample], rotations: int, end_hwm: float
) -> dict[str, Any]:
    daemon = analyse(daemon_samples)
    start = daemon_samples[settled_index(daemon_samples)].at
    floor_window = [s for s in floor_samples if s.at >= start]
    floor_cpu = floor_window[-1].cpu - floor_window[0].cpu
    floor_seconds = floor_window[-1].at - floor_window[0].at
    per_hour = 3600 / max(daemon.idle_seconds, 1e-9)
    case = f"resident daemon, {duration(options.daemon_minutes)}"
    last_idle = next(s for s in reversed(daemon_samples) if not s.busy)
    return {
        "minutes": options.daemon_minutes,
        "ttl_seconds": options.daemon_ttl,
        "rotations": rotations,
        "cycles_in_window": daemon.cycles,
        "window_seconds": round(daemon.window_seconds, 1),
        "idle_seconds": round(daemon.idle_seconds, 1),
        "rss_end_mib": round(last_idle.rss_mib, 2),
        "rss_peak_mib": round(end_hwm, 2),
        "cpu_window_seconds": round(daemon.window_cpu, 3),
        # One clock tick of CPU in the idle time, per hour: the smallest non-zero idle figure.
        "cpu_resolution_s_per_hour": round(per_hour / _TICKS, 4),
        "figures": [
            figure(
                case,
                "RSS between rotations",
                "MiB",
                daemon.idle_rss,
                floor=IDLE_FLOOR_LABEL,
                floor_values=[s.rss_mib for s in floor_window],
                goal_ratio=RSS_GOAL_RATIO,
                goal_value=RSS_GOAL_MIB,
                judge="max",
            ),
            figure(
                case,
                "CPU outside cycles",
                "s/h",
                [daemon.idle_cpu * per_hour],
                floor=IDLE_FLOOR_LABEL,
                floor_values=[floor_cpu * 3600 / max(floor_seconds, 1e-9)],
                goal_value=IDLE_CPU_GOAL_SECONDS_PER_HOUR,
            ),
            figure(
                case,
                f"CPU incl. its part of {daemon.cycles} cycles",
                "s/h",
                [daemon.window_cpu * 3600 / max(daemon.window_seconds, 1e-9)],
            ),
        ],
    }


def combine(idle: dict[str, Any], cycles: dict[str, Any]) -> dict[str, Any]:
    """The daemon section from its two parts."""
    return {
        "title": "resident daemon between rotations, and one rotation cycle",
        **{k: v for k, v in idle.items() if k != "figures"},
        "figures": [*idle["figures"], *cycles["figures"]],
    }


def run(options: Options) -> dict[str, Any]:
    return combine(run_idle(options), run_cycles(options))


if __name__ == "__main__":
    standalone(NAME, run, __doc__ or NAME)
