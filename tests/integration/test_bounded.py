"""Every entry point ends on time, whatever the workspace does: it never answers, answers one byte a second, or
resets the connection. Each door runs as its own process, as a user runs it, against a fake workspace whose fault
lasts far longer than this test may (forever, or 1 byte/s of a kilobyte answer); what is asserted is when the
process *exited*, not when it printed its error. All the doors start together and are waited for together:
the file takes one deadline, not one per door.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.deadlines import DOCTOR_DEADLINE_SECONDS, ONCE_DEADLINE_SECONDS
from databricks.labs.oauth_rotator.files.config_store import save_config
from tests.integration.conftest import home_environment
from tests.integration.test_labs_contract import LABS_YML, LIB, Labs, declared
from tests.rigs.workspace import DEMO_INSTANCE, FakeWorkspace

USER = "someone@example.com"
FOREVER = 1_000_000
"""A fault count no door exhausts: every matching request meets it."""
IDP = "/oidc/v1/token"
"""The identity provider's token endpoint: the SDK sends its request with no timeout at all."""
CREDENTIALS = "/api/2.0/database/credentials"
INSTANCES = "/api/2.0/database/instances/"
DEADLINE_SECONDS = max(ONCE_DEADLINE_SECONDS, DOCTOR_DEADLINE_SECONDS)
STARTUP_FACTOR = 1.5
"""Before its deadline starts, a door does what the floor does and a little more (reads its config, builds the
client); all of it is CPU work, which a loaded machine slows alike."""
SLACK_SECONDS = 3.0
"""Printing the error and exiting."""
STARTUP_SCRIPT = (
    "import databricks.labs.oauth_rotator.app.doctor, databricks.labs.oauth_rotator.app.connect, "
    "databricks.labs.blueprint.cli"
)
"""The start-up floor: what the doors import before they ask the workspace anything (the SDK, blueprint), run at
the same time as the doors, so that a loaded machine (two cores shared by many) slows the floor as it slows them.
About 2-3 s on a quiet machine, which makes the bound about 32 s (the docs say about 30)."""
INFO_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - INFO - ")
GIVE_UP_SECONDS = 110.0
"""A door still alive then has failed; it is killed, so that the test itself ends."""

API_SCRIPT = """
import sys
from databricks.labs.oauth_rotator import DatabricksOAuthRotator
from databricks.labs.oauth_rotator.errors import RotatorError

rotator = DatabricksOAuthRotator(instance=sys.argv[1], pg_username=sys.argv[2], pgpass_file=sys.argv[3])
try:
    rotator.run_once()
except RotatorError as err:
    print(f"run_once: {err}", file=sys.stderr)
    sys.exit(err.exit_code)
"""
INSTALL_SCRIPT = "from databricks.labs.oauth_rotator.commands.service_scripts import install_main; install_main()"


@dataclass
class Door:
    """One entry point, run as its own process against one faulty workspace."""

    name: str
    argv: list[str]
    env: dict[str, str]
    root: Path
    workspace: FakeWorkspace
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    exited_after: float | None = None
    """Seconds from start to the moment the process was seen gone; None while it runs (or once killed)."""
    killed: bool = False
    checks: list[Callable[[Door], None]] = field(default_factory=list)

    def start(self) -> None:
        with (self.root / "stdout").open("wb") as out, (self.root / "stderr").open("wb") as err:
            self.started = time.monotonic()
            self.process = subprocess.Popen(
                self.argv, env=self.env, cwd=self.root, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )

    def poll(self) -> bool:
        """Whether the process has ended (recording when it did)."""
        assert self.process is not None
        if self.exited_after is None and not self.killed and self.process.poll() is not None:
            self.exited_after = time.monotonic() - self.started
        return self.exited_after is not None or self.killed

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.killed = True

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    @property
    def stdout(self) -> str:
        return (self.root / "stdout").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.root / "stderr").read_text(errors="replace")

    def report(self) -> str:
        when = "still running, killed" if self.killed else f"exited {self.returncode} after {self.exited_after:.1f} s"
        return f"{self.name}: {when}\n  stdout: {self.stdout.strip()!r}\n  stderr: {self.stderr.strip()!r}"


class Doors:
    """Builds the doors, each in its own HOME, then runs them all at once with the start-up floor."""

    def __init__(self, tmp_path: Path, workspace: FakeWorkspace) -> None:
        self._tmp_path = tmp_path
        self.doors: list[Door] = []
        root = self._root("start-up floor")
        self.floor = Door("start-up floor", [sys.executable, "-c", STARTUP_SCRIPT], dict(os.environ), root, workspace)

    def _root(self, name: str) -> Path:
        root = self._tmp_path / name
        root.mkdir()
        return root

    def console_once(self, name: str, workspace: FakeWorkspace) -> Door:
        """`databricks-oauth-rotator --once` with the user given, so the token is requested on a fetch thread."""
        root = self._root(name)
        flags = ["--once", "--instance", DEMO_INSTANCE, "--pg-username", USER, "--pgpass-file", str(root / ".pgpass")]
        argv = [sys.executable, "-m", "databricks.labs.oauth_rotator", *flags]
        return self._add(Door(name, argv, home_environment(root, workspace), root, workspace), fails_in_one_line)

    def api_run_once(self, name: str, workspace: FakeWorkspace) -> Door:
        root = self._root(name)
        argv = [sys.executable, "-c", API_SCRIPT, DEMO_INSTANCE, USER, str(root / ".pgpass")]
        return self._add(Door(name, argv, home_environment(root, workspace), root, workspace), fails_in_one_line)

    def install(self, name: str, workspace: FakeWorkspace) -> Door:
        """`databricks-oauth-install`, with no service manager to reach (it must not need one to end on time)."""
        root = self._root(name)
        runtime = root / "run"
        runtime.mkdir(mode=0o700)
        env = {k: v for k, v in home_environment(root, workspace).items() if k != "DBUS_SESSION_BUS_ADDRESS"}
        env["XDG_RUNTIME_DIR"] = str(runtime)
        flags = ["--instance", DEMO_INSTANCE, "--pg-username", USER, "--pgpass-file", str(root / ".pgpass")]
        argv = [sys.executable, "-c", INSTALL_SCRIPT, *flags]
        return self._add(Door(name, argv, env, root, workspace), asks_the_workspace_nothing)

    def labs(
        self, command: str, workspace: FakeWorkspace, *checks: Callable[[Door], None], name: str = "", **config: str
    ) -> Door:
        """`databricks labs oauth-rotator COMMAND`: the entrypoint by path with the CLI's payload and environment,
        the saved config pinning a ~/.databrickscfg profile (so `doctor`, which gets no login, can log in too)."""
        name = name or f"labs {command}"
        root = self._root(name.replace(" ", "-"))
        home = Labs(root, workspace)
        (root / ".databrickscfg").write_text(
            f"[fake]\nhost = {workspace.host}\nclient_id = {workspace.client_id}\n"
            f"client_secret = {workspace.client_secret}\n",
            encoding="utf-8",
        )
        instances = config.get("instances", DEMO_INSTANCE).split(",")
        targets = [TargetConfig(instance=instance, user=USER) for instance in instances]
        save_config(RotatorConfig(targets=targets, profile="fake", pgpass_file=str(home.pgpass)), home.config_file)
        flags = {f["name"]: f["default"] for f in declared(command).get("flags") or []}
        payload = json.dumps({"command": command, "flags": {**flags, "log_level": "warn"}, "output_type": ""})
        argv = [sys.executable, str(LIB / LABS_YML["entrypoint"]), payload]
        return self._add(Door(name, argv, home.env(command), home.cwd, workspace), *(checks or (fails_in_one_line,)))

    def _add(self, door: Door, *checks: Callable[[Door], None]) -> Door:
        door.checks.extend(checks)
        self.doors.append(door)
        return door

    def run_all(self) -> float:
        """Run every door and the floor at once; returns the bound each door must have exited within."""
        everything = [self.floor, *self.doors]
        for door in everything:
            door.start()
        give_up = time.monotonic() + GIVE_UP_SECONDS
        while not all([door.poll() for door in everything]):  # a list: every door is polled every time
            if time.monotonic() > give_up:
                for door in everything:
                    if not door.poll():
                        door.kill()
                break
            time.sleep(0.05)
        assert self.floor.returncode == 0 and self.floor.exited_after is not None, self.floor.report()
        return STARTUP_FACTOR * self.floor.exited_after + DEADLINE_SECONDS + SLACK_SECONDS

    def report(self) -> str:
        return "\n".join(door.report() for door in [self.floor, *self.doors])


def fails_in_one_line(door: Door) -> None:
    """Non-zero, and one line says why (the log's INFO records, such as the SDK naming the profile, may precede it)."""
    assert door.returncode not in (None, 0)
    lines = [line for line in door.stderr.splitlines() if line.strip() and not INFO_RECORD.match(line)]
    assert len(lines) == 1, door.stderr


def doctor_fails_the_login_on_time(door: Door) -> None:
    assert door.returncode == 1
    assert f"FAIL  login: login check did not finish within {DOCTOR_DEADLINE_SECONDS:.0f} s" in door.stdout
    assert not door.stderr.strip()


def doctor_fails_each_target_within_one_deadline(door: Door) -> None:
    assert door.returncode == 1
    assert "OK    login: authenticated as" in door.stdout
    for instance in ("first", "second"):
        assert f"FAIL  target {instance}: target {instance} did not finish within" in door.stdout
    assert not door.stderr.strip()


def asks_the_workspace_nothing(door: Door) -> None:
    assert not door.workspace.calls, door.workspace.calls


@pytest.fixture
def faulty() -> Iterator[Callable[[Callable[[FakeWorkspace], None]], FakeWorkspace]]:
    """Fake workspaces, each with one fault that never ends, stopped (which releases what they hold) at the end."""
    started: list[FakeWorkspace] = []

    def start(fault: Callable[[FakeWorkspace], None]) -> FakeWorkspace:
        workspace = FakeWorkspace().start()
        started.append(workspace)
        for name in (DEMO_INSTANCE, "first", "second"):
            workspace.add_instance(name)
        fault(workspace)
        return workspace

    yield start
    for workspace in started:
        workspace.stop()


@pytest.mark.timeout(180)  # the doors give up within GIVE_UP_SECONDS whatever happens; this is the rig's margin
def test_every_entry_point_exits_on_time_whatever_the_workspace_does(tmp_path, faulty):
    never_answers = faulty(lambda ws: ws.hang_next(FOREVER, path_prefix=IDP))
    one_byte_a_second = faulty(lambda ws: ws.trickle_next(FOREVER, path_prefix=IDP))
    resets = faulty(lambda ws: ws.reset_next(FOREVER, path_prefix=IDP))
    credentials_trickle = faulty(lambda ws: ws.trickle_next(FOREVER, path_prefix=CREDENTIALS))
    instances_trickle = faulty(lambda ws: ws.trickle_next(FOREVER, path_prefix=INSTANCES))
    doors = Doors(tmp_path, never_answers)
    doors.console_once("once, the identity provider never answers", never_answers)
    doors.console_once("once, the identity provider answers a byte a second", one_byte_a_second)
    doors.console_once("once, the identity provider resets", resets)
    doors.console_once("once, the credential answer comes a byte a second", credentials_trickle)
    doors.labs("rotate", never_answers)
    doors.labs("psql", never_answers)
    doors.labs("env", never_answers)
    doors.labs("doctor", never_answers, doctor_fails_the_login_on_time)
    doors.labs(
        "doctor",
        instances_trickle,
        doctor_fails_each_target_within_one_deadline,
        name="labs doctor, both targets answer a byte a second",
        instances="first,second",
    )
    doors.api_run_once("run_once, the identity provider never answers", never_answers)
    doors.install("install, the workspace never answers", faulty(lambda ws: ws.hang_next(FOREVER, path_prefix="/")))

    bound = doors.run_all()

    report = f"bound {bound:.1f} s\n{doors.report()}"
    print(report)
    secrets = set().union(*(door.workspace.issued_secrets() for door in doors.doors))
    for door in doors.doors:
        assert door.exited_after is not None and door.exited_after <= bound, report
        output = door.stdout + door.stderr
        assert "Traceback" not in output, door.report()
        assert not [s for s in secrets if s in output], door.name
        for check in door.checks:
            check(door)
