"""No import cycle among the package's modules, imports under `TYPE_CHECKING` included (issue 22): the layers of
`pyproject.toml`'s contract hold between packages; this holds inside them too (`paths` and `config` imported each
other in 0.2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "databricks.labs.oauth_rotator"
SRC = Path(__file__).resolve().parents[2] / "src"
EDGES = f"""
import json, grimp
graph = grimp.build_graph("databricks", exclude_type_checking_imports=False, cache_dir=None)
ours = sorted(m for m in graph.modules if m.startswith("{PACKAGE}"))
print(json.dumps({{m: sorted(graph.find_modules_directly_imported_by(m)) for m in ours}}))
"""
"""grimp, as `make lint` runs it (`PYTHONPATH=src`), in a child: here `databricks` is the installed SDK's package."""


@pytest.fixture(name="graph", scope="module")
def fixture_graph() -> dict[str, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-c", EDGES], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    edges: dict[str, list[str]] = json.loads(result.stdout)
    assert f"{PACKAGE}.paths" in edges and len(edges) > 50  # the graph is ours, or this test could not fail
    return edges


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Each import cycle among our modules, as the chain of modules that closes it."""
    ours = sorted(graph)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in graph.get(module, []):
            if imported not in graph:  # not ours
                continue
            if state.get(imported) == 1:
                found.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in ours:
        if module not in state:
            visit(module, [module])
    return found


def test_no_module_of_ours_imports_itself_through_others(graph: dict[str, list[str]]) -> None:
    assert cycles(graph) == []


def test_paths_knows_nothing_of_the_config(graph: dict[str, list[str]]) -> None:
    assert f"{PACKAGE}.config" not in graph[f"{PACKAGE}.paths"]


def test_a_cycle_is_found() -> None:
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c", "a"]]
