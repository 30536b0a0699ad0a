"""Statistics: interleaved runs of a subject and its floor, and the figure (median, range, ratio to the floor)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from bench.harness import BenchError
from bench.results import TIMES

T = TypeVar("T")


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
