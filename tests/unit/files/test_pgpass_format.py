"""The `.pgpass` format: the field escape, the entry type, one line's fields."""

import pytest

from databricks.labs.oauth_rotator.errors import PgpassFormatError
from databricks.labs.oauth_rotator.files.pgpass_format import ANY, PgpassEntry, format_entry, parse
from databricks.labs.oauth_rotator.files.pgpass_merge import Shadowing

OURS = PgpassEntry("h.cloud.databricks.com", "5432", ANY, "me@example.com", "tok-new")
LINE = b"h.cloud.databricks.com:5432:*:me@example.com:tok-new"
BOM = b"\xef\xbb\xbf"


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
