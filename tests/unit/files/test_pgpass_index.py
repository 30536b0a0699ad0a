"""`.pgpass` for a fleet: `lookup_many` answers as `lookup` does for every key, and `merge`'s one-pass placement
writes the same bytes as placing each entry in turn in a fresh parse of the file (`_merge_one_by_one`, the path
NUL-damaged files still take). How their time grows is measured by bench/bench_pgpass.py."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.files import pgpass_format, pgpass_merge
from databricks.labs.oauth_rotator.files.pgpass import ANY, Key, PgpassEntry, format_entry, lookup, lookup_many, merge

BOM = b"\xef\xbb\xbf"
# Values that collide on purpose: colons inside values (greedy matching), stars, escapes, `#`, empty fields.
HOSTS = ["h", "h2", "::1", "h:1", ANY, "a\\b", "#h", "", "localhost", "x*"]
PORTS = ["5432", "54:32", ANY, "", "1"]
DATABASES = ["db", ANY, "a:b", "", "d\\", "postgres"]
USERS = ["u", "me@example.com", ANY, "", "u:v"]
KEYS = st.tuples(st.sampled_from(HOSTS), st.sampled_from(PORTS), st.sampled_from(DATABASES), st.sampled_from(USERS))
SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def raw_field(value: str) -> st.SearchStrategy[bytes]:
    """A value as some file could hold it: verbatim (colons unescaped), escaped as we write it, or escaped oddly."""
    data = value.encode()
    escaped = data.replace(b"\\", b"\\\\").replace(b":", b"\\:")
    return st.sampled_from([data, escaped, b"".join(b"\\" + bytes([c]) for c in data), b"*", b"\\*"])


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=30))
    if kind == 1:
        return b"#" + draw(st.binary(max_size=10).filter(lambda b: b"\n" not in b))
    if kind == 2:
        return format_entry(PgpassEntry(*draw(KEYS), password=draw(st.sampled_from(["p", "old", "a:b", "x\\"]))))
    count = draw(st.integers(3, 6))
    fields = [draw(raw_field(draw(st.sampled_from(pool)))) for pool in (HOSTS, PORTS, DATABASES, USERS, USERS)[:count]]
    line = b":".join(fields)
    if kind == 3:
        line = b"y" * draw(st.integers(200, 700)) + line  # long lines: libpq's buffer grows
    if kind == 4:
        line += b"\\"  # a lone trailing backslash
    return line


@st.composite
def files(draw: st.DrawFn, *, nul: bool = True) -> bytes:
    found = draw(st.lists(lines(), max_size=10))
    if not nul:
        found = [line.replace(b"\0", b"") for line in found]
    endings = st.sampled_from([b"\n", b"\r\n", b"\r\r\n", b"\0\n" if nul else b"\n"])
    data = b"".join(line + draw(endings) for line in found)
    tail = draw(st.sampled_from([b"", b"", b"\r", b"last:1:2:3:4", b"h:5432:*:u:old"]))
    data = (BOM if draw(st.booleans()) else b"") + data + tail
    return data.replace(b"\0", b"") if not nul else data


@SETTINGS
@given(files(), st.lists(KEYS, max_size=12))
def test_lookup_many_answers_as_lookup_does(data: bytes, keys: list[Key]) -> None:
    assert lookup_many(data, keys) == {key: lookup(data, *key) for key in keys}


def test_lookup_many_on_a_few_known_files() -> None:
    data = b"# c\n::1:5432:*:u:v6\nh:*:*:u:wild\nh:5432:db:u:first\n*:*:*:*:any\n"
    keys = [("::1", "5432", "x", "u"), ("h", "5432", "db", "u"), ("other", "1", "d", "z"), ("h", "1", "", "u")]
    assert lookup_many(data, keys) == {
        ("::1", "5432", "x", "u"): "v6",
        ("h", "5432", "db", "u"): "wild",
        ("other", "1", "d", "z"): "any",
        ("h", "1", "", "u"): None,  # no database: libpq does not read the file
    }
    assert lookup_many(b"localhost:5432:d:u:default\n", [("", "", "d", "u")]) == {("", "", "d", "u"): "default"}


def merge_one_by_one(data: bytes, entries: list[PgpassEntry], remove: list[Key]) -> bytes:
    """`merge` as it was: each entry placed in a fresh parse of the file so far."""
    rendered = [(entry.key, format_entry(entry)) for entry in entries]
    found = [raw for raw in pgpass_format.physical_lines(data) if pgpass_format.owner_key(raw) not in set(remove)]
    return pgpass_merge._merge_one_by_one(found, rendered, {key for key, _ in rendered})


ENTRIES = st.lists(
    st.builds(PgpassEntry, *map(st.sampled_from, (HOSTS, PORTS, DATABASES, USERS)), st.sampled_from(["n", "n:2"])),
    max_size=8,
    unique_by=lambda entry: entry.key,
)


@SETTINGS
@given(files(nul=False), ENTRIES, st.lists(KEYS, max_size=3))
def test_one_pass_merge_writes_what_placing_each_entry_in_turn_writes(
    data: bytes, entries: list[PgpassEntry], remove: list[Key]
) -> None:
    assert merge(data, entries, remove=remove) == merge_one_by_one(data, entries, remove)


@SETTINGS
@given(files(nul=False), ENTRIES)
def test_after_a_fleet_merge_libpq_uses_each_concrete_entry(data: bytes, entries: list[PgpassEntry]) -> None:
    merged = merge(data, entries)
    for entry in entries:
        if ANY not in entry.key and all(entry.key):  # libpq reads an empty host or port as its default
            # Ours goes before any foreign line that matches it; only a line of ours can come first.
            assert lookup(merged, *entry.key) in {e.password for e in entries}
    assert merge(merged, entries) == merged


def test_a_kept_line_ending_in_a_bare_cr_does_not_glue_ours_onto_the_next() -> None:
    ours = PgpassEntry("h", "5432", ANY, "u", "new")
    data = b"*:*:*:*:wild\nh:5432:*:u:old\r"
    assert merge(data, [ours]) == b"h:5432:*:u:new\n*:*:*:*:wild\n"
    assert lookup(merge(data, [ours]), "h", "5432", "db", "u") == "new"


def split_key_by_regex(raw: bytes) -> object:
    """`split_key` as it was, with the regex alone."""
    match = None if raw.startswith(b"#") or b"\0" in raw else pgpass_format._KEY.match(raw)
    if match is None:
        return None
    fields = match.groups()
    key = tuple(pgpass_format.decode(pgpass_format.ESCAPED.sub(rb"\1", value)) for value in fields)
    return key, tuple(value == b"*" for value in fields), match.end()


@SETTINGS
@given(lines() | st.binary(max_size=40))
def test_splitting_a_line_without_backslashes_agrees_with_the_regex(raw: bytes) -> None:
    assert pgpass_format.split_key(raw) == split_key_by_regex(raw)
    assert pgpass_format.split_key(raw.replace(b"\\", b"")) == split_key_by_regex(raw.replace(b"\\", b""))
