"""One rotation cycle with a fake clock and an autospec'd workspace client: scheduling, safety, status."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import PermissionDenied, TemporarilyUnavailable
from databricks.sdk.service.database import DatabaseCredential, DatabaseInstance
from databricks.sdk.service.iam import User

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.rotation.cycle import RotationCycle
from databricks.labs.oauth_rotator.rotation.notify import Notifier
from databricks.labs.oauth_rotator.rotation.schedule import FakeClock, RefreshPolicy
from databricks.labs.oauth_rotator.rotation.state import StateStore
from databricks.labs.oauth_rotator.text import human_duration
from tests.rigs.tokens import mint_jwt, rfc3339

START = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
USER = "ana@example.com"


class Workspace:
    """An autospec'd client whose credentials are JWTs expiring an hour after the fake clock's now."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.ws = create_autospec(WorkspaceClient)
        self.ws.current_user.me.return_value = User(user_name=USER)
        self.ws.database.get_database_instance.side_effect = lambda name: DatabaseInstance(
            name=name, read_write_dns=f"{name}.example.com"
        )
        self.ws.database.generate_database_credential.side_effect = self.issue
        self.tokens: list[str] = []

    def issue(self, **_: object) -> DatabaseCredential:
        now = datetime.fromtimestamp(self.clock.time(), tz=timezone.utc)
        token = mint_jwt(USER, expires_at=now + timedelta(hours=1), issuer="test", issued_at=now)
        self.tokens.append(token)
        return DatabaseCredential(token=token, expiration_time=rfc3339(now + timedelta(hours=1)))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START.timestamp())


@pytest.fixture
def workspace(clock: FakeClock) -> Workspace:
    return Workspace(clock)


def cycle_for(
    tmp_path: Path, workspace: Workspace, clock: FakeClock, *targets: str, **collaborators: Any
) -> RotationCycle:
    config = RotatorConfig(targets=[TargetConfig(instance=t) for t in targets or ("db",)])
    return RotationCycle(
        config,
        lambda: workspace.ws,
        pgpass_path=tmp_path / ".pgpass",
        state=StateStore(tmp_path / "state" / "status.json"),
        clock=clock,
        policy=RefreshPolicy(),
        **collaborators,
    )


def password(tmp_path: Path, host: str = "db.example.com") -> str | None:
    return pgpass.lookup((tmp_path / ".pgpass").read_bytes(), host, "5432", "postgres", USER)


def test_nothing_is_requested_until_the_credential_is_due(tmp_path, workspace, clock):
    cycle = cycle_for(tmp_path, workspace, clock)
    report = cycle.run()
    assert report.rotated == ["db"] and report.next_due == START.timestamp() + 50 * 60
    clock.jump(49 * 60)
    assert cycle.run().rotated == []
    assert len(workspace.tokens) == 1
    clock.jump(60)
    assert cycle.run().rotated == ["db"]
    assert password(tmp_path) == workspace.tokens[-1]


def test_after_a_two_hour_suspend_the_next_cycle_refreshes_and_writes_a_valid_credential(tmp_path, workspace, clock):
    cycle = cycle_for(tmp_path, workspace, clock)
    cycle.run()
    clock.jump(2 * 3600)
    assert cycle.run().rotated == ["db"]
    written = password(tmp_path)
    assert written == workspace.tokens[-1] != workspace.tokens[0]


def test_a_user_who_deletes_our_line_gets_it_back_on_the_next_cycle(tmp_path, workspace, clock):
    cycle = cycle_for(tmp_path, workspace, clock)
    cycle.run()
    (tmp_path / ".pgpass").write_text("# I cleaned up\nmine:5432:*:me:pw\n")
    clock.jump(60)
    assert cycle.run().rotated == ["db"]
    assert password(tmp_path) == workspace.tokens[-1]
    assert (tmp_path / ".pgpass").read_text().startswith("# I cleaned up\nmine:5432:*:me:pw\n")


def test_a_newer_credential_already_in_the_file_is_never_replaced_by_an_older_one(tmp_path, workspace, clock):
    """Two rotators on one file: the slower one must not put back a credential that dies sooner."""
    newer = mint_jwt(USER, expires_at=START + timedelta(hours=3), issuer="test")
    (tmp_path / ".pgpass").write_bytes(
        pgpass.merge(b"", [pgpass.PgpassEntry("db.example.com", "5432", "*", USER, newer)])
    )
    cycle_for(tmp_path, workspace, clock).run(force=True)
    assert password(tmp_path) == newer


def test_a_failure_keeps_the_old_credential_backs_off_and_is_logged_once(tmp_path, workspace, clock, caplog):
    cycle = cycle_for(tmp_path, workspace, clock)
    cycle.run()
    good = password(tmp_path)
    workspace.ws.database.generate_database_credential.side_effect = TemporarilyUnavailable("try later")
    caplog.set_level(logging.INFO, logger="databricks.labs.oauth_rotator")
    clock.jump(50 * 60)
    failed = cycle.run()
    assert set(failed.failed) == {"db"} and failed.exit_code == 1
    assert password(tmp_path) == good
    state = StateStore(tmp_path / "state" / "status.json").load().targets["db"]
    assert state.failures == 1 and state.next_attempt is not None
    assert clock.time() + 2.5 <= state.next_attempt <= clock.time() + 5
    clock.jump(5)
    cycle.run()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, "the same error is reported once, then counted"
    workspace.ws.database.generate_database_credential.side_effect = workspace.issue
    clock.jump(600)
    assert cycle.run().rotated == ["db"]
    recovered = StateStore(tmp_path / "state" / "status.json").load().targets["db"]
    assert recovered.failures == 0 and recovered.last_error is None


def test_an_error_that_needs_a_person_is_retried_slowly_and_says_so_in_status(tmp_path, workspace, clock):
    workspace.ws.database.generate_database_credential.side_effect = PermissionDenied("no access to db")
    report = cycle_for(tmp_path, workspace, clock).run()
    state = StateStore(tmp_path / "state" / "status.json").load().targets["db"]
    assert report.failed["db"].needs_person
    assert state.needs_person and state.fix and "no access to db" in (state.last_error or "")
    assert state.next_attempt == clock.time() + RefreshPolicy().needs_person_retry_seconds
    assert not (tmp_path / ".pgpass").exists()


def test_one_failing_target_does_not_stop_the_others_and_the_file_is_written_once(tmp_path, workspace, clock):
    issue = workspace.issue

    def only_good(**kwargs: object) -> DatabaseCredential:
        if kwargs.get("instance_names") == ["bad"]:
            raise PermissionDenied("no")
        return issue(**kwargs)

    workspace.ws.database.generate_database_credential.side_effect = only_good
    report = cycle_for(tmp_path, workspace, clock, "good1", "bad", "good2").run()
    assert sorted(report.rotated) == ["good1", "good2"] and list(report.failed) == ["bad"]
    assert password(tmp_path, "good1.example.com") and password(tmp_path, "good2.example.com")


@pytest.mark.parametrize(("seconds", "text"), [(45, "45 s"), (600, "10 min"), (3 * 3600 + 300, "3 h 5 min")])
def test_durations_read_as_people_say_them(seconds, text):
    assert human_duration(seconds) == text


def test_a_person_is_notified_once_per_condition_and_again_only_after_it_recurs(tmp_path, workspace, clock):
    notifier = create_autospec(Notifier)
    cycle = cycle_for(tmp_path, workspace, clock, notifier=notifier)
    workspace.ws.database.generate_database_credential.side_effect = PermissionDenied("no access")
    for _ in range(3):
        cycle.run(force=True)
        clock.jump(60)
    assert notifier.notify.call_count == 1
    assert "a person must act" in notifier.notify.call_args.args[0]
    workspace.ws.database.generate_database_credential.side_effect = workspace.issue
    cycle.run(force=True)
    workspace.ws.database.generate_database_credential.side_effect = PermissionDenied("no access")
    cycle.run(force=True)
    assert notifier.notify.call_count == 2


def test_refreshes_failing_close_to_expiry_are_notified_once(tmp_path, workspace, clock):
    notifier = create_autospec(Notifier)
    cycle = cycle_for(tmp_path, workspace, clock, notifier=notifier)
    cycle.run()
    workspace.ws.database.generate_database_credential.side_effect = TemporarilyUnavailable("down")
    clock.jump(50 * 60)
    cycle.run()
    assert notifier.notify.call_count == 0, "10 minutes left: still time for retries"
    clock.jump(6 * 60)
    cycle.run(force=True)
    clock.jump(60)
    cycle.run(force=True)
    assert notifier.notify.call_count == 1
    assert "expires in" in notifier.notify.call_args.args[0]


def test_the_hook_runs_after_a_write_that_changed_the_file_and_not_after_a_quiet_cycle(tmp_path, workspace, clock):
    calls: list[list[str]] = []

    def hook(rotated, _path):
        calls.append(list(rotated))
        return 0

    cycle = cycle_for(tmp_path, workspace, clock, hook=hook)
    cycle.run()
    cycle.run()
    clock.jump(50 * 60)
    cycle.run()
    assert calls == [["db"], ["db"]]


def test_a_cycle_of_only_some_targets_leaves_the_others_and_their_status_alone(tmp_path, workspace, clock):
    """`password` refreshes one target by a forced cycle limited to it: the others keep their lines and status."""
    cycle_for(tmp_path, workspace, clock, "a", "b").run()
    before = StateStore(tmp_path / "state" / "status.json").load().targets
    old_b = password(tmp_path, "b.example.com")
    clock.jump(60)
    report = cycle_for(tmp_path, workspace, clock, "a", "b").run(force=True, only={"a"})
    assert report.rotated == ["a"] and len(workspace.tokens) == 3
    after = StateStore(tmp_path / "state" / "status.json").load().targets
    assert set(after) == {"a", "b"} and after["b"] == before["b"]
    assert after["a"].fingerprint != before["a"].fingerprint
    assert password(tmp_path, "a.example.com") == workspace.tokens[-1]
    assert password(tmp_path, "b.example.com") == old_b


# ---- nothing kills the scheduler: every exception in a cycle is a reported failure (issue 19) --------------------


def test_an_unforeseen_exception_for_one_target_is_its_recorded_failure(tmp_path, workspace, clock):
    cycle = cycle_for(tmp_path, workspace, clock, "db", "other")
    real = workspace.issue

    def issue(**kwargs):
        if kwargs["instance_names"] == ["other"]:
            raise RecursionError("maximum recursion depth exceeded \x1b[2J")
        return real(**kwargs)

    workspace.ws.database.generate_database_credential.side_effect = issue
    report = cycle.run()
    assert report.rotated == ["db"]
    assert "RecursionError" in str(report.failed["other"])
    recorded = StateStore(tmp_path / "state" / "status.json").load().targets["other"]
    assert recorded.failures == 1 and recorded.next_attempt is not None
    assert "\x1b" not in (recorded.last_error or "")


def test_an_unforeseen_exception_outside_the_targets_is_a_retryable_rotator_error(tmp_path, workspace, clock):
    from databricks.labs.oauth_rotator.errors import CredentialError

    class Broken(Notifier):
        def notify(self, message: str, *, title: str = "oauth-rotator") -> bool:
            raise ZeroDivisionError("the desktop is gone")

    workspace.ws.database.generate_database_credential.side_effect = PermissionDenied("no")
    cycle = cycle_for(tmp_path, workspace, clock, notifier=Broken())
    with pytest.raises(CredentialError, match="ZeroDivisionError: the desktop is gone") as failure:
        cycle.run()
    assert failure.value.retryable


def test_a_malformed_status_file_is_set_aside_and_the_cycle_rotates(tmp_path, workspace, clock, caplog):
    status = tmp_path / "state" / "status.json"
    status.parent.mkdir()
    status.write_bytes(b'{"targets": {"db": 5}}')
    report = cycle_for(tmp_path, workspace, clock).run()
    assert report.rotated == ["db"]
    assert password(tmp_path) == workspace.tokens[-1]
    assert StateStore(status).load().targets["db"].fingerprint is not None
    assert len([r for r in caplog.records if "Malformed status file" in r.getMessage()]) == 1
    assert len(list(status.parent.glob("status.json.bad-*"))) == 1


def test_a_two_second_credential_gives_at_most_one_cycle_a_minute(tmp_path, clock):
    """Issue 19: a workspace answering with credentials that live 2 s gave 16 cycles in 30 s; the scheduler, running
    real cycles, now asks at most once a minute."""
    import threading

    from databricks.labs.oauth_rotator.rotation.daemon import CycleResult, Daemon

    workspace = Workspace(clock)

    def issue(**_: object) -> DatabaseCredential:
        now = datetime.fromtimestamp(clock.time(), tz=timezone.utc)
        token = mint_jwt(USER, expires_at=now + timedelta(seconds=2), issuer="test", issued_at=now)
        workspace.tokens.append(token)
        return DatabaseCredential(token=token, expiration_time=rfc3339(now + timedelta(seconds=2)))

    workspace.ws.database.generate_database_credential.side_effect = issue
    cycle = cycle_for(tmp_path, workspace, clock)
    stop = threading.Event()
    start = clock.time()

    class Runner:
        def run(self, *, force: bool) -> CycleResult:
            report = cycle.run(force=force)
            if clock.time() - start >= 600:
                stop.set()
            return CycleResult(report.exit_code, report.next_due)

    Daemon(Runner(), clock=clock, stop=stop).run()
    assert 10 <= len(workspace.tokens) <= 11, f"{len(workspace.tokens)} credentials in 600 s"
