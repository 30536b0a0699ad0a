"""How a benchmark runs: its options (`--smoke` for `make test`), scratch folders, and running one
section or one benchmark on its own."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results import format_table, load_average, now_iso, write_results

REPO = Path(__file__).resolve().parents[1]


BENCH_DIR = REPO / "bench"


RESULTS_FILE = BENCH_DIR / "results.json"


class BenchError(RuntimeError):
    """A benchmark could not measure what it meant to: a child failed, a cycle did not rotate every target."""


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


@contextmanager
def scratch(options: Options, prefix: str) -> Iterator[Path]:
    """A private temporary directory (0700) under `options.work_dir`, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"oauth-rotator-bench-{prefix}-", dir=options.work_dir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


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


def standalone(name: str, work: Callable[[Options], dict[str, Any]], description: str) -> None:
    """`python -m bench.<benchmark> [--smoke] [--out PATH]`: run one benchmark, merge it into the results, print it."""
    options = options_from(build_parser(description).parse_args())
    section = run_section(work, options)
    write_results(options.out, {name: section}, {"smoke": options.smoke})
    print(format_table({name: section}))
    print(f"\nresults: {options.out}")
