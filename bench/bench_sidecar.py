"""Benchmark: the resident daemon with the sidecar's HTTP endpoints on (`--http-port`), against the same daemon
with them off, in the same run.

Both daemons run side by side for `--daemon-minutes` against one fake workspace whose credentials live
`--daemon-ttl` seconds (so each rotates every ttl/2 seconds). The one with the endpoints is probed as a pod would
be, more often than deploy/kubernetes/ asks: /liveness, /readiness and /startup, and a Prometheus scrape of
/metrics, every `PROBE_SECONDS` (the first scrape at once, so prometheus_client is loaded in the whole window).
Both are sampled every 0.5 s from /proc as in `bench_daemon` (own CPU, VmRSS, whether a worker child runs);
startup and the intervals with a cycle are left out. The floor is the daemon without the endpoints. Goals: resident
size at most 2 times the floor's (ratio of the medians) and at most 30 MiB in any sample, the resident daemon's own
goals; CPU outside the cycles, probes included, at most 10 s per hour.
"""

from __future__ import annotations

import http.client
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tests.rigs.net import free_port

from bench.bench_daemon import SERVICE_COMMAND, analyse, sample_both, target_flags
from bench.fleet_workspace import WorkspaceServer
from bench.harness import BenchError, Options, scratch, standalone
from bench.processes import child_env, stop_process, tail, with_bytecode
from bench.results import duration
from bench.stats import figure

NAME = "sidecar"
PROBE_SECONDS = 5.0
PATHS = ("/liveness", "/readiness", "/startup", "/metrics")
RSS_GOAL_RATIO = 2.0
RSS_GOAL_MIB = 30.0
"""The resident daemon's own goals (`bench_daemon`): prometheus_client and http.server add about 10 MiB to its 15."""
IDLE_CPU_GOAL_SECONDS_PER_HOUR = 10.0
FLOOR_LABEL = "the daemon without endpoints"


def get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


class Prober(threading.Thread):
    """A kubelet and a Prometheus in one: every path every `PROBE_SECONDS` until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stopped = threading.Event()
        self.calls = 0
        self.errors: list[str] = []

    def run(self) -> None:
        while True:
            for path in PATHS:
                try:
                    get(self.port, path)
                    self.calls += 1
                except OSError as err:
                    self.errors.append(f"{path}: {err}")
            if self.stopped.wait(PROBE_SECONDS):
                return


def wait_listening(port: int, daemon: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            get(port, "/metrics")
            return
        except OSError:
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise BenchError("the daemon with endpoints never answered") from None
            time.sleep(0.1)


def start_daemon(tmp: Path, name: str, server: WorkspaceServer, *extra: str) -> subprocess.Popen[bytes]:
    home = tmp / name
    home.mkdir()
    env = with_bytecode(child_env(home, server.auth_env()))
    with (tmp / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [*SERVICE_COMMAND, *target_flags(home / "pgpass", server.user_name), *extra],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def run(options: Options) -> dict[str, Any]:
    seconds = options.daemon_minutes * 60
    port = free_port()
    with scratch(options, NAME) as tmp, WorkspaceServer(instances=1, ttl=options.daemon_ttl) as server:
        off = start_daemon(tmp, "off", server)
        on = start_daemon(tmp, "on", server, "--http-port", str(port))
        prober = Prober(port)
        try:
            wait_listening(port, on)
            prober.start()
            on_samples, off_samples = sample_both(on, off, seconds, threading.Event())
        except BenchError as err:
            raise BenchError(f"{err}: {tail((tmp / 'on.log').read_bytes())}") from err
        finally:
            prober.stopped.set()
            prober.join(timeout=15)
            codes = stop_process(on, grace=100), stop_process(off, grace=100)
    if codes != (0, 0):
        raise BenchError(f"the daemons exited {codes} on SIGTERM")
    if prober.errors:
        raise BenchError(f"probes failed: {prober.errors[:3]}")
    return summarize(options, analyse(on_samples), analyse(off_samples), prober.calls)


def summarize(options: Options, on: Any, off: Any, calls: int) -> dict[str, Any]:
    case = f"resident daemon with the HTTP endpoints, {duration(options.daemon_minutes)}"
    on_cpu = on.idle_cpu * 3600 / max(on.idle_seconds, 1e-9)
    off_cpu = off.idle_cpu * 3600 / max(off.idle_seconds, 1e-9)
    return {
        "title": "the sidecar: the daemon with its HTTP endpoints on, against off",
        "minutes": options.daemon_minutes,
        "ttl_seconds": options.daemon_ttl,
        "probe_seconds": PROBE_SECONDS,
        "http_calls": calls,
        "cycles_in_window": {"on": on.cycles, "off": off.cycles},
        "figures": [
            figure(
                case,
                "RSS between rotations",
                "MiB",
                on.idle_rss,
                floor=FLOOR_LABEL,
                floor_values=off.idle_rss,
                goal_ratio=RSS_GOAL_RATIO,
                goal_value=RSS_GOAL_MIB,
                judge="max",
            ),
            figure(
                case,
                f"CPU outside cycles, probed every {PROBE_SECONDS:g} s",
                "s/h",
                [on_cpu],
                floor=FLOOR_LABEL,
                floor_values=[off_cpu],
                goal_value=IDLE_CPU_GOAL_SECONDS_PER_HOUR,
            ),
        ],
    }


if __name__ == "__main__":
    standalone(NAME, run, __doc__ or NAME)
