"""The watchdog and the bounded concurrency behind every entry point: daemon threads only, results in order."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.deadlines import (
    CYCLE_TIMEOUT_SECONDS,
    DOCTOR_DEADLINE_SECONDS,
    HTTP_TIMEOUT_SECONDS,
    ONCE_DEADLINE_SECONDS,
    RETRY_TIMEOUT_SECONDS,
    map_on_daemon_threads,
    run_with_deadline,
)
from databricks.labs.oauth_rotator.errors import CredentialError
from databricks.labs.oauth_rotator.lakebase.workspace import build_workspace_client
from tests.rigs.workspace import FakeWorkspace

USAGE = Path(__file__).resolve().parents[2] / "docs" / "usage.md"

BLOCKED_CYCLE = """
import sys, threading
from pathlib import Path
from unittest.mock import create_autospec

from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.rotation.cycle import RotationCycle
from databricks.labs.oauth_rotator.deadlines import run_with_deadline
from databricks.labs.oauth_rotator.errors import CredentialError
from tests.rigs.workspace import FakeWorkspace
from databricks.labs.oauth_rotator.lakebase.workspace import build_workspace_client
from databricks.labs.oauth_rotator.rotation.schedule import RefreshPolicy, SystemClock
from databricks.labs.oauth_rotator.rotation.state import StateStore

def block_forever(*_args, **_kwargs):
    print(f"fetching on {threading.current_thread().name}, daemon={threading.current_thread().daemon}", flush=True)
    threading.Event().wait()

ws = create_autospec(WorkspaceClient)
ws.database.get_database_instance.side_effect = block_forever
ws.database.generate_database_credential.side_effect = block_forever
root = Path(sys.argv[1])
config = RotatorConfig(targets=[TargetConfig(instance="db", user="ana@example.com")])
cycle = RotationCycle(
    config,
    lambda: ws,
    pgpass_path=root / ".pgpass",
    state=StateStore(root / "state" / "status.json"),
    clock=SystemClock(),
    policy=RefreshPolicy(),
)
try:
    run_with_deadline(lambda: cycle.run(force=True), 1.0)
except CredentialError as err:
    print(err, flush=True)
    sys.exit(3)
"""


def test_results_come_back_in_item_order_with_at_most_limit_at_once():
    lock, in_flight, peak = threading.Lock(), [0], [0]
    all_in = threading.Event()

    def work(item: int) -> int:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            if in_flight[0] == 4:
                all_in.set()
        all_in.wait(5)  # the first four wait for each other: the peak is the limit, not luck
        time.sleep(0.001 * (item % 3))  # finish out of order
        with lock:
            in_flight[0] -= 1
        return item * 10

    assert map_on_daemon_threads(work, list(range(40)), limit=4, name="test") == [i * 10 for i in range(40)]
    assert peak[0] == 4


def test_one_item_that_raises_stops_no_other_and_the_first_error_is_raised_after_all():
    attempted: list[int] = []

    def work(item: int) -> int:
        attempted.append(item)
        if item in {2, 5}:
            raise RuntimeError(f"item {item}")
        return item

    with pytest.raises(RuntimeError, match="item 2"):
        map_on_daemon_threads(work, list(range(8)), limit=3, name="test")
    assert sorted(attempted) == list(range(8))


def test_no_items_start_no_threads():
    assert map_on_daemon_threads(lambda item: item, [], limit=16, name="test") == []


def test_the_work_runs_on_daemon_threads():
    seen: list[bool] = []
    map_on_daemon_threads(lambda _: seen.append(threading.current_thread().daemon), [1, 2, 3], limit=2, name="test")
    run_with_deadline(lambda: seen.append(threading.current_thread().daemon), 5)
    assert seen == [True, True, True, True]


def test_the_deadline_gives_up_on_work_that_never_ends_and_hands_back_errors():
    never = threading.Event()
    started = time.monotonic()
    with pytest.raises(CredentialError, match=r"^lookup did not finish within "):
        run_with_deadline(never.wait, 0.2, what="lookup")
    assert time.monotonic() - started < 2
    empty: dict[str, int] = {}
    with pytest.raises(KeyError):
        run_with_deadline(lambda: empty["missing"], 5)


def test_the_interpreter_exits_while_a_cycle_fetch_is_blocked(tmp_path: Path):
    """The bug of issue #12: the cycle's fetch threads were a ThreadPoolExecutor's, which the interpreter joins at
    exit, so a process whose watchdog had given up stayed alive until the server answered."""
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_CYCLE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=90,  # a blocked fetch that kept the interpreter alive would hang here for ever
        check=False,
    )
    assert result.returncode == 3, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("fetching on oauth-rotator-fetch-") and lines[0].endswith("daemon=True"), lines
    assert lines[1] == "rotation did not finish within 1 s (is the workspace reachable?)"


def test_the_usage_page_states_the_bounds_the_code_keeps():
    text = " ".join(USAGE.read_text(encoding="utf-8").split())
    for promise in (
        f"{HTTP_TIMEOUT_SECONDS:.0f} s per HTTP call",
        f"{RETRY_TIMEOUT_SECONDS:.0f} s of retries",
        f"a {ONCE_DEADLINE_SECONDS:.0f} s watchdog",
        f"within one {DOCTOR_DEADLINE_SECONDS:.0f} s deadline",
        f"longer than {CYCLE_TIMEOUT_SECONDS:.0f} s",
    ):
        assert promise in text


def test_the_workspace_client_never_refreshes_on_the_sdks_shared_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_workspace: FakeWorkspace
) -> None:
    """The SDK's async token refresh runs on a ThreadPoolExecutor it shares: a refresh blocked there would keep a
    finished entry point alive, as the cycle's own executor did."""
    config_file = tmp_path / "databrickscfg"
    config_file.write_text(
        f"[fake]\nhost = {fake_workspace.host}\nclient_id = {fake_workspace.client_id}\n"
        f"client_secret = {fake_workspace.client_secret}\n",
        encoding="utf-8",
    )
    for name in [n for n in os.environ if n.startswith("DATABRICKS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(config_file))
    ws = build_workspace_client(profile="fake", host=None)
    assert ws.config.disable_async_token_refresh is True
    assert ws.current_user.me().user_name == fake_workspace.user_name
