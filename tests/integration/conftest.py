"""Running the product as a user does: the console script in a subprocess, a temp HOME, the fake workspace's auth."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.rotation.schedule import MIN_REFRESH_VARIABLE
from tests.rigs.postgres import LocalPostgres
from tests.rigs.tokens import IssuedCredential
from tests.rigs.users import OtherUser, reachable_directory, throwaway_user
from tests.rigs.workspace import FakeWorkspace

USER = "someone@example.com"
_AUTH_VARIABLES = ("DATABRICKS_", "ARM_", "PGPASSWORD", "PGPASSFILE", "PGSERVICE")


@dataclass
class UserHome:
    """A user's machine for one test: HOME, state and config dirs, a pgpass path, and the auth environment."""

    root: Path
    workspace: FakeWorkspace
    postgres: LocalPostgres
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pgpass(self) -> Path:
        return self.root / ".pgpass"

    @property
    def log_file(self) -> Path:
        return self.root / ".databricks_oauth_rotator.log"

    @property
    def status_file(self) -> Path:
        return self.root / "state" / "status.json"

    def rotator(
        self, *args: str, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`databricks-oauth-rotator ARGS` as a subprocess (the console script's own entry point)."""
        return subprocess.run(
            [sys.executable, "-m", "databricks.labs.oauth_rotator", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """`databricks-oauth-rotator ARGS` started in the background (a scheduler), its output captured."""
        return subprocess.Popen(
            [sys.executable, "-m", "databricks.labs.oauth_rotator", *args],
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.root,
        )

    def target_flags(self, *extra: str) -> list[str]:
        return ["--pg-port", str(self.postgres.port), "--pgpass-file", str(self.pgpass), *extra]

    def login(self, *, host: str = "127.0.0.1", user: str = USER) -> subprocess.CompletedProcess[str]:
        return self.postgres.psql_login(user=user, passfile=self.pgpass, host=host)

    def secrets_seen(self, *texts: str) -> list[str]:
        """Every issued token or client secret that occurs in `texts` or in the files the product wrote."""
        haystacks = list(texts)
        for path in (self.log_file, self.status_file):
            if path.exists():
                haystacks.append(path.read_text(errors="replace"))
        return [s for s in self.workspace.issued_secrets() if any(s in h for h in haystacks)]


class LoginProbe:
    """Logs in with psql again and again, and tells product failures from the test server's own race.

    The test server keeps one password per role, so issuing a credential revokes the previous one at once,
    while real Lakebase keeps it valid until it expires. A login that fails because `.pgpass` still held the
    previous, unexpired credential during the milliseconds between issue and write is that race, not a fault.
    """

    def __init__(self, home: UserHome, *, host: str = "127.0.0.1") -> None:
        self.home, self.host = home, host
        self.attempts = 0
        self.superseded = 0
        self.failures: list[str] = []

    def attempt(self) -> bool:
        self.attempts += 1
        before = self._written_token()
        result = self.home.login(host=self.host)
        if result.returncode == 0:
            return True
        if self._raced(before):
            self.superseded += 1
            return False
        self.failures.append(result.stderr.strip().splitlines()[0] if result.stderr.strip() else "failed")
        return False

    def _raced(self, written: IssuedCredential | None) -> bool:
        """The file held a valid credential that a newer one, issued in the last few seconds, had just revoked."""
        latest = self._latest()
        if written is None or latest is None or written is latest:
            return False
        now = datetime.now(timezone.utc)
        issued_at = latest.expires_at - timedelta(seconds=self.home.workspace.ttl_seconds)
        return written.expires_at > now and now - issued_at < timedelta(seconds=5)

    def _latest(self) -> IssuedCredential | None:
        return self.home.workspace.issued[-1] if self.home.workspace.issued else None

    def _written_token(self) -> IssuedCredential | None:
        try:
            data = self.home.pgpass.read_bytes()
        except OSError:
            return None
        token = pgpass.lookup(data, self.host, str(self.home.postgres.port), "postgres", USER)
        return next((c for c in self.home.workspace.issued if c.token == token), None)


def home_environment(root: Path, workspace: FakeWorkspace) -> dict[str, str]:
    """A user's environment with `root` as HOME and the fake workspace's M2M credentials, as exported by hand."""
    return {
        **clean_environment(),
        "HOME": str(root),
        "DATABRICKS_LABS_STATE_DIR": str(root / "state"),
        "DATABRICKS_LABS_CONFIG_DIR": str(root / "config"),
        "DATABRICKS_HOST": workspace.host,
        "DATABRICKS_CLIENT_ID": workspace.client_id,
        "DATABRICKS_CLIENT_SECRET": workspace.client_secret,
        # The fake workspace's credentials live seconds in many tests; the product refreshes no sooner than a minute
        # after issue unless told otherwise (it may lower that floor to 1 s, never remove it).
        MIN_REFRESH_VARIABLE: "1",
    }


def clean_environment() -> dict[str, str]:
    """The test runner's environment without any auth or libpq variables that would leak into the product."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_AUTH_VARIABLES)}


@pytest.fixture
def home(tmp_path: Path, workspace: FakeWorkspace, postgres: LocalPostgres) -> Iterator[UserHome]:
    env = home_environment(tmp_path, workspace)
    yield UserHome(tmp_path, workspace, postgres, env)


def without(env: dict[str, str], names: Sequence[str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}


LABS_DIRS = ("DATABRICKS_LABS_STATE_DIR", "DATABRICKS_LABS_CONFIG_DIR")


@pytest.fixture(name="attacker")
def fixture_attacker() -> Iterator[OtherUser]:
    """A throwaway second OS user: the hostile neighbour (the tests skip where one cannot be made)."""
    with throwaway_user() as user:
        yield user


@pytest.fixture(name="victim")
def fixture_victim(workspace: FakeWorkspace, postgres: LocalPostgres) -> Iterator[UserHome]:
    """A user's home that other users can reach (as /home/NAME is), with the labs folders in their default place."""
    with reachable_directory() as root:
        yield UserHome(root, workspace, postgres, without(home_environment(root, workspace), LABS_DIRS))
