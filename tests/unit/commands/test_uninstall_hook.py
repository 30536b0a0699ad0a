"""The `databricks labs uninstall oauth-rotator` hook, run by path as the Databricks CLI runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from databricks.labs.oauth_rotator.commands import uninstall_hook


def test_with_no_service_installed_it_says_so_and_succeeds(tmp_path: Path) -> None:
    """The CLI deletes the virtualenv right after a successful hook: a hook that fails leaves it in place."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "XDG_"))}
    env.update(HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path / "no-runtime"))
    result = subprocess.run(
        [sys.executable, uninstall_hook.__file__], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()  # one message: nothing to stop, or the service manager's own answer
    assert "Traceback" not in result.stderr
