"""`make bench`: every benchmark, the results in bench/results.json, the table and plot in docs/benchmarks.md.

The resident-daemon benchmark idles for `--daemon-minutes` (default 9), so it runs in a background thread from
the start while the others run one after another in the foreground: the whole run takes about as long as the
daemon's idle period. Its figures are unaffected by that: the CPU figure is the daemon process's own
(/proc/<pid>/stat), which other processes' load does not add to, and resident size does not depend on load.
The foreground benchmarks do see the daemon's rotations (a worker process every ttl/2 seconds) as they see the
rest of the machine's load; each is interleaved with its floor, so both suffer alike.

`--smoke` runs everything with tiny sizes and a 20-second daemon, writes to a temp file (never the committed
results) and leaves docs/ alone unless `--doc`/`--plot` name other files.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import bench_daemon, bench_fleet, bench_once, bench_pgbouncer, bench_pgpass, bench_startup, report
from bench.harness import RESULTS_FILE, BenchError, Options, build_parser, options_from, run_section
from bench.results import format_table, load_average, now_iso, write_results


class Background(threading.Thread):
    """Runs one benchmark function in a thread and keeps its result or its error for `result()`."""

    def __init__(self, work: Callable[[Options, threading.Event], dict[str, Any]], options: Options) -> None:
        super().__init__(name="bench-daemon-idle", daemon=True)
        self._work, self._options = work, options
        self.stop = threading.Event()
        self._result: dict[str, Any] | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._result = self._work(self._options, self.stop)
        except BaseException as err:  # handed to the main thread by result()
            self._error = err

    def result(self) -> dict[str, Any]:
        self.join()
        if self._error is not None:
            raise BenchError(f"the daemon benchmark failed: {self._error}") from self._error
        assert self._result is not None
        return self._result


def run_all(options: Options) -> dict[str, dict[str, Any]]:
    """Every section; the daemon's idle part runs concurrently with the rest."""
    idle = Background(lambda o, stop: run_section(functools.partial(bench_daemon.run_idle, stop=stop), o), options)
    idle.start()
    try:
        sections = {
            "once": run_section(bench_once.run, options),
            "startup": run_section(bench_startup.run, options),
        }
        cycles = run_section(bench_daemon.run_cycles, options)
        sections["fleet"] = run_section(bench_fleet.run, options)
        sections["pgpass"] = run_section(bench_pgpass.run, options)
        sections["pgbouncer"] = run_section(bench_pgbouncer.run, options)
    except BaseException:
        idle.stop.set()  # the daemon and its workspace are stopped, not left running
        idle.join()
        raise
    sections["daemon"] = bench_daemon.combine(idle.result(), cycles)
    return sections


def main() -> None:
    parser = build_parser(__doc__ or "benchmarks")
    parser.add_argument(
        "--doc", type=Path, help="the markdown file whose table to rewrite (default: docs/ for a full run)"
    )
    parser.add_argument("--plot", type=Path, help="the PNG to draw (default: docs/ for a full run)")
    parser.add_argument("--no-report", action="store_true", help="leave the docs alone")
    args = parser.parse_args()
    options = options_from(args)
    started, load_before, clock = now_iso(), load_average(), time.monotonic()
    sections = run_all(options)
    meta = {
        "smoke": options.smoke,
        "started": started,
        "total_seconds": round(time.monotonic() - clock, 1),
        "load_before": load_before,
        "load_after": load_average(),
        "runs": options.runs,
        "warmup": options.warmup,
    }
    write_results(options.out, sections, meta)
    print(format_table(sections))
    print(f"\nresults: {options.out} ({meta['total_seconds']:.0f} s)")
    full_run = not options.smoke and options.out.resolve() == RESULTS_FILE.resolve()
    doc = args.doc or (report.DOC_FILE if full_run else None)
    plot = args.plot or (report.PLOT_FILE if full_run else None)
    if not args.no_report and (doc or plot):
        report.update(options.out, doc=doc, plot=plot)


if __name__ == "__main__":
    main()
