"""The first line of a `.pgpass` file that matches each of many keys, found in one pass; no I/O.

`lookup_many` asks it which password libpq takes for each of a fleet's connections; `merge` asks it which
foreign line comes first for each of our entries. The time grows with the file's size plus the number of keys,
not with their product.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from databricks.labs.oauth_rotator.files.pgpass_format import ANY, ESCAPED, Key, encode, password_at

_TO_COLON = re.compile(rb"(?:\\.|[^\\:])*:", re.DOTALL)

Encoded = tuple[bytes, bytes, bytes, bytes]


def encode_key(key: Key) -> Encoded:
    return encode(key[0]), encode(key[1]), encode(key[2]), encode(key[3])


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


class FirstLines:
    """For many keys at once, the first line that matches each one: `scan` each line once, in file order.

    A key field matches a line's field when the line's is a bare `*`; or, with `any_is_wildcard` (`merge`
    asking "could a connection this key covers use the line?"), when the key's is `*` and the line's is not
    empty; or when the de-escaped field equals the key's value. That is `pwdfMatchesString()` exactly: a
    field matching a value ends at the unescaped colon that follows as many de-escaped bytes as the value
    has, so the value alone decides which colon ends it. Each line is cut at the colons where its fields can
    be values of some key (as a rule in one way only), and the keys a cut matches are found in a dict by
    the fields that must be equal: the work per line does not grow with the number of keys.
    """

    def __init__(self, keys: Sequence[Encoded], *, any_is_wildcard: bool) -> None:
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
        plain = [ESCAPED.sub(rb"\1", run) if b"\\" in run else run for run in runs] if b"\\" in text else runs
        self._cut(_Cut(number, text, runs, plain), 0, 0, 0, ())

    def first_lines(self) -> dict[Encoded, int]:
        """The number of the first line that matched, for each key that one did."""
        return {self._keys[k]: number for k, (number, _, _) in self._found.items()}

    def password(self, key: Encoded | None) -> str | None:
        """libpq's password for `key` from the first line that matched it; None when none did (or no key)."""
        found = self._found.get(self._positions.get(key, -1)) if key is not None else None
        if found is None:
            return None
        _, text, start = found
        return password_at(text, start).decode("utf-8", "surrogateescape")

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
