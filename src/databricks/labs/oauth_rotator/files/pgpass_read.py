"""libpq's reading of `.pgpass`: its line reading, its field matching, and the password it takes; no I/O.

The rules are those of `passwordFromFile()` and `pwdfMatchesString()` in postgres/postgres
`src/interfaces/libpq/fe-connect.c` (libpq 10 and later):

* an unescaped `:` ends a field only once the connection's value has been matched in full, so
  `::1:5432:...` matches the host `::1` (matching is greedy, not a split on colons);
* all trailing CR/LF are stripped; the first match wins;
* a NUL byte makes libpq drop the rest of that line and glue the next physical line onto it.

Line reading is emulated byte for byte (fgets into a growing PQExpBuffer), so `lookup` answers what
`psql` would use. `lookup_many` answers for hundreds of entries in one pass over the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from databricks.labs.oauth_rotator.files.pgpass_format import Key, encode, password_at
from databricks.labs.oauth_rotator.files.pgpass_index import FirstLines

_INITIAL_BUFFER = 256  # INITIAL_EXPBUFFER_SIZE in pqexpbuffer.h
_READ_AHEAD = 128  # passwordFromFile() calls enlargePQExpBuffer(&buf, 128) before every fgets()


def lookup(data: bytes, host: str, port: str, database: str, user: str) -> str | None:
    """The password libpq takes from this file for a connection, or None; `""` means "none supplied".

    Empty host and port default as in libpq (`localhost`, `5432`); an empty database or user means
    libpq does not consult the file at all.
    """
    if not database or not user:
        return None
    tokens = [encode(host or "localhost"), encode(port or "5432"), encode(database), encode(user)]
    for line in logical_lines(data):
        if line.comment:
            continue
        pos: int | None = 0
        for token in tokens:
            pos = match_field(line.text, pos, token) if pos is not None else None
        if pos is not None:
            return password_at(line.text, pos).decode("utf-8", "surrogateescape")
    return None


def lookup_many(data: bytes, keys: Iterable[Key]) -> dict[Key, str | None]:
    """`lookup` for every key at once, in one pass over the file: {key: password or None}, same answers.

    The time grows with the file's size plus the number of keys, not with their product.
    """
    wanted = list(dict.fromkeys(keys))
    connections = {key: _connection(key) for key in wanted}
    searched = list(dict.fromkeys(c for c in connections.values() if c is not None))
    index = FirstLines(searched, any_is_wildcard=False)
    for number, line in enumerate(logical_lines(data)):
        if index.done:
            break
        if not line.comment:
            index.scan(number, line.text)
    return {key: index.password(connections[key]) for key in wanted}


def _connection(key: Key) -> tuple[bytes, bytes, bytes, bytes] | None:
    """The bytes libpq compares for a connection (empty host and port defaulted); None when it skips the file."""
    host, port, database, user = key
    if not database or not user:
        return None
    return encode(host or "localhost"), encode(port or "5432"), encode(database), encode(user)


def match_field(text: bytes, pos: int, token: bytes) -> int | None:
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


@dataclass(frozen=True)
class LogicalLine:
    """One line as libpq processes it: possibly several physical lines glued at NUL bytes."""

    start: int
    end: int
    text: bytes
    comment: bool
    complete: bool  # ended by a newline, so the next byte starts a fresh line


def logical_lines(data: bytes) -> Iterator[LogicalLine]:
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
            yield LogicalLine(start, pos, buf.rstrip(b"\r\n"), buf.startswith(b"#"), buf.endswith(b"\n"))
            start, buf = pos, b""
