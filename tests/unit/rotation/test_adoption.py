"""Adoption: a longer-lived credential already on our line (another rotator's, a manual paste) counts in the
schedule: no credential is minted and thrown away every cycle while it lives, and minting resumes when it nears
its expiry.

The real cycle and the real SDK against the fake workspace over HTTP, counting the credentials it issues. The
cycle's clock jumps; the workspace's does not, so its TTL is raised when time has "passed" beyond it.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint
from databricks.labs.oauth_rotator.rotation.adoption import (
    OnFile,
    Planned,
    expiry_on_file,
    not_older,
    on_file_record,
    outliving,
    with_credential,
)
from databricks.labs.oauth_rotator.rotation.cycle import RotationCycle
from databricks.labs.oauth_rotator.rotation.schedule import FakeClock, RefreshPolicy
from databricks.labs.oauth_rotator.rotation.state import StateStore, TargetState
from tests.rigs.tokens import mint_jwt
from tests.rigs.workspace import DEMO_INSTANCE, FakeWorkspace

HOUR = 3600.0
MINUTE = 60.0


class Rig:
    """One configured instance target, rotated by real cycles into `tmp_path/.pgpass`."""

    def __init__(self, tmp_path: Path, workspace: FakeWorkspace) -> None:
        self.workspace = workspace
        self.clock = FakeClock(start=float(int(time.time())))
        self.start = self.clock.time()
        self.pgpass = tmp_path / ".pgpass"
        self.state = StateStore(tmp_path / "state" / "status.json")
        self.cycle = RotationCycle(
            RotatorConfig(targets=[TargetConfig(instance=DEMO_INSTANCE)]),
            lambda: WorkspaceClient(config=workspace.sdk_config()),
            pgpass_path=self.pgpass,
            state=self.state,
            clock=self.clock,
            policy=RefreshPolicy(),
        )
        # What the cycle writes for the demo instance (host 127.0.0.1), for the user the workspace says we are.
        self.key = ("127.0.0.1", "5432", pgpass.ANY, workspace.user_name)

    @property
    def minted(self) -> int:
        return len(self.workspace.issued)

    def at(self, offset: float) -> float | None:
        """Run a cycle `offset` seconds after the start; its next due time, as an offset from the start."""
        self.clock.jump(self.start + offset - self.clock.time())
        report = self.cycle.run()
        assert report.exit_code == 0, report.failed
        return None if report.next_due is None else report.next_due - self.start

    def on_file(self) -> str | None:
        return pgpass.lookup(self.pgpass.read_bytes(), *self.key)

    def paste(self, token: str) -> None:
        """What another rotator (or a person) does: our line now holds `token`."""
        self.pgpass.write_bytes(pgpass.merge(self.pgpass.read_bytes(), [pgpass.PgpassEntry(*self.key, token)]))

    def recorded(self) -> TargetState:
        return self.state.load().targets[DEMO_INSTANCE]

    def assert_status_describes_the_file(self) -> None:
        on_file = self.on_file()
        assert on_file is not None
        assert self.recorded().fingerprint == token_fingerprint(on_file)


def someone_elses(rig: Rig, *, lives: float) -> str:
    start = datetime.fromtimestamp(rig.start, tz=timezone.utc)
    return mint_jwt(
        rig.workspace.user_name, expires_at=start + timedelta(seconds=lives), issuer="other", issued_at=start
    )


@pytest.fixture
def rig(tmp_path: Path, fake_workspace: FakeWorkspace) -> Rig:
    return Rig(tmp_path, fake_workspace)


def test_a_pasted_longer_lived_credential_is_not_refreshed_until_it_nears_expiry(rig: Rig) -> None:
    assert rig.at(0) == 50 * MINUTE
    assert rig.minted == 1
    theirs = someone_elses(rig, lives=3 * HOUR)
    rig.paste(theirs)

    for minutes in (50, 60, 90, 120, 150, 169):
        next_due = rig.at(minutes * MINUTE)
        assert rig.minted == 1, f"a credential was minted at {minutes} min while the pasted one lives"
        assert rig.on_file() == theirs
        # The pasted one is due when it has as little life left as ours had when due: 10 min (and a second, as
        # the workspace rounds expiry times up).
        assert next_due == pytest.approx(3 * HOUR - 10 * MINUTE, abs=2), "the schedule follows the pasted one"
        rig.assert_status_describes_the_file()
        assert rig.recorded().expires_at == rig.start + 3 * HOUR

    rig.workspace.ttl_seconds = int(4 * HOUR)  # a fresh credential outlives the pasted one by now
    rig.at(170 * MINUTE + 1)
    assert rig.minted == 2
    assert rig.on_file() == rig.workspace.issued[-1].token
    rig.assert_status_describes_the_file()


def test_a_credential_kept_instead_of_ours_is_recorded_and_not_minted_for_again(rig: Rig) -> None:
    """The first cycle mints, finds the longer-lived credential on the line and keeps it: from then on the cycles
    follow that one, instead of minting and throwing away a credential every time."""
    rig.pgpass.write_bytes(b"# mine\nother:5432:*:me:pw\n")
    theirs = someone_elses(rig, lives=3 * HOUR)
    rig.paste(theirs)
    assert rig.at(0) == pytest.approx(3 * HOUR - 10 * MINUTE, abs=2)
    assert rig.minted == 1
    assert rig.on_file() == theirs
    rig.assert_status_describes_the_file()
    assert rig.recorded().last_success is None, "nothing of ours was written"

    for minutes in (1, 30, 60, 120, 169):
        rig.at(minutes * MINUTE)
    assert rig.minted == 1

    rig.workspace.ttl_seconds = int(4 * HOUR)
    rig.at(171 * MINUTE)
    assert rig.minted == 2
    assert rig.on_file() == rig.workspace.issued[-1].token
    assert rig.pgpass.read_bytes().startswith(b"# mine\nother:5432:*:me:pw\n")
    rig.assert_status_describes_the_file()


def test_a_shorter_lived_credential_on_our_line_is_replaced_at_once(rig: Rig) -> None:
    rig.at(0)
    rig.paste(someone_elses(rig, lives=30 * MINUTE))
    rig.at(MINUTE)
    assert rig.minted == 2
    assert rig.on_file() == rig.workspace.issued[-1].token
    rig.assert_status_describes_the_file()


def test_our_own_credential_is_refreshed_on_schedule_whatever_its_jwt_says(rig: Rig) -> None:
    """Our own line counts with the expiry the API gave, not its JWT: at the due time it is refreshed."""
    rig.at(0)
    rig.at(50 * MINUTE)
    assert rig.minted == 2
    rig.assert_status_describes_the_file()


# ---- a credential whose JWT claims a far longer life than the API gave it (issue 19) -----------------------------

YEAR_2100 = 4102444800


def test_our_own_credential_counts_with_the_api_expiry_whatever_its_jwt_claims(rig: Rig) -> None:
    """One answer gives `expiration_time` an hour ahead and a JWT `exp` in 2100: at its due time it is replaced,
    and every later credential is written too."""
    rig.workspace.claims_next(1, exp=YEAR_2100)
    rig.at(0)
    first = rig.workspace.issued[0].token
    assert rig.on_file() == first
    assert rig.recorded().expires_at == pytest.approx(rig.start + HOUR, abs=2), "the API's expiry, not the JWT's"
    for cycle, minutes in enumerate((50, 100, 150), start=2):
        rig.workspace.ttl_seconds = int(minutes * MINUTE + HOUR)  # an hour from the cycle's (jumped) clock
        rig.at(minutes * MINUTE)
        assert rig.minted == cycle
        assert rig.on_file() == rig.workspace.issued[-1].token, f"cycle {cycle} kept an older credential"
        rig.assert_status_describes_the_file()


def test_a_far_future_jwt_on_our_line_never_outlives_ours_when_status_is_lost(rig: Rig) -> None:
    """status.json lost (deleted, or set aside as malformed): the credential on our line is judged by its JWT, and a
    JWT `exp` beyond any sane lifetime is no expiry, so ours replaces it."""
    rig.workspace.claims_next(1, exp=YEAR_2100)
    rig.at(0)
    rig.state.path.unlink()
    rig.at(MINUTE)
    assert rig.minted == 2
    assert rig.on_file() == rig.workspace.issued[-1].token
    rig.assert_status_describes_the_file()
    assert (rig.recorded().expires_at or 0) < rig.start + 2 * HOUR


def test_a_pasted_far_future_jwt_does_not_stop_rotation(rig: Rig) -> None:
    rig.at(0)
    rig.paste(someone_elses(rig, lives=YEAR_2100 - rig.start))
    rig.at(MINUTE)
    assert rig.minted == 2
    assert rig.on_file() == rig.workspace.issued[-1].token
    rig.assert_status_describes_the_file()


# ---- the decisions alone, without a cycle -------------------------------------------------------------------------

NOW = 1_767_225_600.0
KEY = ("h.example.com", "5432", "*", "someone@example.com")


def jwt_living(seconds: float, *, issued: float = NOW) -> str:
    start = datetime.fromtimestamp(issued, tz=timezone.utc)
    return mint_jwt(KEY[3], expires_at=start + timedelta(seconds=seconds), issuer="other", issued_at=start)


def ours_recorded(token: str, *, lives: float = HOUR) -> TargetState:
    """status.json after we wrote `token`, issued now and living `lives` seconds."""
    policy = RefreshPolicy()
    return TargetState(
        name="sales",
        keys=[list(KEY)],
        fingerprint=token_fingerprint(token),
        issued_at=NOW,
        expires_at=NOW + lives,
        due_at=policy.due_at(NOW, NOW + lives),
    )


def test_a_foreign_credential_outliving_ours_is_adopted_due_when_it_has_our_margin_left() -> None:
    known = ours_recorded("ours")
    theirs = jwt_living(3 * HOUR)
    found = outliving(known, {KEY: theirs}, now=NOW, policy=RefreshPolicy())
    assert found is not None
    assert found.fingerprint == token_fingerprint(theirs)
    assert found.expires_at == NOW + 3 * HOUR
    assert found.due_at == NOW + 3 * HOUR - 10 * MINUTE  # as little life left as ours has when ours is due


@pytest.mark.parametrize(
    ("on_file", "why"),
    [
        ({}, "the line is gone"),
        ({KEY: "ours"}, "it is our own credential"),
        ({KEY: None}, "nothing on the line"),
    ],
)
def test_nothing_is_adopted_without_a_foreign_credential(on_file: dict, why: str) -> None:
    assert outliving(ours_recorded("ours"), on_file, now=NOW, policy=RefreshPolicy()) is None, why


def test_a_foreign_credential_dying_before_ours_or_a_failing_target_adopts_nothing() -> None:
    shorter = jwt_living(30 * MINUTE)
    assert outliving(ours_recorded("ours"), {KEY: shorter}, now=NOW, policy=RefreshPolicy()) is None
    failing = ours_recorded("ours")
    failing.failures = 1
    assert outliving(failing, {KEY: jwt_living(3 * HOUR)}, now=NOW, policy=RefreshPolicy()) is None


def test_an_adopted_credential_already_due_is_not_adopted() -> None:
    theirs = jwt_living(HOUR + 5 * MINUTE)  # outlives ours, but has less than our margin left by the time it is asked
    later = NOW + 56 * MINUTE
    assert outliving(ours_recorded("ours"), {KEY: theirs}, now=later, policy=RefreshPolicy()) is None


def test_the_record_of_a_kept_credential_takes_its_issue_time_from_its_jwt_unless_it_is_in_the_future() -> None:
    issued_earlier = jwt_living(2 * HOUR, issued=NOW - HOUR)
    record = on_file_record(NOW + HOUR, issued_earlier, lifetime=None, now=NOW, policy=RefreshPolicy())
    assert record.issued_at == NOW - HOUR
    from_the_future = jwt_living(2 * HOUR, issued=NOW + HOUR)
    assert on_file_record(NOW + HOUR, from_the_future, lifetime=None, now=NOW, policy=RefreshPolicy()).issued_at == NOW


def test_with_credential_changes_only_what_describes_the_credential() -> None:
    state = ours_recorded("ours")
    state.last_error = "earlier"
    found = OnFile("f" * 16, NOW + 3 * HOUR, NOW, NOW + 2 * HOUR)
    changed = with_credential(state, found)
    assert (changed.fingerprint, changed.expires_at, changed.due_at) == ("f" * 16, NOW + 3 * HOUR, NOW + 2 * HOUR)
    assert changed.last_error == "earlier"
    assert state.fingerprint == token_fingerprint("ours")  # the original is left as it was


def file_with(token: str) -> bytes:
    return pgpass.merge(b"", [pgpass.PgpassEntry(*KEY, password=token)])


def test_not_older_keeps_only_lines_that_outlive_what_we_would_write() -> None:
    entry = pgpass.PgpassEntry(*KEY, password="new")
    longer, shorter = jwt_living(3 * HOUR), jwt_living(30 * MINUTE)
    planned = [Planned(entry, NOW + HOUR, None)]
    assert not_older(file_with(longer), planned) == {KEY: longer}
    assert not_older(file_with(shorter), planned) == {}
    assert not_older(b"", planned) == {}


def test_a_credential_we_recorded_counts_with_the_expiry_the_api_gave_not_its_jwt() -> None:
    ours = jwt_living(10 * HOUR)  # its JWT claims ten hours; the API said one
    known = ours_recorded(ours)
    assert expiry_on_file(ours, known, NOW + HOUR) == NOW + HOUR
    assert expiry_on_file("not-a-jwt", known, NOW + HOUR) == 0.0
