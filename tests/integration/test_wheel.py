"""The wheel holds the product and nothing else: no test rig, no demo, no benchmark."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "databricks/labs/oauth_rotator/"


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(ROOT)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = out.glob("databricks_labs_oauth_rotator-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_has_every_layer_of_the_product(wheel_names: list[str]) -> None:
    for module in (
        "commands/labs_cli.py",
        "commands/rotator_script.py",
        "app/rotate.py",
        "rotation/cycle.py",
        "lakebase/credentials.py",
        "files/writer.py",
        "service/systemd.py",
        "config.py",
        "py.typed",
    ):
        assert PACKAGE + module in wheel_names, module
    assert "databricks_oauth_rotator/__init__.py" in wheel_names


def test_the_wheel_has_no_test_rig_demo_or_benchmark(wheel_names: list[str]) -> None:
    unwanted = [
        name
        for name in wheel_names
        if name.startswith(("tests/", "bench/")) or "/testing/" in name or "/rigs/" in name or "fake" in name.lower()
    ]
    assert unwanted == []
    assert not [
        name
        for name in wheel_names
        if name.endswith(("workspace.py", "postgres.py", "demo.py")) and "lakebase" not in name
    ]
