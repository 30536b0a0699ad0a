"""The post-rotation hook: a command run after a cycle changed `.pgpass` (reload a pgbouncer, notify a tool).

The hook never sees a credential: not in its arguments (it has none of ours) and not in its environment
(variables that look like secrets, and the Databricks login the CLI exported, are removed, so the client secret
stays with us). What it prints is logged with its control characters escaped.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from databricks.labs.oauth_rotator.secrets import without_secrets
from databricks.labs.oauth_rotator.text import one_line

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 30

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def hook_environment(environ: Mapping[str, str], rotated: Sequence[str], pgpass_file: Path) -> dict[str, str]:
    """Our environment minus anything secret-looking or a Databricks login, plus what the hook may want to know."""
    env = without_secrets(environ)
    env["OAUTH_ROTATOR_TARGETS"] = " ".join(rotated)
    env["OAUTH_ROTATOR_PGPASS_FILE"] = str(pgpass_file)
    return env


class PostRotationHook:
    """Runs `command` (split like a shell would, run without one) with a timeout, and logs how it ended."""

    def __init__(
        self,
        command: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        environ: Mapping[str, str] | None = None,
        runner: Runner = subprocess.run,
    ) -> None:
        self.argv = shlex.split(command)
        self._timeout = timeout
        self._environ = environ
        self._runner = runner

    def __call__(self, rotated: Sequence[str], pgpass_file: Path) -> int | None:
        """Run the hook; returns its exit code, or None when it could not start or timed out."""
        env = hook_environment(os.environ if self._environ is None else self._environ, rotated, pgpass_file)
        try:
            result = self._runner(
                self.argv,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            logger.warning(
                f"Post-rotation hook {self.argv[0]} did not finish within {self._timeout:g} s and was stopped"
            )
            return None
        except OSError as err:
            logger.warning(f"Post-rotation hook {self.argv[0]} could not start: {err.strerror or err}")
            return None
        if result.returncode == 0:
            logger.info(f"Post-rotation hook {self.argv[0]} exited 0")
        else:
            last = (result.stderr or result.stdout).strip().splitlines()
            detail = f": {one_line(last[-1])}" if last else ""
            logger.warning(f"Post-rotation hook {self.argv[0]} exited {result.returncode}{detail}")
        return result.returncode
