import threading

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
