"""labs.yml's entrypoint: `labs_cli.main`, run by path as the Databricks CLI runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from databricks.labs.oauth_rotator.commands import labs_main


def test_run_by_path_it_answers_a_labs_payload(tmp_path: Path) -> None:
    payload = {"command": "status", "flags": {"log_level": "disabled"}, "output_type": "json"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env.update(
        HOME=str(tmp_path),
        DATABRICKS_LABS_CONFIG_DIR=str(tmp_path / "config"),
        DATABRICKS_LABS_STATE_DIR=str(tmp_path / "state"),
    )
    result = subprocess.run(
        [sys.executable, labs_main.__file__, json.dumps(payload)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(labs_main.__file__).parent,  # its own folder first on sys.path, as when run by path: dropped
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
