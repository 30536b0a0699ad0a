"""The benchmark report's run line (`bench/report.py`) and the results file's merge (`bench/results.py`)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report import run_line
from bench.results import write_results

FULL_RUN = {"started": "2026-12-06T18:00:00Z", "total_seconds": 540.0, "runs": 7, "warmup": 1, "smoke": False}


def test_a_benchmark_run_on_its_own_keeps_the_full_runs_record_and_is_named_in_the_run_line(tmp_path: Path):
    out = tmp_path / "results.json"
    write_results(out, {"once": {"started": "2026-12-06T18:00:05Z", "figures": []}}, FULL_RUN)
    write_results(out, {"sidecar": {"started": "2026-12-06T19:02:00Z", "figures": []}}, {"smoke": False})
    results = json.loads(out.read_text())
    assert results["meta"]["started"] == FULL_RUN["started"] and results["meta"]["runs"] == 7
    line = run_line(results)
    assert line.startswith("Run of 2026-12-06T18:00:00Z") and "7 measured runs" in line
    assert "run on their own since: sidecar at 2026-12-06T19:02:00Z" in line
    assert "once at" not in line, "a section of the full run itself is not named"


def test_a_full_run_names_no_later_run():
    results = {"meta": FULL_RUN, "once": {"started": "2026-12-06T18:08:59Z"}, "odd": {"started": "not a time"}}
    assert "run on their own" not in run_line(results)
