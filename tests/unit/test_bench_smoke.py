"""The benchmarks still run: `python -m bench.run --smoke` (every benchmark, tiny sizes, a 20-second daemon) and one
benchmark script on its own, each writing to a temp file; their JSON has every figure, with sane numbers.

`make bench` runs the real thing; this only keeps the scripts from rotting.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SECTIONS = {
    "once": {"--once"},
    "startup": {
        "labs status",
        "console status",
        "password",
        "password, hand-written config",
        "labs password",
        "--help",
        "--version",
    },
    "daemon": {"resident daemon, 20 s", "one rotation cycle (worker)"},
    "fleet": {"1 target", "10 targets"},
    "pgpass": {"1 foreign line", "100 foreign lines", "5 entries", "50 entries"},
    "pgbouncer": {"connect + select 1"},
}
FIGURE_KEYS = {"case", "metric", "unit", "runs", "min", "median", "max", "floor", "ratio", "goal", "met"}
# Measures that may be zero: an idle process can use no CPU tick (10 ms) in 20 seconds.
MAY_BE_ZERO = ("CPU outside cycles", "CPU incl.")


def run_script(script: str, *args: str, timeout: float) -> tuple[str, str]:
    """Run a benchmark script in its own process group; on timeout the whole group (its daemon too) is killed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "PG"))}
    with subprocess.Popen(
        [sys.executable, "-m", f"bench.{script.removesuffix('.py')}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            pytest.fail(f"{script} did not finish within {timeout:g} s:\n{out[-3000:]}\n{err[-3000:]}")
    assert process.returncode == 0, f"{script} failed:\n{out[-3000:]}\n{err[-3000:]}"
    return out, err


def check_figure(section: str, row: dict[str, Any]) -> None:
    where = f"{section}: {row.get('case')}: {row.get('metric')}"
    assert set(row) >= FIGURE_KEYS, f"{where}: missing {FIGURE_KEYS - set(row)}"
    assert row["runs"] >= 1, where
    values = [row["min"], row["median"], row["max"]]
    assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in values), where
    assert row["min"] <= row["median"] <= row["max"], where
    may_be_zero = row["metric"].startswith(MAY_BE_ZERO)
    if may_be_zero:
        assert row["min"] >= 0, where
    else:
        assert row["min"] > 0, where
    if "floor_median" in row and not may_be_zero:
        assert row["floor_median"] > 0, where
        assert row["ratio"] > 0, where
    if row["goal"] is not None:
        assert isinstance(row["met"], bool), where


def check_section(results: dict[str, Any], name: str) -> None:
    section = results[name]
    assert section["smoke"] is True
    assert section["seconds"] > 0
    figures = section["figures"]
    assert {row["case"] for row in figures} == SECTIONS[name]
    for row in figures:
        check_figure(name, row)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_run_smoke_writes_every_benchmark_and_the_report(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    shutil.copy(REPO / "docs" / "benchmarks.md", doc)
    plot = tmp_path / "benchmarks.png"
    out = tmp_path / "results.json"

    table, _ = run_script("run.py", "--smoke", f"--out={out}", f"--doc={doc}", f"--plot={plot}", timeout=380)

    results = json.loads(out.read_text())
    assert results["meta"]["smoke"] is True
    assert results["meta"]["total_seconds"] > 0
    for name in SECTIONS:
        check_section(results, name)
    assert results["once"]["requests_per_run"]["rotator"] == results["once"]["requests_per_run"]["floor"]
    assert not any(found["sdk_imported"] for found in results["startup"]["imports"].values())
    assert results["daemon"]["rotations"] >= 1
    fleet = results["fleet"]
    assert fleet["requests_per_cycle"]["10"] > fleet["requests_per_cycle"]["1"] > 0
    assert [row["floor"] for row in fleet["figures"] if row["metric"] == "write phase"] == ["write phase for 1 target"]
    assert "--once" in table
    text = doc.read_text()
    assert "Smoke run" in text
    assert "| once | --once | wall time |" in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert plot.stat().st_size > 0
    assert "benchmarks.png" in text


@pytest.mark.timeout(120)
def test_a_benchmark_runs_on_its_own(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    run_script("bench_pgpass.py", "--smoke", f"--out={out}", timeout=100)
    results = json.loads(out.read_text())
    check_section(results, "pgpass")
    assert set(results) == {"meta", "pgpass"}


@pytest.mark.timeout(120)
@pytest.mark.skipif(not (shutil.which("pgbouncer") or os.access("/usr/sbin/pgbouncer", os.X_OK)), reason="no pgbouncer")
def test_the_pgbouncer_benchmark_runs_as_a_module(tmp_path: Path) -> None:
    """`python -m bench.bench_pgbouncer`, as the docs say to run it."""
    out = tmp_path / "results.json"
    run_script("bench_pgbouncer.py", "--smoke", f"--out={out}", timeout=100)
    results = json.loads(out.read_text())
    check_section(results, "pgbouncer")
    assert results["pgbouncer"]["figures"][0]["ratio"] > 0


@pytest.mark.timeout(120)
def test_the_sidecar_benchmark_runs_as_a_module(tmp_path: Path) -> None:
    """`python -m bench.bench_sidecar`: the daemon with its endpoints on against off, probed all along."""
    out = tmp_path / "results.json"
    run_script("bench_sidecar.py", "--smoke", f"--out={out}", timeout=100)
    section = json.loads(out.read_text())["sidecar"]
    assert section["http_calls"] > 0
    assert {row["metric"].split(",")[0] for row in section["figures"]} == {
        "RSS between rotations",
        "CPU outside cycles",
    }
    for row in section["figures"]:
        check_figure("sidecar", row)
    assert section["figures"][0]["ratio"] > 1, "the endpoints cost some memory: the floor is the daemon without"
