"""The `.pgpass` format: the entry type, the field escape, and one line's fields as libpq splits them; no I/O.

A line is `host:port:database:user:password`; `\\` makes the next byte literal in every field; a field matches
anything only when it is exactly `*` (an escaped `\\*` is a literal star); `#` starts a comment only in column 1.
How libpq reads the lines of a file is `pgpass_read`; where ours go in a file is `pgpass_merge`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from databricks.labs.oauth_rotator.errors import PgpassFormatError
from databricks.labs.oauth_rotator.pgpass_fields import escape_fields

ANY = "*"
"""A key field that matches any value; `PgpassEntry(..., database=ANY, ...)` covers every database."""

Key = tuple[str, str, str, str]
"""(host, port, database, user), de-escaped; `*` means any value."""

_KEY = re.compile(rb"((?:\\.|[^\\:])*):" * 4, re.DOTALL)
_PASSWORD = re.compile(rb"(?:\\.|[^\\:])*\\?", re.DOTALL)
ESCAPED = re.compile(rb"\\(.)", re.DOTALL)
"""A backslash and the byte it makes literal."""
_FIELD_NAMES = ("host", "port", "database", "user", "password")


@dataclass(frozen=True)
class PgpassEntry:
    """One `.pgpass` line: the key libpq matches, and the password it then sends.

    A key field equal to `*` (ANY) is written as libpq's wildcard; there is no way to ask for a literal star.
    """

    host: str
    port: str
    database: str
    user: str
    password: str = field(repr=False)

    @property
    def key(self) -> Key:
        return (self.host, self.port, self.database, self.user)


@dataclass(frozen=True)
class PgpassLine:
    """One physical line of a file, as found: its bytes (ending included) and what libpq sees in it."""

    number: int
    """1-based line number."""
    raw: bytes = field(repr=False)
    entry: PgpassEntry | None = None
    """The de-escaped fields when the line is one libpq can match; None for comments, blank,
    malformed (fewer than four separators) and damaged (NUL) lines."""
    wildcards: tuple[bool, bool, bool, bool] = (False, False, False, False)
    """Which key fields are a bare `*` (as opposed to an escaped, literal `\\*`)."""


def format_entry(entry: PgpassEntry) -> bytes:
    """The escaped line, without a line ending. Raises PgpassFormatError for values libpq cannot read."""
    values = (entry.host, entry.port, entry.database, entry.user, entry.password)
    for name, value in zip(_FIELD_NAMES, values, strict=True):
        _check_value(name, value)
    if entry.host.startswith("\ufeff"):
        raise PgpassFormatError("the host starts with U+FEFF, which readers take for a byte-order mark")
    return b":".join(escape_fields(values))


def parse(data: bytes) -> list[PgpassLine]:
    """Every physical line (split on LF only, as fgets does), with its fields when it is an entry."""
    return [_parse_line(number, raw) for number, raw in enumerate(physical_lines(data), start=1)]


def _check_value(name: str, value: str) -> None:
    if "\n" in value or "\r" in value or "\0" in value:
        raise PgpassFormatError(f"the {name} contains a newline, carriage return or NUL, which .pgpass cannot hold")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise PgpassFormatError(f"the {name} is not valid Unicode (lone surrogate)") from err


def encode(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def decode(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def physical_lines(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def split_key(raw: bytes) -> tuple[Key, tuple[bool, bool, bool, bool], int] | None:
    """The de-escaped key fields of an entry line (split on unescaped colons), their wildcard flags, and
    where the password starts; None for comments, damaged and malformed lines."""
    if raw.startswith(b"#") or b"\0" in raw:
        return None
    if b"\\" not in raw:  # most lines: the regex's byte-by-byte alternation is ten times slower than a split
        parts = raw.split(b":", 4)
        if len(parts) < 5:
            return None
        fields = parts[0], parts[1], parts[2], parts[3]
        start = len(fields[0]) + len(fields[1]) + len(fields[2]) + len(fields[3]) + 4
    else:
        match = _KEY.match(raw)
        if match is None:
            return None
        fields = match.group(1), match.group(2), match.group(3), match.group(4)
        start = match.end()
    host, port, database, user = (decode(ESCAPED.sub(rb"\1", v) if b"\\" in v else v) for v in fields)
    flags = fields[0] == b"*", fields[1] == b"*", fields[2] == b"*", fields[3] == b"*"
    return (host, port, database, user), flags, start


def _parse_line(number: int, raw: bytes) -> PgpassLine:
    split = split_key(raw.rstrip(b"\r\n"))
    if split is None:
        return PgpassLine(number, raw)
    key, wildcards, pos = split
    password = decode(password_at(raw.rstrip(b"\r\n"), pos))
    return PgpassLine(number, raw, PgpassEntry(*key, password=password), wildcards)


def owner_key(raw: bytes) -> Key | None:
    """The key a line holds when it is one we could have written: bare `*` exactly where the value is `*`."""
    split = split_key(raw.rstrip(b"\r\n"))
    if split is None or split[1] != tuple(value == ANY for value in split[0]):
        return None
    return split[0]


def password_at(text: bytes, pos: int) -> bytes:
    """libpq's password de-escaping: up to an unescaped colon; a trailing lone backslash stays."""
    if text.find(b"\\", pos) < 0:  # the common case, without the regex's byte-by-byte alternation
        end = text.find(b":", pos)
        return text[pos:] if end < 0 else text[pos:end]
    match = _PASSWORD.match(text, pos)  # always matches: the pattern accepts the empty string
    return ESCAPED.sub(rb"\1", match.group(0)) if match else b""
