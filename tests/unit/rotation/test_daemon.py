import threading

import pytest

from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint
from databricks.labs.oauth_rotator.rotation.daemon import CycleResult, Daemon, _parse_report
from databricks.labs.oauth_rotator.rotation.schedule import FakeClock, RefreshPolicy
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState


class ScriptedRunner:
    """Answers each cycle from a script; records the wall-clock time of every cycle."""

    def __init__(self, clock, results, stop):
        self.clock, self.results, self.stop = clock, list(results), stop
        self.times: list[float] = []

    def run(self, *, force: bool) -> CycleResult:
        assert force is False
        self.times.append(self.clock.time())
        result = self.results.pop(0)
        if not self.results:
            self.stop.set()
        return result(self.clock.time()) if callable(result) else result


class SuspendingClock(FakeClock):
    """A laptop that is suspended for `seconds` during its `at`-th wait."""

    def __init__(self, at: int, seconds: float):
        super().__init__(start=0)
        self.at, self.seconds = at, seconds

    def wait(self, stop, seconds):
        if len(self.waits) == self.at:
            self.jump(self.seconds)
        return super().wait(stop, seconds)


def test_a_laptop_that_slept_past_expiry_is_refreshed_within_a_minute_of_waking():
    clock = SuspendingClock(at=3, seconds=2 * 3600)
    stop = threading.Event()
    runner = ScriptedRunner(clock, [lambda now: CycleResult(0, now + 3000)] * 2, stop)
    Daemon(runner, clock=clock, stop=stop).run()
    first, second = runner.times
    assert max(clock.waits) <= 60
    wake_time = first + 3 * 60 + 2 * 3600  # three full waits, then the suspend
    assert wake_time <= second <= wake_time + 60


def test_the_scheduler_sleeps_in_steps_of_at_most_a_minute_until_due():
    clock = FakeClock(start=0)
    stop = threading.Event()
    runner = ScriptedRunner(clock, [CycleResult(0, 150.0), CycleResult(0, 10_000.0)], stop)
    assert Daemon(runner, clock=clock, stop=stop).run() == 0
    assert runner.times == [0, 150.0]
    assert clock.waits == [60, 60, 30]


def test_an_unusable_configuration_stops_the_scheduler_with_exit_code_2():
    clock = FakeClock(start=0)
    runner = ScriptedRunner(clock, [CycleResult(2), CycleResult(0, 1.0)], threading.Event())
    assert Daemon(runner, clock=clock).run() == 2
    assert len(runner.times) == 1


def test_a_cycle_that_crashed_or_hung_is_retried_with_backoff_not_in_a_loop():
    clock = FakeClock(start=0)
    stop = threading.Event()
    runner = ScriptedRunner(clock, [CycleResult(1, detail="timeout"), CycleResult(0, 10_000.0)], stop)
    policy = RefreshPolicy(backoff_base_seconds=20, backoff_cap_seconds=20)
    Daemon(runner, clock=clock, stop=stop, policy=policy).run()
    assert 10 <= runner.times[1] - runner.times[0] <= 21


def test_a_deleted_pgpass_line_triggers_a_cycle_before_the_refresh_is_due(tmp_path):
    pgpass_file = tmp_path / "pgpass"
    pgpass_file.write_text("h:5432:*:u:tok\n")
    status = Status(
        pgpass_file=str(pgpass_file),
        targets={
            "t": TargetState(
                name="t", keys=[["h", "5432", "*", "u"]], fingerprint=token_fingerprint("tok"), expires_at=9e9
            )
        },
    )
    state = StateStore(tmp_path / "status.json")
    state.path.write_bytes(status.to_json())
    clock = FakeClock(start=0)
    stop = threading.Event()

    def delete_line_then_sleep(now):
        if len(runner.times) == 1:
            pgpass_file.write_text("# the user removed our line\n")
        return CycleResult(0, now + 3000)

    runner = ScriptedRunner(clock, [delete_line_then_sleep, delete_line_then_sleep], stop)
    Daemon(runner, clock=clock, stop=stop, state=state).run()
    assert runner.times[1] - runner.times[0] <= 2


def test_the_worker_report_is_the_last_json_line_of_its_output():
    assert _parse_report('noise\n{"exit_code": 0, "next_due": 12.5}\n', 0) == CycleResult(0, 12.5)
    assert _parse_report("", 0) == CycleResult(1, detail="no report")
    assert _parse_report("Traceback...", 1).completed is True
    assert _parse_report("", -9).completed is False


def test_an_edited_config_runs_a_cycle_within_a_minute(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("targets: [{instance: a}]\n")
    clock = FakeClock(start=0)
    stop = threading.Event()

    def edit_then_sleep(now):
        if len(runner.times) == 1:
            config.write_text("targets: [{instance: a}, {instance: b}]\n")
        return CycleResult(0, now + 3000)

    runner = ScriptedRunner(clock, [edit_then_sleep, edit_then_sleep], stop)
    Daemon(runner, clock=clock, stop=stop, watch=config).run()
    assert runner.times[1] - runner.times[0] <= 2


# ---- nothing kills the scheduler (issue 19) ---------------------------------------------------------------------


def _fake_python(tmp_path, output: bytes, code: int = 0):
    """An executable that stands in for `python -m ...worker`: reads its stdin, prints `output`, exits `code`."""
    script = tmp_path / "fake-python"
    (tmp_path / "output").write_bytes(output)
    script.write_text(f"#!/bin/sh\ncat >/dev/null\ncat '{tmp_path / 'output'}'\nexit {code}\n")
    script.chmod(0o700)
    return str(script)


@pytest.mark.parametrize(
    "output",
    [
        b"\xff\xfe not utf-8 \x1b]0;x\x07\n",
        b'{"exit_code": 0, "next_due": Infinity}\n',
        b'{"exit_code": 0, "next_due": NaN}\n',
        b'{"exit_code": 0, "next_due": 1e400}\n',
        b'{"exit_code": 0, "next_due": "soon"}\n',
        b"[" * 100_000 + b"\n",
        b"x" * 1_000_000 + b"\n",
    ],
    ids=["bytes", "infinity", "nan", "overflow", "text", "deep", "huge"],
)
def test_a_worker_that_printed_garbage_is_a_crash_backed_off_never_a_dead_scheduler(tmp_path, output):
    from databricks.labs.oauth_rotator.rotation.daemon import SubprocessCycleRunner

    clock = FakeClock(start=0)
    stop = threading.Event()
    real = SubprocessCycleRunner({}, python=_fake_python(tmp_path, output), timeout=30)
    results = []

    class Recording:
        def run(self, *, force):
            results.append(real.run(force=force))
            if len(results) == 3:
                stop.set()
            return results[-1]

    assert Daemon(Recording(), clock=clock, stop=stop).run() == 0
    assert len(results) == 3
    assert all(result.next_due is None for result in results)
    assert sum(clock.waits) >= 5, "crashed cycles are retried with backoff, not in a loop"


def test_a_reported_next_due_far_in_the_future_is_capped_at_a_day():
    clock = FakeClock(start=0)
    stop = threading.Event()
    runner = ScriptedRunner(clock, [CycleResult(0, 4102444800.0), CycleResult(0, 10.0)], stop)
    Daemon(runner, clock=clock, stop=stop).run()
    assert runner.times[1] == 24 * 3600


def test_a_runner_that_raises_is_logged_and_backed_off(caplog):
    clock = FakeClock(start=0)
    stop = threading.Event()
    calls = []

    class Exploding:
        def run(self, *, force):
            calls.append(clock.time())
            if len(calls) == 3:
                stop.set()
            raise OSError("fork failed: \x1b[2Jcannot allocate memory")

    assert Daemon(Exploding(), clock=clock, stop=stop).run() == 0
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 2.5
    failures = [r.getMessage() for r in caplog.records if "could not run" in r.getMessage()]
    assert len(failures) == 3 and all("\x1b" not in line for line in failures)


def test_a_malformed_status_file_does_not_stop_the_scheduler(tmp_path, caplog):
    state = StateStore(tmp_path / "status.json")
    state.path.write_bytes(b'{"targets": {"inst1": 5}, "pgpass_file": "/x"}')
    clock = FakeClock(start=0)
    stop = threading.Event()
    runner = ScriptedRunner(clock, [lambda now: CycleResult(0, now + 30), lambda now: CycleResult(0, now + 30)], stop)
    assert Daemon(runner, clock=clock, stop=stop, state=state).run() == 0
    assert len(runner.times) == 2
    assert len([r for r in caplog.records if "Malformed status file" in r.getMessage()]) == 1


class CountingObserver:
    def __init__(self):
        self.turns = self.cycles = 0

    def turned(self):
        self.turns += 1

    def cycle_finished(self):
        self.cycles += 1


def test_the_observer_hears_every_turn_and_every_cycle():
    clock = FakeClock(start=0)
    stop = threading.Event()
    runner = ScriptedRunner(clock, [CycleResult(0, 150.0), CycleResult(1, 10_000.0)], stop)
    observer = CountingObserver()
    assert Daemon(runner, clock=clock, stop=stop, observer=observer).run() == 0
    assert observer.cycles == 2
    assert observer.turns == 2 + len(clock.waits), "each cycle and each wait is a turn of the loop"


def test_a_worker_that_could_not_run_has_its_stderr_relayed_to_the_scheduler_log(tmp_path, caplog):
    """The worker's stderr is a pipe of the scheduler's (never the scheduler's own stderr, which pythonw lacks and
    launchd never rotates); its lines reach the scheduler's log only when the cycle could not run."""
    from databricks.labs.oauth_rotator.rotation.daemon import SubprocessCycleRunner

    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\ncat >/dev/null\necho 'oauth-rotator: error: no such profile DEV' >&2\nexit 2\n")
    script.chmod(0o700)
    with caplog.at_level("ERROR"):
        result = SubprocessCycleRunner({}, python=str(script)).run(force=False)
    assert result.exit_code == 2
    assert "worker: oauth-rotator: error: no such profile DEV" in caplog.text

    quiet = tmp_path / "quiet-python"
    quiet.write_text("#!/bin/sh\ncat >/dev/null\necho 'a log line' >&2\necho '{\"exit_code\": 0, \"next_due\": 5}'\n")
    quiet.chmod(0o700)
    caplog.clear()
    with caplog.at_level("ERROR"):
        assert SubprocessCycleRunner({}, python=str(quiet)).run(force=False) == CycleResult(0, 5.0)
    assert "a log line" not in caplog.text


def test_a_stop_ends_the_cycle_in_progress_at_once(tmp_path):
    """launchd SIGKILLs a job ExitTimeOut (20 s) after SIGTERM and `bootout` answers 36 until the job is gone: the
    scheduler must not sit out a 90 s cycle once it is told to stop (issue #24, item 10)."""
    import time

    from databricks.labs.oauth_rotator.rotation.daemon import SubprocessCycleRunner

    marker = tmp_path / "worker-pid"
    script = tmp_path / "slow-python"
    script.write_text(f"#!/bin/sh\necho $$ > '{marker}'\nexec sleep 60\n")
    script.chmod(0o700)
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    started = time.monotonic()
    result = SubprocessCycleRunner({}, python=str(script), stop=stop, timeout=90).run(force=False)
    assert result == CycleResult(1, detail="stopped")
    assert time.monotonic() - started < 10
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)


def test_the_service_chooses_the_exit_code_of_a_configuration_error():
    from databricks.labs.oauth_rotator.rotation.daemon import config_error_exit_code

    assert config_error_exit_code({}) == 2
    assert config_error_exit_code({"DATABRICKS_OAUTH_ROTATOR_CONFIG_ERROR_EXIT": "0"}) == 0  # launchd's agent
    assert config_error_exit_code({"DATABRICKS_OAUTH_ROTATOR_CONFIG_ERROR_EXIT": "-1"}) == 2
    assert config_error_exit_code({"DATABRICKS_OAUTH_ROTATOR_CONFIG_ERROR_EXIT": "999"}) == 2


def read(reloads: list[str]) -> None:
    """A reloader that puts every configuration in force."""
    reloads.append("read")


class Told:
    """The daemon's `Readiness`, recording what it was told in order."""

    def __init__(self):
        self.events: list[str] = []

    def cycle_ended(self, result, next_at):
        self.events.append(f"cycle {result.exit_code}")

    def reloading(self):
        self.events.append("reloading")

    def reload_refused(self, reason):
        self.events.append(f"refused: {reason}")

    def stopping(self):
        self.events.append("stopping")


def test_a_reload_request_puts_the_new_configuration_in_force_and_runs_a_cycle_at_once():
    clock = FakeClock(start=0)
    stop = threading.Event()
    reloads: list[str] = []
    told = Told()

    def hang_up_then_sleep(now):
        daemon.request_reload()  # SIGHUP while the first cycle runs
        return CycleResult(0, now + 3000)

    runner = ScriptedRunner(clock, [hang_up_then_sleep, CycleResult(0, 10_000.0)], stop)
    daemon = Daemon(runner, clock=clock, stop=stop, reloader=lambda: read(reloads), readiness=told)
    assert daemon.run() == 0
    assert reloads == ["read"]
    assert runner.times == [0, 0]  # the second cycle did not wait for its due time
    assert told.events == ["cycle 0", "reloading", "cycle 0", "stopping"]


def test_a_refused_reload_runs_no_cycle_and_keeps_the_loop_going():
    clock = FakeClock(start=0)
    stop = threading.Event()
    told = Told()

    def hang_up_then_sleep(now):
        daemon.request_reload()
        return CycleResult(0, now + 300)

    runner = ScriptedRunner(clock, [hang_up_then_sleep, CycleResult(0, 10_000.0)], stop)
    daemon = Daemon(runner, clock=clock, stop=stop, reloader=lambda: "no_such_setting: unknown key", readiness=told)
    assert daemon.run() == 0
    assert runner.times == [0, 300]  # the next cycle at its own time, with the configuration in force
    assert told.events == ["cycle 0", "reloading", "refused: no_such_setting: unknown key", "cycle 0", "stopping"]


def test_an_edited_config_file_takes_the_reload_path(tmp_path):
    clock = FakeClock(start=0)
    stop = threading.Event()
    config = tmp_path / "config.yml"
    config.write_text("a")
    reloads: list[str] = []

    def edit_then_sleep(now):
        config.write_text("ab")
        return CycleResult(0, now + 3000)

    runner = ScriptedRunner(clock, [edit_then_sleep, CycleResult(0, 10_000.0)], stop)
    Daemon(runner, clock=clock, stop=stop, watch=config, reloader=lambda: read(reloads)).run()
    assert reloads == ["read"] and runner.times == [0, 0]


def test_a_stop_request_wakes_a_sleeping_loop_at_once():
    """SIGTERM, `shutdown`, POST /quitquitquit: the loop does not sit out its minute."""
    from databricks.labs.oauth_rotator.rotation.schedule import SystemClock

    stop = threading.Event()
    runner = ScriptedRunner(FakeClock(), [CycleResult(0, 4102444800.0)] * 2, threading.Event())
    daemon = Daemon(runner, clock=SystemClock(), stop=stop)
    threading.Timer(0.3, daemon.request_stop).start()
    began = __import__("time").monotonic()
    assert daemon.run() == 0
    assert __import__("time").monotonic() - began < 5
