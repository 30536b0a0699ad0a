"""libpq's reading of `.pgpass`: the password `lookup` finds is the one psql would send."""

import pytest

from databricks.labs.oauth_rotator.files.pgpass_read import lookup

BOM = b"\xef\xbb\xbf"


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
