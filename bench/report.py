"""Rewrite the results section of docs/benchmarks.md from bench/results.json, and draw docs/benchmarks.png.

`python -m bench.report [--results PATH] [--doc PATH] [--plot PATH | --no-plot]`. Only the text between the
`<!-- bench-results:start -->` and `<!-- bench-results:end -->` markers is replaced. The plot needs matplotlib
(the `bench` extra): fleet scaling, and the 10 000-line `.pgpass` update against its floor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.harness import REPO, RESULTS_FILE
from bench.results import DASH, HEADERS, duration, number, table_rows

DOC_FILE = REPO / "docs" / "benchmarks.md"
PLOT_FILE = REPO / "docs" / "benchmarks.png"
START = "<!-- bench-results:start -->"
END = "<!-- bench-results:end -->"


def markdown_table(results: Mapping[str, Any]) -> str:
    rows = [HEADERS, *table_rows(results)]
    lines = ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("---" for _ in HEADERS) + "|")
    return "\n".join(lines)


def run_line(results: Mapping[str, Any]) -> str:
    meta = results.get("meta", {})
    load = meta.get("load_before"), meta.get("load_after")
    loads = f"load average (1/5/15 min) {_load(load[0])} before, {_load(load[1])} after" if all(load) else ""
    parts = [
        f"Run of {meta.get('started', meta.get('updated', '?'))}",
        f"{meta.get('cpus', '?')} CPUs, {meta.get('platform', '?')}",
        f"Python {meta.get('python', '?')}, databricks-sdk {meta.get('databricks_sdk', '?')}",
        _runs(meta),
        loads,
        f"{meta['total_seconds']:.0f} s in all" if "total_seconds" in meta else "",
        _run_since(results, meta),
    ]
    smoke = " **Smoke run: sizes too small to mean anything.**" if meta.get("smoke") else ""
    return "; ".join(p for p in parts if p) + "." + smoke


def _run_since(results: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """The benchmarks run on their own after the full run ended (`python -m bench.<benchmark>`), with their start."""
    if "started" not in meta or "total_seconds" not in meta:
        return ""
    ended = _instant(meta["started"]) + timedelta(seconds=meta["total_seconds"])
    later = [
        f"{name} at {section['started']}"
        for name, section in results.items()
        if name != "meta" and isinstance(section, dict) and _instant(section.get("started")) > ended
    ]
    return f"run on their own since: {', '.join(later)}" if later else ""


def _instant(text: Any) -> datetime:
    """A time `now_iso` wrote; the earliest one for anything else."""
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)


def _runs(meta: Mapping[str, Any]) -> str:
    runs, warmup = meta.get("runs"), meta.get("warmup")
    if not isinstance(runs, int):
        return ""
    return f"{runs} measured runs per subject after {warmup} warm-up ({runs * 3} for the millisecond benchmarks)"


def _load(values: Sequence[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def details(results: Mapping[str, Any]) -> list[str]:
    """What the table cannot show: request counts, imports, rotations, growth, the file system."""
    notes = []
    once = results.get("once")
    if once:
        counts = {k: "/".join(str(c) for c in v) for k, v in once.get("requests_per_run", {}).items()}
        notes.append(
            f"`--once` made {counts.get('rotator')} requests to the workspace per run, the floor {counts.get('floor')}."
        )
    startup = results.get("startup")
    if startup:
        for name, found in startup.get("imports", {}).items():
            heaviest = ", ".join(f"`{m}` {ms:g} ms" for m, ms in found.get("heaviest_ms", [])[:3])
            sdk = "imports the SDK" if found.get("sdk_imported") else "no SDK"
            beyond = f" ({found['beyond_floor']} more than the floor)" if "beyond_floor" in found else ""
            text = f"`{name}`: {found.get('modules')} modules{beyond}, {sdk}"
            notes.append(f"{text}; heaviest imports the floor does not make: {heaviest}." if heaviest else f"{text}.")
    daemon = results.get("daemon")
    if daemon and "rotations" in daemon:
        notes.append(
            f"Daemon: {daemon['rotations']} rotations in {duration(daemon['minutes'])} with {daemon['ttl_seconds']} s "
            f"credentials; {daemon['idle_seconds']:.0f} s of the {daemon['window_seconds']:.0f} s after its first "
            f"cycle were idle; RSS {daemon['rss_end_mib']:.1f} MiB at the end, peak {daemon['rss_peak_mib']:.1f} MiB."
        )
        if "cpu_resolution_s_per_hour" in daemon:
            notes.append(
                f"Daemon CPU is read in clock ticks: one tick in its idle time would read "
                f"{daemon['cpu_resolution_s_per_hour']:g} s/h, so 0 means less than that."
            )
    fleet = results.get("fleet")
    if fleet:
        requests = ", ".join(f"{n}: {r}" for n, r in fleet.get("requests_per_cycle", {}).items())
        notes.append(f"Fleet: requests per cycle by number of targets: {requests}.")
    pgpass = results.get("pgpass")
    if pgpass:
        notes.append(f"`.pgpass` files were written on {pgpass.get('file_system', '?')}.")
    return notes


def render(results: Mapping[str, Any], plot: Path | None, doc: Path) -> str:
    parts = [run_line(results), "", markdown_table(results), ""]
    parts += [f"- {note}" for note in details(results)]
    if plot is not None:
        relative = os.path.relpath(plot.resolve(), doc.resolve().parent)
        parts += ["", f"![Fleet scaling, and the largest .pgpass update against its floor]({relative})"]
    return "\n".join(parts)


def rewrite(doc: Path, text: str) -> None:
    """Replace what lies between the markers in `doc`."""
    content = doc.read_text(encoding="utf-8")
    if START not in content or END not in content:
        raise SystemExit(f"{doc}: the markers {START} and {END} are missing")
    head, rest = content.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


def _figures(section: Mapping[str, Any], metric: str) -> list[dict[str, Any]]:
    return [f for f in section.get("figures", []) if f["metric"] == metric]


def draw(results: Mapping[str, Any], path: Path) -> None:
    """Two panels: cycle time against the number of targets, and the largest `.pgpass` update against its floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    fleet = results.get("fleet")
    if fleet:
        draw_fleet(left, fleet)
    pgpass = results.get("pgpass")
    if pgpass:
        draw_pgpass(right, pgpass)
    for axes, shown in ((left, fleet), (right, pgpass)):
        if not shown:
            axes.set_axis_off()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_fleet(axes: Any, fleet: Mapping[str, Any]) -> None:
    """Cycle time by number of targets (log-log), with the floor and the linear extrapolation from one target."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    sizes = fleet["sizes"]
    walls = _figures(fleet, "cycle wall time")
    medians = [f["median"] for f in walls]
    below = [m - f["min"] for m, f in zip(medians, walls, strict=True)]
    above = [f["max"] - m for m, f in zip(medians, walls, strict=True)]
    axes.errorbar(sizes, medians, yerr=[below, above], marker="o", capsize=3, label=f"one cycle (median, min{DASH}max)")
    axes.plot(sizes, [medians[0] * n for n in sizes], linestyle=":", color="grey", label="linear from 1 target")
    axes.plot(sizes, [f["floor_median"] for f in walls], linestyle="--", label=f"floor: {fleet.get('floor', '?')}")
    for n, median in zip(sizes, medians, strict=True):
        axes.annotate(
            f"{number(median * 1000 / n)} ms/target",
            (n, median),
            textcoords="offset points",
            xytext=(6, -13),
            fontsize=8,
            ha="left",
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xticks(sizes)
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axes.xaxis.set_major_formatter(plain)
    axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(plain)
    axes.yaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("targets")
    axes.set_ylabel("seconds")
    axes.set_title(f"Fleet: one cycle, every response {fleet['delay_seconds'] * 1000:.0f} ms late")
    axes.legend(fontsize=8, loc="upper left")


def draw_pgpass(axes: Any, pgpass: Mapping[str, Any]) -> None:
    """The largest file's update times against the floor's, run by run."""
    largest = _figures(pgpass, "update one entry")[-1]
    data = [largest.get("values", []), largest.get("floor_values", [])]
    names = ["update_file + merge", "floor: write, fsync,\nrename, dir fsync"]
    axes.boxplot(data, showfliers=True)
    labels = [
        f"{name}\nmedian {number(statistics.median(v))} ms" if v else name for name, v in zip(names, data, strict=True)
    ]
    axes.set_xticks([1, 2], labels)
    axes.set_ylim(bottom=0)
    axes.set_ylabel("milliseconds")
    axes.set_title(f".pgpass with {largest['case']}: one entry updated")


def update(results_file: Path, *, doc: Path | None, plot: Path | None) -> None:
    """Redraw the plot (when matplotlib is there) and rewrite the doc's results section."""
    results = json.loads(results_file.read_text(encoding="utf-8"))
    drawn = None
    if plot is not None:
        try:
            draw(results, plot)
            drawn = plot
        except ImportError:
            print("matplotlib is not installed (pip install -e '.[bench]'): no plot drawn", file=sys.stderr)
    if doc is not None:
        rewrite(doc, render(results, drawn, doc))
    print(f"report: {doc or '-'}, plot: {drawn or '-'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS_FILE)
    parser.add_argument("--doc", type=Path, default=DOC_FILE)
    parser.add_argument("--plot", type=Path, default=PLOT_FILE)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args()
    update(args.results, doc=args.doc, plot=None if args.no_plot else args.plot)


if __name__ == "__main__":
    main()
