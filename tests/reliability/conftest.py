"""Fixtures and hooks of the reliability suite: a user's home with the real daemon, the leak scan, the figures.

* `home`: a `UserHome` (HOME, state and config dirs, M2M auth for the fake workspace, a `.pgpass` holding the
  user's own lines) whose credentials reach the test server the way Lakebase treats them (`rig.Lakebase`).
  `home.daemon(...)` starts the scheduler; `home.watch()` and `home.judge()` check the file and log in.
* `figures`: `figures.record(...)` keeps a scenario's measurements. Only with `--reliability-report` (`make
  reliability-report`, `make soak`) do they land in `figures.json` with the test's outcome, and is
  `docs/reliability.md` re-rendered from it when the session ends: an ordinary run leaves the tree as it was.
* `secrets_collector` (session, autouse): every token and client secret issued during the session, scanned for in
  every file the product wrote, every captured output and every `ps auxww` sample when the session ends.
* `--soak` runs `test_soak.py` (else it is skipped), for `--soak-minutes` (default 30).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import USER, UserHome, home_environment
from tests.reliability import figures as figures_module
from tests.reliability.rig import (
    USER_LINES,
    Daemon,
    Lakebase,
    LoginJudge,
    PgpassWatch,
    SecretsCollector,
)
from tests.rigs.postgres import LocalPostgres
from tests.rigs.workspace import DEMO_INSTANCE, FakeWorkspace

_FIGURES = pytest.StashKey[list[figures_module.Figure]]()
_TESTS_RUN = [0]
"""Scenarios this process ran (under xdist, one worker's share), for the leak scan's figures."""
_RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("reliability")
    group.addoption("--soak", action="store_true", default=False, help="run the soak test (tests/reliability)")
    group.addoption("--soak-minutes", type=float, default=30.0, help="how long the soak runs (default 30)")
    group.addoption(
        "--reliability-report",
        action="store_true",
        default=False,
        help="write the figures to tests/reliability/figures.json and docs/reliability.md (make reliability-report)",
    )


def _reporting(config: pytest.Config) -> bool:
    """Whether this run writes its figures into the tree: only when asked, so that tests leave it clean."""
    return bool(config.getoption("--reliability-report", default=False))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: the long soak run, only with --soak (make soak)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The longest scenarios spread evenly over the slots this directory's tests hold, the first one first: xdist
    # hands each worker a run of consecutive tests, so bunched together they would all land on one worker. The
    # busy ones (SIGKILL loops) alternate with the ones that mostly wait. The order is the same on every worker.
    slots = [i for i, item in enumerate(items) if item.nodeid.startswith("tests/reliability/")]
    slow = [items[i] for i in slots if "slow" in items[i].keywords]
    busy = [item for item in slow if "sigkill" in item.nodeid]
    waiting = [item for item in slow if item not in busy]
    interleaved = [item for pair in zip_longest(busy, waiting) for item in pair if item is not None]
    ours = [items[i] for i in slots if "slow" not in items[i].keywords]
    for k, item in enumerate(interleaved):
        ours.insert(k * len(slots) // max(1, len(interleaved)), item)
    for slot, item in zip(slots, ours, strict=True):
        items[slot] = item
    soak = config.getoption("--soak", default=False)
    minutes = float(config.getoption("--soak-minutes", default=30.0))
    skip = pytest.mark.skip(reason="the soak runs only with --soak (make soak)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(pytest.mark.timeout(minutes * 60 + 600) if soak else skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        _TESTS_RUN[0] += 1
    recorded = item.stash.get(_FIGURES, [])
    if report.when != "call" or not recorded or not _reporting(item.config):
        return report
    if hasattr(report, "wasxfail"):
        result = "xfailed (known product gap)" if report.skipped else "XPASS: the gap is fixed, drop the xfail"
    else:
        result = report.outcome
    for figure in recorded:
        figure.test, figure.outcome, figure.run_at = item.nodeid, result, figures_module.now_text()
    figures_module.merge(recorded)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _reporting(session.config):
        figures_module.render_doc()


class Figures:
    """What a test measured, recorded for `figures.json` and `docs/reliability.md`."""

    def __init__(self, item: pytest.Item) -> None:
        self._item = item

    def record(
        self,
        scenario: str,
        *,
        group: str,
        injected: str,
        goal: str,
        measured: str,
        note: str = "",
        data: Mapping[str, Any] | None = None,
        **more: Any,
    ) -> None:
        """`data` and `more`: the raw numbers behind `measured`, kept in figures.json."""
        figure = figures_module.Figure(scenario, group, injected, goal, measured, {**(data or {}), **more}, note=note)
        self._item.stash.setdefault(_FIGURES, []).append(figure)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    return Figures(request.node)


@pytest.fixture(scope="session", autouse=True)
def secrets_collector(request: pytest.FixtureRequest) -> Iterator[SecretsCollector]:
    collector = SecretsCollector()
    yield collector
    result = collector.scan()
    counts = {k: v for k, v in result.items() if isinstance(v, int)}
    counts["tests"] = _TESTS_RUN[0]
    scope = "soak" if request.config.getoption("--soak", default=False) else "suite"
    if _reporting(request.config):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        figures_module.merge_secrets_scan(_RUN_ID, worker, counts, scope=scope)
    assert result["hits"] == 0, f"secrets leaked: {result['where']}"


@dataclass
class Home(UserHome):
    """A `UserHome` with the reliability rig: the daemon, the `.pgpass` watch and the psql judge."""

    collector: SecretsCollector = field(default_factory=SecretsCollector)
    lakebase: Lakebase | None = None
    daemons: list[Daemon] = field(default_factory=list)
    pgpass_path: Path | None = None
    """Where `.pgpass` lives when not in HOME (a test's own mount)."""

    @property
    def pgpass(self) -> Path:
        return self.pgpass_path or self.root / ".pgpass"

    @property
    def rig(self) -> Lakebase:
        assert self.lakebase is not None
        return self.lakebase

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Our `.pgpass` key for the demo instance."""
        return ("127.0.0.1", str(self.postgres.port), "*", USER)

    def write_user_lines(self, lines: Sequence[bytes] = USER_LINES) -> None:
        self.pgpass.write_bytes(b"".join(lines))
        self.pgpass.chmod(0o600)

    def rotator(
        self, *args: str, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = super().rotator(*args, timeout=timeout, env=env)
        self.collector.add_output(result.stdout, result.stderr)
        return result

    def labs(self, payload: str, *, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        """`databricks labs oauth-rotator ...` as the CLI runs the entrypoint: by path, with a JSON payload."""
        return self.labs_argv(payload, timeout=timeout, **env)

    def labs_argv(self, *argv: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        import databricks.labs.oauth_rotator as package

        entrypoint = Path(package.__file__).parent / "commands" / "labs_cli.py"
        result = subprocess.run(
            [sys.executable, str(entrypoint), *argv],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
        )
        self.collector.add_output(result.stdout, result.stderr)
        return result

    def daemon(
        self, *args: str, name: str = "daemon", env: dict[str, str] | None = None, sample_ps: bool = True
    ) -> Daemon:
        """`databricks-oauth-rotator run` for the demo instance (or ARGS) in the background."""
        args = args or ("--instance", DEMO_INSTANCE, *self.target_flags())
        started = Daemon(self, args, collector=self.collector, name=name, env=env, sample_ps=sample_ps)
        self.daemons.append(started)
        return started

    def watch(self, *, user_lines: Sequence[bytes] = USER_LINES) -> PgpassWatch:
        return PgpassWatch(self.pgpass, self.rig, self.key, user_lines=user_lines)

    def judge(self, *, interval: float = 0.5) -> LoginJudge:
        return LoginJudge(self, self.rig, interval=interval)

    def wait_first_rotation(self, timeout: float = 60) -> None:
        """Until the first credential is in `.pgpass` (the daemon's first cycle imports the SDK)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.rig.credential(self.current_token()) is not None:
                return
            time.sleep(0.1)
        stderr = "\n".join(d.stderr()[-2000:] for d in self.daemons)
        raise AssertionError(f"no credential reached {self.pgpass} within {timeout} s: {stderr}")

    def current_token(self) -> str | None:
        from databricks.labs.oauth_rotator.files import pgpass

        try:
            data = self.pgpass.read_bytes()
        except OSError:
            return None
        for line in pgpass.parse(data):
            if line.entry is not None and line.entry.key == self.key:
                return line.entry.password
        return None

    def api_calls(self) -> int:
        return sum(n for call, n in self.workspace.calls.items() if " /api/" in call or " /oidc/" in call)

    def close(self) -> None:
        for started in self.daemons:
            started.terminate(timeout=10)
            self.collector.add_output(started.stderr())


@pytest.fixture
def home(
    tmp_path: Path, workspace: FakeWorkspace, postgres: LocalPostgres, secrets_collector: SecretsCollector
) -> Iterator[Home]:
    env = home_environment(tmp_path, workspace)
    secrets_collector.add_workspace(workspace)
    secrets_collector.add_root(tmp_path)
    user = Home(tmp_path, workspace, postgres, env, collector=secrets_collector, lakebase=Lakebase(workspace, postgres))
    try:
        yield user
    finally:
        user.close()
