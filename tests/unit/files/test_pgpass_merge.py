"""Placing our lines in a `.pgpass` file: replaced where they are, before what would shadow them, never glued."""

import time

import pytest

from databricks.labs.oauth_rotator.errors import PgpassFormatError
from databricks.labs.oauth_rotator.files.pgpass_format import ANY, PgpassEntry
from databricks.labs.oauth_rotator.files.pgpass_merge import Shadowing, merge, shadowed
from databricks.labs.oauth_rotator.files.pgpass_read import lookup

OURS = PgpassEntry("h.cloud.databricks.com", "5432", ANY, "me@example.com", "tok-new")
LINE = b"h.cloud.databricks.com:5432:*:me@example.com:tok-new"
BOM = b"\xef\xbb\xbf"


# ---- merge ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b"", LINE + b"\n"),
        (b"# mine\n", b"# mine\n" + LINE + b"\n"),
        (b"# mine", b"# mine\n" + LINE + b"\n"),
        (b"# mine\r\nother:1:2:3:4", b"# mine\r\nother:1:2:3:4\r\n" + LINE + b"\r\n"),
        (b"\n\n", b"\n\n" + LINE + b"\n"),
        # ours, in place, whatever its old password; later duplicates dropped
        (b"a:1:2:3:4\n" + LINE[:-3] + b"old\nz:1:2:3:4\n", b"a:1:2:3:4\n" + LINE + b"\nz:1:2:3:4\n"),
        (b"x:1:2:3:4\r\n" + LINE[:-3] + b"old\r\n", b"x:1:2:3:4\r\n" + LINE + b"\r\n"),
        (LINE[:-3] + b"one\nmid:1:2:3:4\n" + LINE[:-3] + b"two\n", LINE + b"\nmid:1:2:3:4\n"),
        (LINE[:-3] + b"old", LINE + b"\n"),
        # escaped differently, same de-escaped key: still ours
        (b"h.cloud.databricks.co\\m:5432:*:me@example.com:old\n", LINE + b"\n"),
        # another user, another database, a literal star: not ours
        (
            b"h.cloud.databricks.com:5432:*:you@example.com:x\n",
            b"h.cloud.databricks.com:5432:*:you@example.com:x\n" + LINE + b"\n",
        ),
        (
            b"h.cloud.databricks.com:5432:\\*:me@example.com:x\n",
            LINE + b"\nh.cloud.databricks.com:5432:\\*:me@example.com:x\n",
        ),
    ],
)
def test_merge_places_and_replaces(before: bytes, after: bytes) -> None:
    assert merge(before, [OURS]) == after
    assert merge(after, [OURS]) == after


@pytest.mark.parametrize(
    "shadow",
    [
        b"*:*:*:*:wrong",
        b"h.cloud.databricks.com:*:*:me@example.com:old",
        b"h.cloud.databricks.com:5432:*:*:old",
        b"h.cloud.databricks.com:5432:databricks_postgres:me@example.com:old",  # the original tool's line
        b"h.cloud.databricks.com:5432:a:b:me@example.com:db-named-a:b",  # greedy match: database `a:b`
    ],
)
def test_merge_goes_before_shadowing_lines(shadow: bytes) -> None:
    before = b"# top\nother:5432:*:me@example.com:x\n" + shadow + b"\nz:1:2:3:4\n"
    after = b"# top\nother:5432:*:me@example.com:x\n" + LINE + b"\n" + shadow + b"\nz:1:2:3:4\n"
    assert shadowed(before + LINE + b"\n", [OURS]) == [Shadowing(OURS.key, 3)]
    assert merge(before, [OURS]) == after
    assert merge(before + LINE + b"\n", [OURS]) == after
    assert merge(after, [OURS]) == after
    assert not shadowed(after, [OURS])
    assert lookup(after, OURS.host, "5432", "databricks_postgres", OURS.user) == "tok-new"


def test_merge_does_not_move_above_unrelated_lines() -> None:
    data = b"h.cloud.databricks.com:5433:*:me@example.com:x\nh.cloud.databricks.com:5432:*:other:y\n"
    assert merge(data, [OURS]) == data + LINE + b"\n"


def test_merge_never_becomes_the_bom_line() -> None:
    assert merge(BOM + b"\n", [OURS]) == BOM + b"\n" + LINE + b"\n"
    assert merge(BOM + b"# c", [OURS]) == BOM + b"# c\n" + LINE + b"\n"
    wildcard_host = PgpassEntry("*", "5432", "*", "u", "p")
    data = BOM + b"x:5432:*:u:old\nz:1:2:3:4\n"
    assert merge(data, [wildcard_host]) == BOM + b"x:5432:*:u:old\n*:5432:*:u:p\nz:1:2:3:4\n"


def test_merge_keeps_clear_of_damaged_lines() -> None:
    damaged = b"h.cloud:5432\0garbage\n"
    assert merge(damaged, [OURS]) == LINE + b"\n" + damaged
    assert merge(b"a:1:2:3:4\n" + damaged + LINE + b"\n", [OURS]) == b"a:1:2:3:4\n" + LINE + b"\n" + damaged
    two = b"x\0\ny\0\n"
    assert merge(b"ok\n" + two, [OURS]) == b"ok\n" + LINE + b"\n" + two
    assert merge(b"nul-unterminated\0tail", [OURS]) == LINE + b"\nnul-unterminated\0tail"


def test_merge_when_every_line_after_the_bom_is_glued() -> None:
    data = BOM + b"x\0\ny\0\n"
    merged = merge(data, [OURS])
    assert merged == data + b"\n" + LINE + b"\n"
    assert lookup(merged, OURS.host, "5432", "db", OURS.user) == "tok-new"
    assert merge(merged, [OURS]) == merged


def test_merge_remove_takes_out_only_our_lines() -> None:
    data = b"# c\n" + LINE + b"\nkeep:1:2:3:4\n" + LINE + b"\n"
    assert merge(data, [], remove=[OURS.key]) == b"# c\nkeep:1:2:3:4\n"
    assert merge(b"# c\n", [], remove=[OURS.key]) == b"# c\n"


def test_merge_several_entries_keeps_their_order() -> None:
    second = PgpassEntry("h2", "5432", ANY, "me@example.com", "t2")
    merged = merge(b"# c\n", [OURS, second])
    assert merged == b"# c\n" + LINE + b"\nh2:5432:*:me@example.com:t2\n"
    assert merge(merged, [second, OURS]) == merged


def test_merge_overlapping_entries_of_ours_do_not_fight() -> None:
    specific = PgpassEntry(OURS.host, "5432", "analytics", OURS.user, "t2")
    merged = merge(b"", [OURS, specific])
    assert merge(merged, [OURS, specific]) == merged
    assert merge(merged, [specific, OURS]) == merged


def test_merge_validates_every_entry_first() -> None:
    with pytest.raises(PgpassFormatError):
        merge(b"", [OURS, PgpassEntry("h", "5432", "*", "u", "bad\n")])


def test_merge_last_entry_for_a_key_wins() -> None:
    newer = PgpassEntry(*OURS.key, password="tok-newer")
    assert lookup(merge(b"", [OURS, newer]), OURS.host, "5432", "db", OURS.user) == "tok-newer"


def test_merge_ten_thousand_lines_is_fast() -> None:
    data = b"".join(b"host%d:5432:db:user%d:password-%d\n" % (i, i, i) for i in range(10_000))
    started = time.perf_counter()
    merged = merge(data, [OURS])
    elapsed = time.perf_counter() - started
    print(f"merge of a 10,000-line file: {elapsed * 1000:.0f} ms")
    assert merged == data + LINE + b"\n"
    assert elapsed < 1.0


def test_shadowed_reports_glued_lines_and_ignores_absent_entries() -> None:
    data = b"# c\njunk\0\n" + LINE + b"\n"
    assert shadowed(data, [OURS]) == [Shadowing(OURS.key, 2, glued=True)]
    assert "line 2" in Shadowing(OURS.key, 2, glued=True).describe()
    assert not shadowed(b"*:*:*:*:x\n", [OURS])
