from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.service.base import ServiceSpec

# Every character that needs care somewhere: a space, a specifier, a dollar, a double quote, non-ASCII.
GOLDEN_HOME = '/home/ana maria/100% $x/"q"/ñ'


@dataclass
class _Rule:
    prefix: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    times: int | None


class RecordingRunner:
    """A CommandRunner that records every argv and answers from rules; unmatched commands succeed silently."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self._rules: list[_Rule] = []

    def on(
        self, *prefix: str, returncode: int = 0, stdout: str = "", stderr: str = "", times: int | None = None
    ) -> RecordingRunner:
        """Answer commands starting with `prefix` (the most recent matching rule wins; `times` limits its uses)."""
        self._rules.append(_Rule(prefix, returncode, stdout, stderr, times))
        return self

    def __call__(self, argv: Sequence[str], /) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        self.calls.append(command)
        for rule in reversed(self._rules):
            if tuple(command[: len(rule.prefix)]) == rule.prefix and rule.times != 0:
                if rule.times is not None:
                    rule.times -= 1
                return subprocess.CompletedProcess(command, rule.returncode, rule.stdout, rule.stderr)
        return subprocess.CompletedProcess(command, 0, "", "")


@pytest.fixture
def runner() -> RecordingRunner:
    return RecordingRunner()


def make_spec(root: str | Path, **overrides: object) -> ServiceSpec:
    """A spec rooted at `root` (its home) with every path inside it; `overrides` replace fields."""
    base = str(root)
    fields: dict[str, object] = {
        "python": f"{base}/.venv/bin/python",
        "config_path": Path(f"{base}/.databricks/labs/oauth-rotator/config/config.yml"),
        "profile": "DEFAULT",
        "home": Path(base),
        "stdout_log": Path(f"{base}/.databricks_oauth_rotator_stdout.log"),
        "stderr_log": Path(f"{base}/.databricks_oauth_rotator_stderr.log"),
        "environment": {"DATABRICKS_CLI_PATH": "/usr/local/bin/databricks", "PGPASSFILE": f"{base}/.pgpass"},
        "env_file": None,
    }
    fields.update(overrides)
    return ServiceSpec(**fields)  # type: ignore[arg-type]


@pytest.fixture
def golden_spec() -> ServiceSpec:
    return make_spec(GOLDEN_HOME, env_file=Path(f"{GOLDEN_HOME}/m2m.env"))


def fake_secret() -> str:
    """A token-shaped secret made at run time, so no credential-looking string is committed."""
    return "eyJ" + os.urandom(12).hex() + "." + os.urandom(12).hex() + "." + os.urandom(8).hex()
