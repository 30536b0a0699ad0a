"""The fake workspace (`tests.rigs.workspace.FakeWorkspace`) in its own process, holding a fleet of instances."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import IO, Any

from bench.harness import REPO, BenchError
from bench.processes import clean_env


def instance_name(i: int) -> str:
    return f"inst-{i}"


def instance_host(i: int) -> str:
    return f"h{i}.example.com"


class WorkspaceServer:
    """The fake workspace (`tests.rigs.workspace.FakeWorkspace`) in its own process, `bench/workspace_server.py`.

    Out of process, its request handling never competes with the code under test for a GIL. It holds
    `instances` Provisioned instances `inst-<i>` (host `h<i>.example.com`); `stats()` asks it for request counts.
    """

    def __init__(self, *, instances: int = 1, delay: float = 0.0, ttl: int = 3600) -> None:
        self._argv = [
            sys.executable,
            "-m",
            "bench.workspace_server",
            f"--instances={instances}",
            f"--delay={delay}",
            f"--ttl={ttl}",
        ]
        self._process: subprocess.Popen[str] | None = None
        self.info: dict[str, str] = {}

    def __enter__(self) -> WorkspaceServer:
        self._process = subprocess.Popen(
            self._argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=clean_env(),
            cwd=REPO,  # `-m bench...` and `tests.rigs` are found from the repository
        )
        line = self._stdout().readline()
        if not line:
            self.__exit__()
            raise BenchError("the fake workspace server did not start")
        self.info = json.loads(line)
        return self

    def __exit__(self, *exc_info: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # end of input: the server stops
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def _stdout(self) -> IO[str]:
        assert self._process is not None and self._process.stdout is not None
        return self._process.stdout

    @property
    def host(self) -> str:
        return self.info["host"]

    @property
    def user_name(self) -> str:
        return self.info["user_name"]

    def auth_env(self) -> dict[str, str]:
        """OAuth M2M through the SDK's environment variables, as a service would be set up."""
        return {
            "DATABRICKS_HOST": self.info["host"],
            "DATABRICKS_CLIENT_ID": self.info["client_id"],
            "DATABRICKS_CLIENT_SECRET": self.info["client_secret"],
        }

    def stats(self) -> dict[str, Any]:
        """`{"requests": total so far, "issued": database credentials so far, "calls": per route}`."""
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write("stats\n")
        self._process.stdin.flush()
        stats: dict[str, Any] = json.loads(self._stdout().readline())
        return stats

    def requests(self) -> int:
        return int(self.stats()["requests"])
