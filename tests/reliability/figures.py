"""The figures the reliability suite measures, kept in `figures.json` and rendered into `docs/reliability.md`.

Each test records what it injected, the goal and what it measured. In a run with `--reliability-report` (`make
reliability-report`), `pytest_runtest_makereport` adds the outcome and merges the entry into `figures.json` under a
lock (xdist workers finish in any order), and at the end of the session the table in `docs/reliability.md` (between
the two marker comments) is rewritten from the JSON, so every figure in the document comes from a real run. Any
other run writes neither file. `python -m tests.reliability.figures` re-renders the document by hand.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIGURES_FILE = HERE / "figures.json"
DOC_FILE = HERE.parents[1] / "docs" / "reliability.md"
LOCK_FILE = Path(tempfile.gettempdir()) / "oauth-rotator-reliability-figures.lock"
BEGIN = "<!-- figures:begin (generated from tests/reliability/figures.json; do not edit by hand) -->"
END = "<!-- figures:end -->"
GROUPS = (
    "Network faults",
    "Auth faults needing a person",
    "Process faults",
    "File faults",
    "Hostile input",
    "Secrets",
    "Soak",
)


@dataclass
class Figure:
    """One scenario's row: what was injected, the goal, and what the run measured (`data` keeps raw numbers)."""

    scenario: str
    group: str
    injected: str
    goal: str
    measured: str
    data: dict[str, Any] = field(default_factory=dict)
    test: str = ""
    outcome: str = ""
    run_at: str = ""
    note: str = ""


@contextmanager
def _locked() -> Iterator[None]:
    with open(LOCK_FILE, "a+", encoding="utf-8") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _load() -> dict[str, Any]:
    try:
        raw = json.loads(FIGURES_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"scenarios": {}}
    return raw if isinstance(raw, dict) and isinstance(raw.get("scenarios"), dict) else {"scenarios": {}}


def _save(raw: dict[str, Any]) -> None:
    tmp = FIGURES_FILE.with_name(f".{FIGURES_FILE.name}.{os.getpid()}")
    tmp.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, FIGURES_FILE)


def merge(figures: list[Figure]) -> None:
    """Put `figures` into `figures.json`, replacing earlier entries of the same scenarios."""
    if not figures:
        return
    with _locked():
        raw = _load()
        for figure in figures:
            raw["scenarios"][figure.scenario] = asdict(figure)
        _save(raw)


def merge_secrets_scan(run_id: str, worker: str, data: dict[str, int], *, scope: str = "suite") -> None:
    """One xdist worker's leak-scan counts; the table sums the workers of the latest run of each scope (the suite,
    the soak)."""
    with _locked():
        raw = _load()
        scans = raw.setdefault("secret_scans", {})
        for key in [k for k, v in scans.items() if v.get("scope", "suite") == scope and v.get("run") != run_id]:
            del scans[key]
        scans[f"{scope}/{worker}"] = {"run": run_id, "scope": scope, "at": now_text(), **data}
        _save(raw)


def now_text() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_table(raw: dict[str, Any]) -> str:
    scenarios = [Figure(**v) for v in raw.get("scenarios", {}).values()]
    all_scans = raw.get("secret_scans") or {}
    for scope in sorted({s.get("scope", "suite") for s in all_scans.values()}):
        scans = {k: v for k, v in all_scans.items() if v.get("scope", "suite") == scope}
        totals: dict[str, int] = {}
        for scan in scans.values():
            for key, value in scan.items():
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
        latest = max(str(s.get("at", "")) for s in scans.values())
        scenarios.append(
            Figure(
                scenario="secrets/leak-scan" + ("" if scope == "suite" else f"-{scope}"),
                group="Secrets",
                injected=f"{totals.get('secrets', 0)} distinct tokens and client secrets issued by the fake "
                f"workspaces of the {'whole suite' if scope == 'suite' else scope}",
                goal="0 occurrences in any log, state file, service definition, stdout/stderr capture or "
                "`ps auxww` sample",
                measured=f"{totals.get('hits', 0)} hits in {totals.get('files', 0)} files, "
                f"{totals.get('outputs', 0)} captured outputs and {totals.get('ps_samples', 0)} `ps auxww` "
                f"samples ({totals.get('bytes', 0) / 1e6:.1f} MB scanned)"
                + (f" after a run of {totals['tests']} tests" if totals.get("tests") else ""),
                outcome="passed" if totals.get("hits", 0) == 0 else "failed",
                run_at=latest,
                test="session-scoped collector in tests/reliability/conftest.py",
            )
        )
    scenarios = _summarise_hostile(scenarios)
    lines = []
    for group in GROUPS:
        rows = sorted((f for f in scenarios if f.group == group), key=lambda f: f.scenario)
        if not rows:
            continue
        lines += [f"### {group}", "", "| scenario | what is injected | goal | measured | result |"]
        lines.append("| --- | --- | --- | --- | --- |")
        for row in rows:
            result = row.outcome or "?"
            if row.note:
                result = f"{result}: {row.note}"
            lines.append(
                f"| `{row.scenario}` | {_cell(row.injected)} | {_cell(row.goal)} | {_cell(row.measured)} "
                f"| {_cell(result)} ({_cell(row.run_at)}) |"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _summarise_hostile(scenarios: list[Figure]) -> list[Figure]:
    """One row per kind of hostile input (the cases are many); each case is listed under the table."""
    cases = [f for f in scenarios if f.scenario.startswith("hostile/")]
    rows = [f for f in scenarios if not f.scenario.startswith("hostile/")]
    kinds: dict[str, list[Figure]] = {}
    for case in cases:
        kinds.setdefault(case.injected.split(":", 1)[0], []).append(case)
    for kind, members in sorted(kinds.items()):
        passed = [m for m in members if m.outcome == "passed"]
        gaps = [m for m in members if m.outcome.startswith("xfailed")]
        other = [m for m in members if m not in passed and m not in gaps]
        measured = f"{len(members)} cases: {len(passed)} as required"
        if gaps:
            measured += f"; {len(gaps)} known product gaps ({', '.join(m.scenario.split('/', 1)[1] for m in gaps)})"
        if other:
            measured += f"; {len(other)} FAILED ({', '.join(m.scenario.split('/', 1)[1] for m in other)})"
        rows.append(
            Figure(
                scenario=f"hostile/{kind.replace(' ', '-')}",
                group="Hostile input",
                injected=f"{len(members)} bad inputs from the {kind} (listed below)",
                goal=members[0].goal.replace(members[0].goal.split(",")[0], "exit 2 (usage, config) or 1 (rotation)"),
                measured=measured,
                outcome="failed" if other else "passed",
                run_at=max(m.run_at for m in members),
            )
        )
    return rows


def render_cases(raw: dict[str, Any]) -> str:
    """Every hostile input case with its exit code and first error line."""
    cases = sorted(
        (Figure(**v) for k, v in raw.get("scenarios", {}).items() if k.startswith("hostile/")), key=lambda f: f.scenario
    )
    if not cases:
        return ""
    lines = [
        "<details><summary>Every hostile input case</summary>",
        "",
        "| case | kind | result | measured |",
        "| --- | --- | --- | --- |",
    ]
    for case in cases:
        result = case.outcome + (f": {case.note}" if case.note else "")
        lines.append(
            f"| `{case.scenario.split('/', 1)[1]}` | {case.injected.split(':', 1)[0]} | {_cell(result)} "
            f"| {_cell(case.measured)} |"
        )
    return "\n".join([*lines, "", "</details>", ""])


def render_doc(doc: Path = DOC_FILE) -> bool:
    """Rewrite the generated part of `docs/reliability.md`; False when the document or its markers are missing."""
    with _locked():
        raw = _load()
    try:
        text = doc.read_text(encoding="utf-8")
    except OSError:
        return False
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return False
    new = text[: start + len(BEGIN)] + "\n\n" + render_table(raw) + "\n" + render_cases(raw) + "\n" + text[end:]
    if new != text:
        tmp = doc.with_name(f".{doc.name}.{os.getpid()}")
        tmp.write_text(new, encoding="utf-8")
        os.replace(tmp, doc)
    return True


if __name__ == "__main__":
    print("rendered" if render_doc() else f"no markers in {DOC_FILE}")
