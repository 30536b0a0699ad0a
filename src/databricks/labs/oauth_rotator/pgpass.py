"""Reads and rewrites libpq's password file (`.pgpass`) exactly as libpq reads it; no I/O.

The rules are those of `passwordFromFile()` and `pwdfMatchesString()` in postgres/postgres
`src/interfaces/libpq/fe-connect.c` (libpq 10 and later):

* a line is `host:port:database:user:password`; `\\` makes the next byte literal in every field;
* a field matches anything only when it is exactly `*` (an escaped `\\*` is a literal star);
* an unescaped `:` ends a field only once the connection's value has been matched in full, so
  `::1:5432:...` matches the host `::1` (matching is greedy, not a split on colons);
* `#` starts a comment only in column 1; all trailing CR/LF are stripped; the first match wins;
* a NUL byte makes libpq drop the rest of that line and glue the next physical line onto it.

Line reading is emulated byte for byte (fgets into a growing PQExpBuffer), so `lookup` answers what
`psql` would use and `merge` never puts one of our lines where libpq would glue it onto another.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from databricks.labs.oauth_rotator.errors import PgpassFormatError

ANY = "*"
"""A key field that matches any value; `PgpassEntry(..., database=ANY, ...)` covers every database."""

Key = tuple[str, str, str, str]
"""(host, port, database, user), de-escaped; `*` means any value."""

_BOM = b"\xef\xbb\xbf"
_KEY = re.compile(rb"((?:\\.|[^\\:])*):" * 4, re.DOTALL)
_PASSWORD = re.compile(rb"(?:\\.|[^\\:])*\\?", re.DOTALL)
_ESCAPED = re.compile(rb"\\(.)", re.DOTALL)
_FIELD_NAMES = ("host", "port", "database", "user", "password")
_INITIAL_BUFFER = 256  # INITIAL_EXPBUFFER_SIZE in pqexpbuffer.h
_READ_AHEAD = 128  # passwordFromFile() calls enlargePQExpBuffer(&buf, 128) before every fgets()


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

    @property
    def is_comment(self) -> bool:
        return self.raw.startswith(b"#")

    @property
    def is_damaged(self) -> bool:
        """The line holds a NUL byte: libpq loses the rest of it and reads the next line as its tail."""
        return b"\0" in self.raw


@dataclass(frozen=True)
class Shadowing:
    """One of our lines that libpq would not use, for some connection, because of an earlier line."""

    key: Key
    line: int
    """1-based number of the earlier line libpq reads instead."""
    glued: bool = False
    """True when that earlier line is damaged (NUL) and libpq glues our line onto it."""

    def describe(self) -> str:
        what = "is damaged (NUL byte) and swallows ours" if self.glued else "matches first"
        return f"line {self.line} {what} for {':'.join(self.key)}"


def format_entry(entry: PgpassEntry) -> bytes:
    """The escaped line, without a line ending. Raises PgpassFormatError for values libpq cannot read."""
    values = (entry.host, entry.port, entry.database, entry.user, entry.password)
    for name, value in zip(_FIELD_NAMES, values, strict=True):
        _check_value(name, value)
    if entry.host.startswith("\ufeff"):
        raise PgpassFormatError("the host starts with U+FEFF, which readers take for a byte-order mark")
    fields = [value.encode("utf-8").replace(b"\\", b"\\\\").replace(b":", b"\\:") for value in values]
    if fields[0].startswith(b"#"):
        fields[0] = b"\\" + fields[0]  # a `#` in column 1 would make the line a comment
    return b":".join(fields)


def parse(data: bytes) -> list[PgpassLine]:
    """Every physical line (split on LF only, as fgets does), with its fields when it is an entry."""
    return [_parse_line(number, raw) for number, raw in enumerate(_physical_lines(data), start=1)]


def lookup(data: bytes, host: str, port: str, database: str, user: str) -> str | None:
    """The password libpq takes from this file for a connection, or None; `""` means "none supplied".

    Empty host and port default as in libpq (`localhost`, `5432`); an empty database or user means
    libpq does not consult the file at all.
    """
    if not database or not user:
        return None
    tokens = [_encode(host or "localhost"), _encode(port or "5432"), _encode(database), _encode(user)]
    for line in _logical_lines(data):
        if line.comment:
            continue
        pos: int | None = 0
        for token in tokens:
            pos = _match_field(line.text, pos, token) if pos is not None else None
        if pos is not None:
            return _password_at(line.text, pos).decode("utf-8", "surrogateescape")
    return None


def shadowed(data: bytes, entries: Sequence[PgpassEntry]) -> list[Shadowing]:
    """Which of our entries present in the file libpq would not use for some connection they cover."""
    lines = _physical_lines(data)
    managed = {entry.key for entry in entries}
    owners = [_owner_key(raw) for raw in lines]
    groups = _group_lines(lines)
    found = []
    for entry in entries:
        if entry.key not in owners:
            continue
        ours = owners.index(entry.key)
        for group in groups:
            if group.first > ours:
                break
            if group.first < ours <= group.last:
                found.append(Shadowing(entry.key, group.first + 1, glued=True))
                break
            if group.first < ours and _shadows(group, owners, managed, entry.key):
                found.append(Shadowing(entry.key, group.first + 1))
                break
    return found


def merge(data: bytes, entries: Sequence[PgpassEntry], *, remove: Iterable[Key] = ()) -> bytes:
    """The file with our entries written in and the `remove` keys taken out; foreign lines untouched.

    * Our line for a key (same de-escaped host, port, database and user) is replaced where it is.
      Later duplicates of that key are dropped; the first is the one libpq was using.
    * If an earlier foreign line would match some connection ours covers (`*:*:*:*:x`,
      `host:*:*:user:old`, ...), ours moves to just before the first such line; a new entry goes
      there too, else at the end (after terminating an unterminated last line with the file's own
      line ending).
    * Ours never becomes line 1 of a file starting with a byte-order mark, and never follows a line
      that libpq would glue it onto (a NUL byte): it then goes before that damaged line.
    * `remove` (uninstall) deletes every line of ours for those keys first.
    * All entries are validated before anything is changed; with two entries for one key the last wins.
    """
    rendered = [(entry.key, format_entry(entry)) for entry in entries]
    removed = set(remove)
    lines = _physical_lines(data)
    if removed:
        lines = [raw for raw in lines if _owner_key(raw) not in removed]
    managed = {key for key, _ in rendered}
    for key, line in rendered:
        lines = _place(lines, key, line, managed)
    return b"".join(lines)


def _check_value(name: str, value: str) -> None:
    if "\n" in value or "\r" in value or "\0" in value:
        raise PgpassFormatError(f"the {name} contains a newline, carriage return or NUL, which .pgpass cannot hold")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise PgpassFormatError(f"the {name} is not valid Unicode (lone surrogate)") from err


def _encode(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def _decode(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def _physical_lines(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _ending(raw: bytes) -> bytes:
    return raw[len(raw.rstrip(b"\r\n")) :]


def _file_ending(lines: Sequence[bytes]) -> bytes:
    for raw in lines:
        if raw.endswith(b"\n"):
            return b"\r\n" if raw.endswith(b"\r\n") else b"\n"
    return b"\n"


def _split_key(raw: bytes) -> tuple[Key, tuple[bool, bool, bool, bool], int] | None:
    """The de-escaped key fields of an entry line (split on unescaped colons), their wildcard flags, and
    where the password starts; None for comments, damaged and malformed lines."""
    match = None if raw.startswith(b"#") or b"\0" in raw else _KEY.match(raw)
    if match is None:
        return None
    host, port, database, user = (
        _decode(_ESCAPED.sub(rb"\1", value) if b"\\" in value else value) for value in match.groups()
    )
    flags = match.group(1) == b"*", match.group(2) == b"*", match.group(3) == b"*", match.group(4) == b"*"
    return (host, port, database, user), flags, match.end()


def _parse_line(number: int, raw: bytes) -> PgpassLine:
    split = _split_key(raw.rstrip(b"\r\n"))
    if split is None:
        return PgpassLine(number, raw)
    key, wildcards, pos = split
    password = _decode(_password_at(raw.rstrip(b"\r\n"), pos))
    return PgpassLine(number, raw, PgpassEntry(*key, password=password), wildcards)


def _owner_key(raw: bytes) -> Key | None:
    """The key a line holds when it is one we could have written: bare `*` exactly where the value is `*`."""
    split = _split_key(raw.rstrip(b"\r\n"))
    if split is None or split[1] != tuple(value == ANY for value in split[0]):
        return None
    return split[0]


def _password_at(text: bytes, pos: int) -> bytes:
    """libpq's password de-escaping: up to an unescaped colon; a trailing lone backslash stays."""
    match = _PASSWORD.match(text, pos)  # always matches: the pattern accepts the empty string
    return _ESCAPED.sub(rb"\1", match.group(0)) if match else b""


def _match_field(text: bytes, pos: int, token: bytes) -> int | None:
    """pwdfMatchesString(): where the next field starts when this one matches token, else None."""
    if text.startswith(b"*:", pos):
        return pos + 2
    used, size = 0, len(text)
    while pos < size:
        escaped = text[pos] == 0x5C
        if escaped:
            pos += 1
            if pos == size:
                return None
        if text[pos] == 0x3A and not escaped and used == len(token):
            return pos + 1
        if used == len(token) or text[pos] != token[used]:
            return None
        pos, used = pos + 1, used + 1
    return None


def _field_ends(text: bytes, pos: int) -> Iterator[int]:
    """Where the next field can start when this one is matched against any non-empty value."""
    if text.startswith(b"*:", pos):
        yield pos + 2
        return
    start, size = pos, len(text)
    while pos < size:
        if text[pos] == 0x5C:
            pos += 2
            continue
        if text[pos] == 0x3A and pos > start:
            yield pos + 1
        pos += 1


def _overlaps(text: bytes, key: Key) -> bool:
    """Whether some connection that `key` covers (`*` = any value) would match this line."""
    positions = {0}
    for value in key:
        token = None if value == ANY else _encode(value)
        following: set[int] = set()
        for pos in positions:
            if token is None:
                following.update(_field_ends(text, pos))
                continue
            end = _match_field(text, pos, token)
            if end is not None:
                following.add(end)
        if not following:
            return False
        positions = following
    return True


@dataclass(frozen=True)
class _Logical:
    """One line as libpq processes it: possibly several physical lines glued at NUL bytes."""

    start: int
    end: int
    text: bytes
    comment: bool
    complete: bool  # ended by a newline, so the next byte starts a fresh line


def _logical_lines(data: bytes) -> Iterator[_Logical]:
    """passwordFromFile()'s read loop: fgets() into a PQExpBuffer that grows as pqexpbuffer.c grows it."""
    size, pos, start, maxlen, buf = len(data), 0, 0, _INITIAL_BUFFER, b""
    while pos < size:
        while len(buf) + _READ_AHEAD + 1 > maxlen:
            maxlen *= 2
        limit = maxlen - len(buf) - 1  # fgets(buf.data + buf.len, buf.maxlen - buf.len, fp)
        newline = data.find(b"\n", pos, pos + limit)
        end = newline + 1 if newline >= 0 else min(pos + limit, size)
        at_eof = newline < 0 and size - pos < limit
        buf += data[pos:end].split(b"\0", 1)[0]  # buf.len += strlen(buf.data + buf.len)
        pos = end
        if buf.endswith(b"\n") or at_eof:
            yield _Logical(start, pos, buf.rstrip(b"\r\n"), buf.startswith(b"#"), buf.endswith(b"\n"))
            start, buf = pos, b""


@dataclass(frozen=True)
class _Group:
    """A logical line in terms of physical line indexes: first..last, inclusive."""

    first: int
    last: int
    text: bytes
    comment: bool
    complete: bool


def _group_lines(lines: Sequence[bytes]) -> list[_Group]:
    offsets, total = [], 0
    for raw in lines:
        offsets.append(total)
        total += len(raw)
    groups = []
    for logical in _logical_lines(b"".join(lines)):
        first, last = bisect_right(offsets, logical.start) - 1, bisect_right(offsets, logical.end - 1) - 1
        groups.append(_Group(first, last, logical.text, logical.comment, logical.complete))
    return groups


def _shadows(group: _Group, owners: Sequence[Key | None], managed: set[Key], key: Key) -> bool:
    if group.comment:
        return False
    if group.first == group.last and owners[group.first] in managed:
        return False
    return _overlaps(group.text, key)


def _place(lines: list[bytes], key: Key, rendered: bytes, managed: set[Key]) -> list[bytes]:
    owners = [_owner_key(raw) for raw in lines]
    kept = owners.index(key) if key in owners else None
    ending = (_ending(lines[kept]) if kept is not None else b"") or _file_ending(lines)
    rest = [raw for raw, owner in zip(lines, owners, strict=True) if owner != key]
    rest_owners = [owner for owner in owners if owner != key]
    terminated = _terminate_last(rest, _file_ending(lines))
    groups = _group_lines(terminated)
    shadow = next((g.first for g in groups if _shadows(g, rest_owners, managed, key)), None)
    target = kept if kept is not None and (shadow is None or kept <= shadow) else shadow
    target = len(rest) if target is None else target
    clean = _clean_positions(terminated, groups)
    if not clean:  # everything after the BOM line is glued together: end the damaged tail first
        return [*terminated, _file_ending(lines), rendered + ending]
    earlier = [pos for pos in clean if pos <= target]
    target = max(earlier) if earlier else min(clean)
    if target == len(rest):
        rest = terminated
    return [*rest[:target], rendered + ending, *rest[target:]]


def _terminate_last(lines: list[bytes], ending: bytes) -> list[bytes]:
    if lines and not lines[-1].endswith(b"\n"):
        return [*lines[:-1], lines[-1] + ending]
    return lines


def _clean_positions(lines: Sequence[bytes], groups: Sequence[_Group]) -> list[int]:
    """Line indexes where an inserted line is read on its own: libpq's buffer is empty there."""
    clean = [0, *(group.last + 1 for group in groups if group.complete)]
    if lines and lines[0].startswith(_BOM):
        clean = [pos for pos in clean if pos > 0]
    return clean
