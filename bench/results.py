"""Results: the machine they were measured on, `results.json`, and the table of figures."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

TIMES = "\u00d7"


DASH = "\u2013"


BENCHMARKS = ("once", "startup", "daemon", "fleet", "pgpass", "pgbouncer", "sidecar")
"""Section names in results.json, in the order of the table."""


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


def write_results(path: Path, sections: Mapping[str, dict[str, Any]], meta: Mapping[str, Any]) -> None:
    """Merge `sections` into the results file (sections of other benchmarks stay) and replace it atomically.

    The run's `meta` is merged too: a benchmark run on its own keeps what the last full run recorded (its start,
    runs and load), and its section carries its own start, which the report names."""
    try:
        results: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        results = {}
    results["meta"] = {**results.get("meta", {}), **machine(), **meta, "updated": now_iso()}
    results.update(sections)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=False, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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
