"""What is due: never rotated, its time has come, its lines were lost; adopted when a longer-lived one is there."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from databricks.labs.oauth_rotator.config import TargetConfig
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint
from databricks.labs.oauth_rotator.rotation.due import is_due, plan
from databricks.labs.oauth_rotator.rotation.schedule import RefreshPolicy
from databricks.labs.oauth_rotator.rotation.state import Status, TargetState
from tests.rigs.tokens import mint_jwt

NOW = 1_767_225_600.0
HOST = "sales.database.example.com"
KEY = (HOST, "5432", "*", "someone@example.com")
TOKEN = "ours-token"


def recorded(label: str = HOST, *, due_in: float = 1800.0, token: str = TOKEN) -> TargetState:
    return TargetState(
        name=label,
        keys=[list(KEY)],
        fingerprint=token_fingerprint(token),
        issued_at=NOW - 600,
        expires_at=NOW + 3000,
        due_at=NOW + due_in,
    )


def file_with(token: str) -> bytes:
    return pgpass.merge(b"# mine\n", [pgpass.PgpassEntry(*KEY, password=token)])


def test_a_target_never_rotated_is_due() -> None:
    assert is_due(None, b"", {}, NOW)
    assert is_due(TargetState(name="x"), b"", {}, NOW)


def test_a_target_is_due_when_its_time_has_come_and_not_before() -> None:
    current = file_with(TOKEN)
    assert not is_due(recorded(due_in=1), current, {KEY: TOKEN}, NOW)
    assert is_due(recorded(due_in=0), current, {KEY: TOKEN}, NOW)


def test_a_failing_target_is_due_at_its_retry_time() -> None:
    known = recorded(due_in=1800)
    known.failures, known.next_attempt = 2, NOW + 30
    assert not is_due(known, file_with(TOKEN), {KEY: TOKEN}, NOW)
    assert is_due(known, file_with(TOKEN), {KEY: TOKEN}, NOW + 30)


def test_a_lost_or_edited_line_makes_a_target_due_at_once() -> None:
    assert is_due(recorded(), b"", {KEY: None}, NOW)
    assert is_due(recorded(), file_with("edited"), {KEY: "edited"}, NOW)


def test_plan_sorts_due_adopted_and_untouched_targets() -> None:
    start = datetime.fromtimestamp(NOW, tz=timezone.utc)
    longer = mint_jwt(KEY[3], expires_at=start + timedelta(hours=3), issuer="other", issued_at=start)
    fresh, lost, outlived = (
        TargetConfig(host=HOST),
        TargetConfig(name="lost", host="x"),
        TargetConfig(name="o", host="y"),
    )
    status = Status(targets={HOST: recorded(), "lost": recorded("lost", token="gone"), "o": recorded("o", due_in=0)})
    status.targets["o"].fingerprint = token_fingerprint("older")
    chosen = plan([fresh, lost, outlived], status, file_with(longer), now=NOW, policy=RefreshPolicy())
    assert [t.label for t in chosen.due] == []
    # "o" is due, but its line holds a credential outliving ours: none is minted; the others' lines are not lost
    assert list(chosen.adopted) == ["o"]
    chosen = plan([fresh, lost, outlived], status, file_with(TOKEN), now=NOW, policy=RefreshPolicy())
    assert [t.label for t in chosen.due] == ["lost", "o"]
    assert chosen.adopted == {}


def test_force_makes_every_target_due_and_only_limits_them() -> None:
    status = Status(targets={HOST: recorded()})
    targets = [TargetConfig(host=HOST), TargetConfig(name="other", host="o")]
    forced = plan(targets, status, file_with(TOKEN), now=NOW, policy=RefreshPolicy(), force=True)
    assert [t.label for t in forced.due] == [HOST, "other"]
    limited = plan(targets, status, file_with(TOKEN), now=NOW, policy=RefreshPolicy(), force=True, only={"other"})
    assert [t.label for t in limited.due] == ["other"]
