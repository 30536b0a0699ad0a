"""The public face of the `.pgpass` modules, as a whole: what merge writes, libpq reads back, byte for byte."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.files.pgpass import (
    ANY,
    PgpassEntry,
    format_entry,
    lookup,
    merge,
    parse,
    shadowed,
)

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
