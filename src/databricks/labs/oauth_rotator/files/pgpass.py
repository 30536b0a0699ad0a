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

A fleet has hundreds of entries: `lookup_many` answers for all of them in one pass over the file, and `merge`
places all of them in one pass (a file with a NUL byte, or two entries for one key, takes the entry-by-entry
path, whose result the one-pass placement reproduces exactly for every other file).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from databricks.labs.oauth_rotator.errors import PgpassFormatError
from databricks.labs.oauth_rotator.pgpass_fields import escape_fields

ANY = "*"
"""A key field that matches any value; `PgpassEntry(..., database=ANY, ...)` covers every database."""

Key = tuple[str, str, str, str]
"""(host, port, database, user), de-escaped; `*` means any value."""

_BOM = b"\xef\xbb\xbf"
_KEY = re.compile(rb"((?:\\.|[^\\:])*):" * 4, re.DOTALL)
_TO_COLON = re.compile(rb"(?:\\.|[^\\:])*:", re.DOTALL)
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
    return b":".join(escape_fields(values))


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


def lookup_many(data: bytes, keys: Iterable[Key]) -> dict[Key, str | None]:
    """`lookup` for every key at once, in one pass over the file: {key: password or None}, same answers.

    The time grows with the file's size plus the number of keys, not with their product.
    """
    wanted = list(dict.fromkeys(keys))
    connections = {key: _connection(key) for key in wanted}
    searched = list(dict.fromkeys(c for c in connections.values() if c is not None))
    index = _FirstLines(searched, any_is_wildcard=False)
    for number, line in enumerate(_logical_lines(data)):
        if index.done:
            break
        if not line.comment:
            index.scan(number, line.text)
    return {key: index.password(connections[key]) for key in wanted}


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
    owners = [_owner_key(raw) for raw in lines]
    if removed:
        pairs = [(raw, owner) for raw, owner in zip(lines, owners, strict=True) if owner not in removed]
        lines, owners = [raw for raw, _ in pairs], [owner for _, owner in pairs]
    managed = {key for key, _ in rendered}
    if len(managed) < len(rendered) or any(b"\0" in raw for raw in lines):
        return _merge_one_by_one(lines, rendered, managed)
    layout = _Layout(lines, owners, managed)
    for key, line in rendered:
        layout.place(key, line)
    return layout.render()


def _merge_one_by_one(lines: list[bytes], rendered: Sequence[tuple[Key, bytes]], managed: set[Key]) -> bytes:
    """Each entry placed in turn in a fresh parse of the file so far: any file, in time entries x lines."""
    for key, line in rendered:
        lines = _place(lines, key, line, managed)
    return b"".join(lines)


def _connection(key: Key) -> tuple[bytes, bytes, bytes, bytes] | None:
    """The bytes libpq compares for a connection (empty host and port defaulted); None when it skips the file."""
    host, port, database, user = key
    if not database or not user:
        return None
    return _encode(host or "localhost"), _encode(port or "5432"), _encode(database), _encode(user)


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
    """The line's own line ending; b"" for an unterminated line (a bare CR there would glue ours onto the next)."""
    ending = raw[len(raw.rstrip(b"\r\n")) :]
    return ending if ending.endswith(b"\n") else b""


def _file_ending(lines: Sequence[bytes]) -> bytes:
    for raw in lines:
        if raw.endswith(b"\n"):
            return b"\r\n" if raw.endswith(b"\r\n") else b"\n"
    return b"\n"


def _split_key(raw: bytes) -> tuple[Key, tuple[bool, bool, bool, bool], int] | None:
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
    host, port, database, user = (_decode(_ESCAPED.sub(rb"\1", v) if b"\\" in v else v) for v in fields)
    flags = fields[0] == b"*", fields[1] == b"*", fields[2] == b"*", fields[3] == b"*"
    return (host, port, database, user), flags, start


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
    if text.find(b"\\", pos) < 0:  # the common case, without the regex's byte-by-byte alternation
        end = text.find(b":", pos)
        return text[pos:] if end < 0 else text[pos:end]
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


_Encoded = tuple[bytes, bytes, bytes, bytes]


def _encode_key(key: Key) -> _Encoded:
    return _encode(key[0]), _encode(key[1]), _encode(key[2]), _encode(key[3])


def _colon_fields(text: bytes) -> list[bytes]:
    """The raw runs of a line between unescaped colons, each one ended by a colon (so the password's last run is
    not among them). A key field is one or more consecutive runs, joined by their colons."""
    if b"\\" not in text:
        return text.split(b":")[:-1]
    runs, pos = [], 0
    while (match := _TO_COLON.match(text, pos)) is not None:
        runs.append(text[pos : match.end() - 1])
        pos = match.end()
    return runs


class _FirstLines:
    """For many keys at once, the first line that matches each one: `scan` each line once, in file order.

    A key field matches a line's field when the line's is a bare `*`; or, with `any_is_wildcard` (`merge`
    asking "could a connection this key covers use the line?"), when the key's is `*` and the line's is not
    empty; or when the de-escaped field equals the key's value. That is `pwdfMatchesString()` exactly: a
    field matching a value ends at the unescaped colon that follows as many de-escaped bytes as the value
    has, so the value alone decides which colon ends it. Each line is cut at the colons where its fields can
    be values of some key (as a rule in one way only), and the keys a cut matches are found in a dict by
    the fields that must be equal: the work per line does not grow with the number of keys.
    """

    def __init__(self, keys: Sequence[_Encoded], *, any_is_wildcard: bool) -> None:
        star = ANY.encode()
        self._keys = list(keys)
        self._positions = {key: k for k, key in enumerate(self._keys)}
        self._masks = [sum(1 << f for f in range(4) if any_is_wildcard and key[f] == star) for key in self._keys]
        self._key_masks = sorted(set(self._masks))
        self._values: list[set[bytes]] = [set(), set(), set(), set()]
        for key, mask in zip(self._keys, self._masks, strict=True):
            for f in range(4):
                if not mask >> f & 1:
                    self._values[f].add(key[f])
        self._open = [any(mask >> f & 1 for mask in self._masks) for f in range(4)]
        """Whether some key's `*` in this field takes any non-empty value."""
        self._longest = [max((len(value) for value in values), default=0) for values in self._values]
        self._buckets: dict[tuple[int, int], dict[tuple[bytes, ...], list[int]]] = {}
        self._found: dict[int, tuple[int, bytes, int]] = {}
        """Key number: (line number, line text, where the password starts)."""

    @property
    def done(self) -> bool:
        return len(self._found) == len(self._keys)

    def scan(self, number: int, text: bytes) -> None:
        """Line `number` (its text without the line ending; comments are for the caller to skip)."""
        if self.done:
            return
        runs = _colon_fields(text)
        plain = [_ESCAPED.sub(rb"\1", run) if b"\\" in run else run for run in runs] if b"\\" in text else runs
        self._cut(_Cut(number, text, runs, plain), 0, 0, 0, ())

    def first_lines(self) -> dict[_Encoded, int]:
        """The number of the first line that matched, for each key that one did."""
        return {self._keys[k]: number for k, (number, _, _) in self._found.items()}

    def password(self, key: _Encoded | None) -> str | None:
        """libpq's password for `key` from the first line that matched it; None when none did (or no key)."""
        found = self._found.get(self._positions.get(key, -1)) if key is not None else None
        if found is None:
            return None
        _, text, start = found
        return _password_at(text, start).decode("utf-8", "surrogateescape")

    def _cut(self, line: _Cut, run: int, stars: int, empty: int, fields: tuple[bytes, ...]) -> None:
        """Every way to end field number len(fields), which starts at `run`; `stars` and `empty` are bit sets
        of the fields so far that are a bare `*` and that are empty."""
        f = len(fields)
        if f == 4:
            self._match(line, sum(len(r) for r in line.runs[:run]) + run, stars, empty, fields)
            return
        if run >= len(line.runs):
            return
        if line.runs[run] == b"*":  # libpq's wildcard: the field ends right after the star
            self._cut(line, run + 1, stars | 1 << f, empty, (*fields, b"*"))
            return
        values, open_field, longest = self._values[f], self._open[f], self._longest[f]
        value = line.plain[run]
        for last in range(run, len(line.runs)):
            if last > run:
                value = value + b":" + line.plain[last]
            if not open_field and len(value) > longest:
                return
            if open_field or value in values:
                blank = 1 << f if last == run and not line.runs[run] else 0
                self._cut(line, last + 1, stars, empty | blank, (*fields, value))

    def _match(self, line: _Cut, start: int, stars: int, empty: int, fields: tuple[bytes, ...]) -> None:
        for mask in self._key_masks:
            if mask & empty & ~stars:
                continue  # a key's `*` covers only non-empty values
            free = mask | stars
            equal = tuple(value for f, value in enumerate(fields) if not free >> f & 1)
            for k in self._bucket(mask, stars).pop(equal, ()):
                self._found.setdefault(k, (line.number, line.text, start))

    def _bucket(self, mask: int, stars: int) -> dict[tuple[bytes, ...], list[int]]:
        """The keys whose `*` fields are `mask`, by the fields a line with bare stars at `stars` must equal;
        built on first use. An entry goes once a line matched it: each of its keys has its first line then."""
        found = self._buckets.get((mask, stars))
        if found is None:
            free = mask | stars
            found = {}
            for k, (key, key_mask) in enumerate(zip(self._keys, self._masks, strict=True)):
                if key_mask == mask:
                    found.setdefault(tuple(v for f, v in enumerate(key) if not free >> f & 1), []).append(k)
            self._buckets[(mask, stars)] = found
        return found


@dataclass(frozen=True)
class _Cut:
    """One line being cut into fields: its runs between unescaped colons, de-escaped too."""

    number: int
    text: bytes
    runs: list[bytes]
    plain: list[bytes]


@dataclass
class _Gap:
    """Our lines between two foreign lines: those found there (None once moved or dropped), those placed at its
    start (newest first: each goes in front of the others) and those placed at its end."""

    originals: list[bytes | None] = field(default_factory=list)
    front: list[bytes] = field(default_factory=list)
    back: list[bytes] = field(default_factory=list)
    live: int = 0


class _Layout:
    """`merge` in one pass, for a file without NUL bytes (each physical line is then one line for libpq) and
    entries with distinct keys: the same bytes as `_place` for each entry in turn, without re-reading the
    file for each.

    The lines that are not ours (foreign, comments, ...) keep their order, and ours sit in the gaps between
    them. Placing an entry rewrites its first line where it is, or appends it to the gap before the first
    foreign line that could match for it (or to the last gap), or, where that would make it line 1 of a file
    starting with a BOM, puts it first in the gap after that line. Which foreign line comes first for an
    entry does not depend on where ours are, so it is found once for all entries.
    """

    def __init__(self, lines: Sequence[bytes], owners: Sequence[Key | None], managed: set[Key]) -> None:
        self._fixed: list[bytes] = []
        self._gaps: list[_Gap] = [_Gap()]
        self._slots: dict[Key, list[tuple[int, int]]] = {}
        for raw, owner in zip(lines, owners, strict=True):
            if owner is not None and owner in managed:
                gap = self._gaps[-1]
                self._slots.setdefault(owner, []).append((len(self._gaps) - 1, len(gap.originals)))
                gap.originals.append(raw)
                gap.live += 1
            else:
                self._fixed.append(raw)
                self._gaps.append(_Gap())
        self._open_slot: tuple[int, int] | None = None
        """Our line that is the file's unterminated last line, while it is one."""
        self._open_fixed = False
        """Whether the last foreign line is the file's unterminated last line."""
        if lines and not lines[-1].endswith(b"\n"):
            if self._gaps[-1].originals:
                self._open_slot = (len(self._gaps) - 1, len(self._gaps[-1].originals) - 1)
            else:
                self._open_fixed = True
        self._first = 0
        """Where the first line of ours in gap 0 that is still there may be."""
        self._shadows = self._first_foreign_matches(managed)

    def _first_foreign_matches(self, managed: set[Key]) -> dict[Key, int]:
        encoded = {key: _encode_key(key) for key in managed}
        index = _FirstLines(list(encoded.values()), any_is_wildcard=True)
        for number, raw in enumerate(self._fixed):
            if index.done:
                break
            if not raw.startswith(b"#"):
                index.scan(number, raw.rstrip(b"\r\n"))
        first = index.first_lines()
        return {key: first[value] for key, value in encoded.items() if value in first}

    def place(self, key: Key, rendered: bytes) -> None:
        """What `_place` does for this entry, given the entries placed before it."""
        first_line = self._first_line()
        file_ending = _file_ending([first_line] if first_line is not None else [])
        slots = self._slots.pop(key, [])
        kept = slots[0] if slots else None
        line = rendered + ((_ending(self._original(kept)) if kept else b"") or file_ending)
        for gap, position in slots:
            self._gaps[gap].originals[position] = None
            self._gaps[gap].live -= 1
            if self._open_slot == (gap, position):
                self._open_slot = None
        shadow = self._shadows.get(key)
        stays = kept is not None and (shadow is None or kept[0] <= shadow)
        target = kept[0] if kept is not None and stays else shadow
        if target == 0 and not self._gaps[0].live and self._fixed and self._fixed[0].startswith(_BOM):
            # It would be line 1, before the BOM line: it goes right after that line instead.
            if len(self._fixed) == 1 and not self._gaps[1].live:
                self._terminate_last(file_ending)
            self._gaps[1].front.append(line)
            self._gaps[1].live += 1
        elif kept is not None and stays:
            self._gaps[kept[0]].originals[kept[1]] = line
            self._gaps[kept[0]].live += 1
        elif shadow is not None:
            self._gaps[shadow].back.append(line)
            self._gaps[shadow].live += 1
        else:
            self._terminate_last(file_ending)
            self._gaps[-1].back.append(line)
            self._gaps[-1].live += 1

    def render(self) -> bytes:
        out: list[bytes] = []
        for number, gap in enumerate(self._gaps):
            out.extend(reversed(gap.front))
            out.extend(raw for raw in gap.originals if raw is not None)
            out.extend(gap.back)
            if number < len(self._fixed):
                out.append(self._fixed[number])
        return b"".join(out)

    def _original(self, slot: tuple[int, int]) -> bytes:
        return self._gaps[slot[0]].originals[slot[1]] or b""

    def _first_line(self) -> bytes | None:
        gap = self._gaps[0]
        while self._first < len(gap.originals) and gap.originals[self._first] is None:
            self._first += 1
        if self._first < len(gap.originals):
            return gap.originals[self._first]
        if gap.back:
            return gap.back[0]
        return self._fixed[0] if self._fixed else None

    def _terminate_last(self, ending: bytes) -> None:
        """Something goes after the file's last line: if that line has no line ending, it gets the file's."""
        if self._open_slot is not None:
            gap, position = self._open_slot
            self._gaps[gap].originals[position] = self._original(self._open_slot) + ending
            self._open_slot = None
        elif self._open_fixed:
            self._fixed[-1] += ending
            self._open_fixed = False
