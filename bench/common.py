"""What every benchmark shares: options, measuring a child process, statistics, figures, results and the table.

A figure is a measured value (min, median and max over runs) next to a floor measured in the same run,
interleaved with it, and the ratio of their medians. The machine is shared with other people's test suites, so
the ratio is the figure; the absolute numbers are there for context.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import IO, Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "bench"
RESULTS_FILE = BENCH_DIR / "results.json"
FLOOR_SDK_SCRIPT = BENCH_DIR / "floor_sdk_call.py"
SPAWN_SCRIPT = BENCH_DIR / "spawn.py"
FLOOR_SDK_LABEL = "SDK credential call in a bare process"
BENCHMARKS = ("once", "startup", "daemon", "fleet", "pgpass", "pgbouncer")
"""Section names in results.json, in the order of the table."""
CHILD_TIMEOUT_SECONDS = 120.0
_STRIPPED_ENV_PREFIXES = ("DATABRICKS_", "PG", "PYTHONPROFILEIMPORTTIME", "PYTHONTRACEMALLOC", "PYTHONDEVMODE")
TIMES = "\u00d7"
DASH = "\u2013"
T = TypeVar("T")


class BenchError(RuntimeError):
    """A benchmark could not measure what it meant to: a child failed, a cycle did not rotate every target."""


# ---- options ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """How much to measure. `smoke` runs every benchmark with tiny sizes, in seconds, for `make test`."""

    smoke: bool
    runs: int
    """Measured runs (after `warmup` unmeasured ones) of each subject and floor, for the slow benchmarks."""
    warmup: int
    out: Path
    daemon_minutes: float
    daemon_ttl: int
    """Lifetime in seconds of the credentials the fake workspace issues to the resident daemon."""
    work_dir: Path
    """Where temporary files go; the file system matters for fsync."""

    @property
    def cheap_runs(self) -> int:
        """Runs for benchmarks that take milliseconds: three times as many, for a steadier median."""
        return self.runs * 3


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    add = parser.add_argument
    add("--smoke", action="store_true", help="tiny sizes, a few seconds per benchmark (what `make test` runs)")
    add("--runs", type=int, help="measured runs per subject after the warm-up (default 7; smoke 1)")
    add("--warmup", type=int, help="unmeasured runs per subject first (default 1; smoke 0)")
    add("--out", type=Path, help=f"results file (default {RESULTS_FILE.relative_to(REPO)}; smoke: a temp file)")
    add(
        "--daemon-minutes",
        type=float,
        help="how long the resident daemon runs (default 9, so make bench ends within 10 minutes; smoke 1/3)",
    )
    add("--daemon-ttl", type=int, help="credential lifetime in seconds for the daemon run (default 120; smoke 16)")
    add("--work-dir", type=Path, default=Path(tempfile.gettempdir()), help="where temporary files go")
    return parser


def options_from(args: argparse.Namespace) -> Options:
    """Fill the defaults, which depend on `--smoke`; a smoke run never writes the committed results file."""
    smoke = bool(args.smoke)
    out = args.out or (Path(tempfile.gettempdir()) / "oauth-rotator-bench-smoke.json" if smoke else RESULTS_FILE)
    if smoke and out.resolve() == RESULTS_FILE.resolve():
        raise SystemExit(f"a smoke run must not overwrite {RESULTS_FILE}; pass another --out")
    runs = args.runs if args.runs is not None else (1 if smoke else 7)
    warmup = args.warmup if args.warmup is not None else (0 if smoke else 1)
    if runs < 1 or warmup < 0:
        raise SystemExit("--runs must be at least 1 and --warmup at least 0")
    return Options(
        smoke=smoke,
        runs=runs,
        warmup=warmup,
        out=out,
        daemon_minutes=args.daemon_minutes if args.daemon_minutes is not None else (1 / 3 if smoke else 9.0),
        daemon_ttl=args.daemon_ttl if args.daemon_ttl is not None else (16 if smoke else 120),
        work_dir=args.work_dir,
    )


# ---- measuring -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildRun:
    """One command, from fork to reaping: wall time, and the CPU and peak RSS of that process alone."""

    wall: float
    cpu: float
    max_rss_mib: float
    stdout: bytes
    stderr: bytes


def run_child(
    argv: Sequence[str], *, env: Mapping[str, str], stdin: bytes = b"", timeout: float = CHILD_TIMEOUT_SECONDS
) -> ChildRun:
    """Run `argv` to its end under the `spawn.py` launcher, which measures that one process with `os.wait4`.

    A non-zero exit is a `BenchError` with the end of the child's stderr.
    """
    report_read, report_write = os.pipe()
    launcher = [sys.executable, "-S", "-I", str(SPAWN_SCRIPT), str(report_write), *argv]
    with tempfile.TemporaryFile() as err, os.fdopen(report_read, "rb") as report:
        try:
            child = subprocess.Popen(
                launcher,
                env=dict(env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                pass_fds=(report_write,),
                start_new_session=True,  # so the watchdog can kill the launcher and the command together
            )
        finally:
            os.close(report_write)
        watchdog = threading.Timer(timeout, lambda: _kill_group(child))
        watchdog.start()
        try:
            out = _exchange(child, stdin)
            child.wait()
        finally:
            watchdog.cancel()
        fields = report.read().split()
        err.seek(0)
        errors = err.read()
    if len(fields) != 4:
        raise BenchError(f"{' '.join(argv[:3])} ... was not measured (killed after {timeout:g} s?): {tail(errors)}")
    wall, cpu, max_rss_kib, exit_code = float(fields[0]), float(fields[1]), int(fields[2]), int(fields[3])
    if exit_code != 0:
        raise BenchError(f"{' '.join(argv[:3])} ... exited {exit_code}: {tail(errors)}")
    return ChildRun(wall, cpu, max_rss_kib / 1024, out, errors)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


def _exchange(child: subprocess.Popen[bytes], stdin: bytes) -> bytes:
    """Send `stdin` (small: it fits the pipe buffer), close it, read stdout to its end."""
    assert child.stdin is not None and child.stdout is not None
    with suppress(BrokenPipeError):
        child.stdin.write(stdin)
    child.stdin.close()
    out = child.stdout.read()
    child.stdout.close()
    return out


def tail(data: bytes, lines: int = 5) -> str:
    return " | ".join(data.decode("utf-8", "replace").strip().splitlines()[-lines:])


def timed(work: Callable[[], Any]) -> float:
    """Wall seconds of one call."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def measure_interleaved(subjects: Mapping[str, Callable[[], T]], *, runs: int, warmup: int) -> dict[str, list[T]]:
    """`warmup` unmeasured rounds, then `runs` rounds of every subject, alternating the order each round,
    so a subject and its floor see the same disturbances from the rest of the machine."""
    names = list(subjects)
    for _ in range(warmup):
        for name in names:
            subjects[name]()
    results: dict[str, list[T]] = {name: [] for name in names}
    for i in range(runs):
        for name in names if i % 2 == 0 else reversed(names):
            results[name].append(subjects[name]())
    return results


# ---- environment -----------------------------------------------------------------------------------------------


@contextmanager
def scratch(options: Options, prefix: str) -> Iterator[Path]:
    """A private temporary directory (0700) under `options.work_dir`, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"oauth-rotator-bench-{prefix}-", dir=options.work_dir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def clean_env() -> dict[str, str]:
    """Our environment without Databricks, libpq or profiling settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_ENV_PREFIXES)}


def child_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """`clean_env()` with a private HOME and state folder, plus `extra`."""
    env = clean_env()
    env.update(HOME=str(home), DATABRICKS_LABS_STATE_DIR=str(home / "state"))
    env.update(extra or {})
    return env


def with_bytecode(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without `PYTHONDONTWRITEBYTECODE`: compiled modules are cached (`__pycache__`, ignored by git) and read
    back, as they are in an install, for subject and floor alike.

    With it (some machines set it), every run of a command compiles this package's modules from source again,
    which an install does once; the standard library and site-packages have their bytecode either way.
    """
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables of this process for a block (in-process benchmarks), then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def rotator_command() -> list[str]:
    """The `databricks-oauth-rotator` console script next to this Python, as users run it."""
    script = Path(sys.executable).with_name("databricks-oauth-rotator")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "databricks.labs.oauth_rotator"]


def instance_name(i: int) -> str:
    return f"inst-{i}"


def instance_host(i: int) -> str:
    return f"h{i}.example.com"


class WorkspaceServer:
    """The fake workspace (`testing.workspace.FakeWorkspace`) in its own process, `bench/workspace_server.py`.

    Out of process, its request handling never competes with the code under test for a GIL. It holds
    `instances` Provisioned instances `inst-<i>` (host `h<i>.example.com`); `stats()` asks it for request counts.
    """

    def __init__(self, *, instances: int = 1, delay: float = 0.0, ttl: int = 3600) -> None:
        self._argv = [
            sys.executable,
            str(BENCH_DIR / "workspace_server.py"),
            f"--instances={instances}",
            f"--delay={delay}",
            f"--ttl={ttl}",
        ]
        self._process: subprocess.Popen[str] | None = None
        self.info: dict[str, str] = {}

    def __enter__(self) -> WorkspaceServer:
        self._process = subprocess.Popen(
            self._argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        line = self._stdout().readline()
        if not line:
            self.__exit__()
            raise BenchError("the fake workspace server did not start")
        self.info = json.loads(line)
        return self

    def __exit__(self, *exc_info: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # end of input: the server stops
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def _stdout(self) -> IO[str]:
        assert self._process is not None and self._process.stdout is not None
        return self._process.stdout

    @property
    def host(self) -> str:
        return self.info["host"]

    @property
    def user_name(self) -> str:
        return self.info["user_name"]

    def auth_env(self) -> dict[str, str]:
        """OAuth M2M through the SDK's environment variables, as a service would be set up."""
        return {
            "DATABRICKS_HOST": self.info["host"],
            "DATABRICKS_CLIENT_ID": self.info["client_id"],
            "DATABRICKS_CLIENT_SECRET": self.info["client_secret"],
        }

    def stats(self) -> dict[str, Any]:
        """`{"requests": total so far, "issued": database credentials so far, "calls": per route}`."""
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write("stats\n")
        self._process.stdin.flush()
        stats: dict[str, Any] = json.loads(self._stdout().readline())
        return stats

    def requests(self) -> int:
        return int(self.stats()["requests"])


def stop_process(process: subprocess.Popen[Any], *, grace: float) -> int:
    """SIGTERM, then SIGKILL after `grace` seconds; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


# ---- figures ---------------------------------------------------------------------------------------------------


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def figure(
    case: str,
    metric: str,
    unit: str,
    values: Sequence[float],
    *,
    floor: str | None = None,
    floor_values: Sequence[float] | None = None,
    goal_ratio: float | None = None,
    goal_value: float | None = None,
    judge: str = "median",
) -> dict[str, Any]:
    """One row of the table: min/median/max of `values`, the floor's, the ratio of the medians, and the goal.

    `goal_ratio` bounds the ratio; `goal_value` bounds the `judge` statistic (`median` or `max`) of `values`.
    """
    if not values:
        raise BenchError(f"{case}: {metric}: nothing measured")
    row: dict[str, Any] = {
        "case": case,
        "metric": metric,
        "unit": unit,
        "runs": len(values),
        "min": _round(min(values)),
        "median": _round(statistics.median(values)),
        "max": _round(max(values)),
    }
    if len(values) <= 60:
        row["values"] = [_round(v) for v in values]
    row["floor"] = floor
    row["ratio"] = None
    if floor_values:
        floor_median = statistics.median(floor_values)
        row.update(
            floor_min=_round(min(floor_values)),
            floor_median=_round(floor_median),
            floor_max=_round(max(floor_values)),
        )
        if len(floor_values) <= 60:
            row["floor_values"] = [_round(v) for v in floor_values]
        row["ratio"] = _round(statistics.median(values) / floor_median) if floor_median > 0 else None
    goals, met = [], []
    if goal_ratio is not None:
        goals.append(f"≤ {goal_ratio:g}{TIMES}")
        met.append(row.get("ratio") is not None and row["ratio"] <= goal_ratio)
    if goal_value is not None:
        goals.append(f"{'max ' if judge == 'max' else ''}≤ {goal_value:g} {unit}")
        met.append(row[judge] <= goal_value)
    row["goal"] = ", ".join(goals) or None
    row["met"] = all(met) if met else None
    return row


# ---- results ---------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "?"

    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
        "databricks_sdk": version("databricks-sdk"),
        "oauth_rotator": version("databricks-labs-oauth-rotator"),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def duration(minutes: float) -> str:
    """`20 s`, `10 min`."""
    return f"{minutes * 60:.0f} s" if minutes < 1 else f"{minutes:g} min"


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def run_section(work: Callable[[Options], dict[str, Any]], options: Options) -> dict[str, Any]:
    """Run one benchmark and stamp its section with when it ran, how long it took and the machine's load."""
    started, load_before, clock = now_iso(), load_average(), time.monotonic()
    section = work(options)
    section.update(
        started=started,
        seconds=round(time.monotonic() - clock, 3),
        load_before=load_before,
        load_after=load_average(),
        smoke=options.smoke,
    )
    return section


def write_results(path: Path, sections: Mapping[str, dict[str, Any]], meta: Mapping[str, Any]) -> None:
    """Merge `sections` into the results file (sections of other benchmarks stay) and replace it atomically."""
    try:
        results: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        results = {}
    results["meta"] = {**machine(), **meta, "updated": now_iso()}
    results.update(sections)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=False, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ---- the table -------------------------------------------------------------------------------------------------

HEADERS = ("Benchmark", "Case", "Metric", "Median", f"Min {DASH} max", "Floor median", "Ratio", "Goal", "Met")


def number(value: float) -> str:
    """Three significant digits, never in exponent notation."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2g}"


def table_rows(results: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The table's cells, one row per figure, benchmarks in `BENCHMARKS` order."""
    rows: list[tuple[str, ...]] = []
    for name in BENCHMARKS:
        section = results.get(name)
        if not isinstance(section, dict):
            continue
        for row in section.get("figures", []):
            unit = row["unit"]
            floor = f"{number(row['floor_median'])} {unit}" if "floor_median" in row else DASH
            ratio = f"{row['ratio']:.2f}{TIMES}" if row.get("ratio") is not None else DASH
            met = {True: "yes", False: "**no**", None: DASH}[row.get("met")]
            rows.append(
                (
                    name,
                    row["case"],
                    row["metric"],
                    f"{number(row['median'])} {unit}",
                    f"{number(row['min'])} {DASH} {number(row['max'])}",
                    floor,
                    ratio,
                    row.get("goal") or DASH,
                    met,
                )
            )
    return rows


def format_table(results: Mapping[str, Any]) -> str:
    """The table as aligned plain text, for the terminal."""
    rows = [HEADERS, *(tuple(c.replace("**", "") for c in row) for row in table_rows(results))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def standalone(name: str, work: Callable[[Options], dict[str, Any]], description: str) -> None:
    """`python bench/<benchmark>.py [--smoke] [--out PATH]`: run one benchmark, merge it into the results, print it."""
    options = options_from(build_parser(description).parse_args())
    section = run_section(work, options)
    write_results(options.out, {name: section}, {"smoke": options.smoke})
    print(format_table({name: section}))
    print(f"\nresults: {options.out}")
