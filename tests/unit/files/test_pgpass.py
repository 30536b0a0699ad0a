import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.errors import PgpassFormatError
from databricks.labs.oauth_rotator.files.pgpass import (
    ANY,
    PgpassEntry,
    Shadowing,
    format_entry,
    lookup,
    merge,
    parse,
    shadowed,
)

OURS = PgpassEntry("h.cloud.databricks.com", "5432", ANY, "me@example.com", "tok-new")
LINE = b"h.cloud.databricks.com:5432:*:me@example.com:tok-new"
BOM = b"\xef\xbb\xbf"


def owns(raw: bytes, key: tuple[str, str, str, str]) -> bool:
    """Whether merge() treats this physical line as ours for `key` (test-side restatement of the rule)."""
    (line,) = parse(raw)
    if line.entry is None:
        return False
    return line.entry.key == key and line.wildcards == tuple(value == ANY for value in key)


def parse_raw(data: bytes) -> list[bytes]:
    return [line.raw for line in parse(data)]


def foreign_lines(data: bytes, key: tuple[str, str, str, str]) -> list[bytes]:
    return [line.raw for line in parse(data) if not owns(line.raw, key)]


def assert_foreign_lines_kept(before: bytes, after: bytes, key: tuple[str, str, str, str]) -> None:
    """Byte for byte and in order; only an unterminated last line may gain its line ending."""
    kept, now = foreign_lines(before, key), foreign_lines(after, key)
    if now and now[-1] in {b"\n", b"\r\n"} and len(now) == len(kept) + 1:
        now = now[:-1]  # the separator merge adds when every line after a BOM is glued together
    assert len(now) == len(kept)
    assert now[:-1] == kept[:-1]
    assert not kept or now[-1] in {kept[-1], kept[-1] + b"\n", kept[-1] + b"\r\n"}


# ---- format_entry ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (PgpassEntry("h", "5432", "*", "u", "pw"), b"h:5432:*:u:pw"),
        (PgpassEntry("h", "5432", "db", "u", "a:b"), b"h:5432:db:u:a\\:b"),
        (PgpassEntry("h", "5432", "db", "u", "a\\b"), b"h:5432:db:u:a\\\\b"),
        (PgpassEntry("h", "5432", "db", "u", "trailing\\"), b"h:5432:db:u:trailing\\\\"),
        (PgpassEntry("h", "5432", "db", "u", "\\:"), b"h:5432:db:u:\\\\\\:"),
        (PgpassEntry("::1", "5432", "d:b", "u\\x", "p"), b"\\:\\:1:5432:d\\:b:u\\\\x:p"),
        (PgpassEntry("/var/run/postgresql", "5432", "*", "u", "p"), b"/var/run/postgresql:5432:*:u:p"),
        (PgpassEntry("#host", "5432", "*", "u", "#p"), b"\\#host:5432:*:u:#p"),
        (PgpassEntry("h", "5432", "*", "u", " sp ace "), b"h:5432:*:u: sp ace "),
        (PgpassEntry("h", "5432", "*", "u", "é😀中"), "h:5432:*:u:é😀中".encode()),
        (PgpassEntry("h", "5432", "*", "u", ""), b"h:5432:*:u:"),
    ],
)
def test_format_entry(entry: PgpassEntry, expected: bytes) -> None:
    assert format_entry(entry) == expected
    (line,) = parse(expected + b"\n")
    assert line.entry == entry


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b", "\n", "tail\r", "\ud800"])
@pytest.mark.parametrize("field", ["host", "port", "database", "user", "password"])
def test_format_entry_rejects_unrepresentable(field: str, bad: str) -> None:
    values = {"host": "h", "port": "5432", "database": "*", "user": "u", "password": "secret-token"}
    values[field] = "secret-token" + bad if field == "password" else bad
    with pytest.raises(PgpassFormatError, match=field) as caught:
        format_entry(PgpassEntry(**values))
    assert "secret-token" not in str(caught.value)


def test_format_entry_rejects_a_host_that_looks_like_a_bom() -> None:
    with pytest.raises(PgpassFormatError, match="byte-order mark"):
        format_entry(PgpassEntry("\ufeffh", "5432", "*", "u", "p"))


def test_password_never_in_repr() -> None:
    assert "tok-new" not in repr(OURS)
    assert "tok-new" not in repr(parse(LINE + b"\n"))
    assert "tok-new" not in repr(Shadowing(OURS.key, 3))


# ---- parse -------------------------------------------------------------------------------------------------------


def test_parse_keeps_every_byte() -> None:
    data = BOM + b"# c\r\n#real:1:2:3:4\n\n \t# x\r\r\nh:p:d:u:pw\nbad\0line\nlast-without-newline"
    lines = parse(data)
    assert b"".join(line.raw for line in lines) == data
    assert [line.number for line in lines] == [1, 2, 3, 4, 5, 6, 7]
    assert [line.entry is not None for line in lines] == [False, False, False, False, True, False, False]
    assert lines[4].entry == PgpassEntry("h", "p", "d", "u", "pw")
    assert lines[5].raw == b"bad\0line\n"


@pytest.mark.parametrize(
    ("raw", "key", "password", "wildcards"),
    [
        (b"h:p:d:u:pw\r\r\n", ("h", "p", "d", "u"), "pw", (False, False, False, False)),
        (b"*:*:*:*:pw", ("*", "*", "*", "*"), "pw", (True, True, True, True)),
        (b"\\*:p:\\*:u:pw", ("*", "p", "*", "u"), "pw", (False, False, False, False)),
        (b"*h:p:d*:u:pw", ("*h", "p", "d*", "u"), "pw", (False, False, False, False)),
        (b"h:p:d:u:pw:extra", ("h", "p", "d", "u"), "pw", (False, False, False, False)),
        (b"h:p:d:u:pw\\", ("h", "p", "d", "u"), "pw\\", (False, False, False, False)),
        (b"h:p:d:u:p\\w\\:x", ("h", "p", "d", "u"), "pw:x", (False, False, False, False)),
        (b"h:p:d:u:", ("h", "p", "d", "u"), "", (False, False, False, False)),
        (b" h:p:d:u:pw ", (" h", "p", "d", "u"), "pw ", (False, False, False, False)),
        (BOM + b"h:p:d:u:pw", ("\ufeffh", "p", "d", "u"), "pw", (False, False, False, False)),
        (b"h\xff:p:d:u:pw", ("h\udcff", "p", "d", "u"), "pw", (False, False, False, False)),
    ],
)
def test_parse_entry_fields(raw: bytes, key: tuple[str, ...], password: str, wildcards: tuple[bool, ...]) -> None:
    (line,) = parse(raw)
    assert line.entry is not None
    assert line.entry.key == key
    assert line.entry.password == password
    assert line.wildcards == wildcards


@pytest.mark.parametrize(
    "raw", [b"# h:p:d:u:pw", b"h:p:d:u", b"h:p:d:u\\:pw", b"h:p:d\\", b"", b"\r\n", b"h\0:p:d:u:pw"]
)
def test_parse_non_entries(raw: bytes) -> None:
    assert all(line.entry is None for line in parse(raw))


# ---- lookup: libpq's first match -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "connection", "expected"),
    [
        (b"h:5432:db:u:first\nh:5432:db:u:second\n", ("h", "5432", "db", "u"), "first"),
        (b"*:*:*:*:any\n", ("h", "5432", "db", "u"), "any"),
        (b"127.0.0.*:*:*:*:glob\n", ("127.0.0.1", "5432", "db", "u"), None),
        (b"\\*:*:*:*:lit\n", ("h", "5432", "db", "u"), None),
        (b"\\*:*:*:*:lit\n", ("*", "5432", "db", "u"), "lit"),
        (b"H:5432:db:u:x\n", ("h", "5432", "db", "u"), None),
        (b"h:054329:db:u:x\n", ("h", "54329", "db", "u"), None),
        (b"127\\.0.0.1:*:*:*:esc\n", ("127.0.0.1", "5432", "db", "u"), "esc"),
        (b"::1:5432:db:u:greedy\n", ("::1", "5432", "db", "u"), "greedy"),
        (b"\\:\\:1:5432:db:u:escaped\n", ("::1", "5432", "db", "u"), "escaped"),
        (b"h:5432:a:b:u:pw\n", ("h", "5432", "a:b", "u"), "pw"),
        (b" # h:5432:db:u:x\n", ("h", "5432", "db", "u"), None),
        (b"#h:5432:db:u:x\nh:5432:db:u:y\n", ("h", "5432", "db", "u"), "y"),
        (b"h:5432:db:u:crlf\r\r\n", ("h", "5432", "db", "u"), "crlf"),
        (b"h:5432:db:u:no-final-newline", ("h", "5432", "db", "u"), "no-final-newline"),
        (b"h:5432:db:u:trailing space \n", ("h", "5432", "db", "u"), "trailing space "),
        (b"h:5432:db:u:pw:extra\n", ("h", "5432", "db", "u"), "pw"),
        (b"h:5432:db:u:\n", ("h", "5432", "db", "u"), ""),
        (b"h:5432:db:u\n", ("h", "5432", "db", "u"), None),
        (BOM + b"h:5432:db:u:bom\n", ("h", "5432", "db", "u"), None),
        (b"localhost:5432:db:u:dflt\n", ("", "", "db", "u"), "dflt"),
        (b"*:*:*:*:x\n", ("h", "5432", "", "u"), None),
        # a NUL drops the rest of its line and glues the next physical line onto it
        (b"junk\0tail\nh:5432:db:u:lost\n", ("h", "5432", "db", "u"), None),
        (b"h:5432:\0junk\ndb:u:glued\n", ("h", "5432", "db", "u"), "glued"),
        (b"\0junk\nh:5432:db:u:kept\n", ("h", "5432", "db", "u"), "kept"),
        (b"# comment\0\nh:5432:db:u:swallowed\n", ("h", "5432", "db", "u"), None),
        (b"h:5432:db:u:pw\0tail", ("h", "5432", "db", "u"), "pw"),
        (b"h:5432:db:u:pw\0tail\n", ("h", "5432", "db", "u"), None),
        # a NUL in the first fgets() chunk of a long line does not reach the next line
        (b"x\0" + b"y" * 300 + b"\nh:5432:db:u:after-long\n", ("h", "5432", "db", "u"), "after-long"),
        # an unterminated last line that exactly fills fgets()'s first chunk is never processed
        (b"h:5432:db:u:" + b"p" * 243, ("h", "5432", "db", "u"), None),
        (b"h:5432:db:u:" + b"p" * 242, ("h", "5432", "db", "u"), "p" * 242),
        (b"h:5432:db:u:" + b"p" * 4000 + b"\n", ("h", "5432", "db", "u"), "p" * 4000),
    ],
)
def test_lookup_follows_libpq(data: bytes, connection: tuple[str, str, str, str], expected: str | None) -> None:
    assert lookup(data, *connection) == expected


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


# ---- properties ----------------------------------------------------------------------------------------------------

_VALUES = st.text(st.characters(codec="utf-8", exclude_characters="\n\r\0"), max_size=12)
_HOSTS = _VALUES.filter(lambda value: not value.startswith("\ufeff"))
_ENTRIES = st.builds(PgpassEntry, _HOSTS, _VALUES, _VALUES, _VALUES, _VALUES)
_CONCRETE = st.builds(
    PgpassEntry,
    st.sampled_from(["h", "::1", "h:1", "#h", "a\\b"]) | _HOSTS.filter(lambda v: v not in {ANY, ""}),
    st.sampled_from(["5432", "54:32"]),
    st.sampled_from(["db", "a:b", "d\\"]) | _VALUES.filter(lambda v: v not in {ANY, ""}),
    st.sampled_from(["u", "me@example.com"]) | _VALUES.filter(lambda v: v not in {ANY, ""}),
    _VALUES,
)


def _lines_for(entry: PgpassEntry) -> st.SearchStrategy[bytes]:
    host, port, database, user = (value.encode("utf-8") for value in entry.key)
    related = [
        b"*:*:*:*:wild",
        host + b":*:*:" + user + b":old",
        host + b":" + port + b":*:" + user + b":old",
        host + b":" + port + b":" + database + b":" + user + b":old",
        host + b":" + port + b":" + database + b"\0:" + user + b":nul",
        host + b":" + port + b":\0x",
        database + b":" + user + b":glued",
        format_entry(PgpassEntry(*entry.key, password="stale")),
        b"#" + format_entry(entry),
        b" # x",
        b"",
        b"\r",
        b"\0",
    ]
    long_lines = st.tuples(st.integers(0, 600), st.sampled_from(related)).map(lambda pair: b"y" * pair[0] + pair[1])
    return st.sampled_from(related) | st.binary(max_size=40) | _ENTRIES.map(format_entry) | long_lines


@st.composite
def _files(draw: st.DrawFn, entry: PgpassEntry) -> bytes:
    lines = draw(st.lists(_lines_for(entry), max_size=8))
    endings = st.sampled_from([b"\n", b"\r\n", b"\r\r\n"])
    data = b"".join(line + draw(endings) for line in lines)
    if draw(st.booleans()) and data:
        data = data.rstrip(b"\r\n")
    return (BOM if draw(st.booleans()) else b"") + data


@given(_ENTRIES)
def test_format_then_parse_round_trips(entry: PgpassEntry) -> None:
    (line,) = parse(format_entry(entry) + b"\n")
    assert line.entry == entry
    assert line.wildcards == tuple(value == ANY for value in entry.key)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_merge_properties(data: st.DataObject) -> None:
    entry = data.draw(_CONCRETE)
    before = data.draw(_files(entry))
    after = merge(before, [entry])
    assert_foreign_lines_kept(before, after, entry.key)
    assert [owns(line.raw, entry.key) for line in parse(after)].count(True) == 1
    assert lookup(after, *entry.key) == entry.password
    assert merge(after, [entry]) == after
    assert not shadowed(after, [entry])
    if before.startswith(BOM):
        assert after.startswith(BOM)


@settings(max_examples=300)
@given(st.binary(max_size=300), _CONCRETE)
def test_merge_of_arbitrary_bytes(before: bytes, entry: PgpassEntry) -> None:
    after = merge(before, [entry])
    assert_foreign_lines_kept(before, after, entry.key)
    assert lookup(after, *entry.key) == entry.password
    assert merge(after, [entry]) == after
    removed = merge(after, [], remove=[entry.key])
    assert foreign_lines(removed, entry.key) == foreign_lines(after, entry.key) == parse_raw(removed)


@settings(max_examples=200)
@given(st.data())
def test_merge_of_wildcard_entries_is_idempotent(data: st.DataObject) -> None:
    entry = data.draw(_ENTRIES)
    before = data.draw(_files(entry))
    after = merge(before, [entry])
    assert merge(after, [entry]) == after
    assert [owns(line.raw, entry.key) for line in parse(after)].count(True) == 1
