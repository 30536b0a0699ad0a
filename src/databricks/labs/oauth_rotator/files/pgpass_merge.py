"""Placing our entries in a `.pgpass` file: old bytes and our entries in, new bytes out; no I/O.

Our lines go where libpq uses them (before any foreign line that would match first), replace ours where they
are, and never land where libpq would glue them onto a damaged line; every other byte stays. `shadowed` says
which of ours libpq would not use. A fleet's entries are placed in one pass (a file with a NUL byte, or two
entries for one key, takes the entry-by-entry path, whose result the one-pass placement reproduces exactly for
every other file).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from databricks.labs.oauth_rotator.files.pgpass_format import (
    ANY,
    Key,
    PgpassEntry,
    encode,
    format_entry,
    owner_key,
    password_at,
    physical_lines,
    split_key,
)
from databricks.labs.oauth_rotator.files.pgpass_index import FirstLines, encode_key
from databricks.labs.oauth_rotator.files.pgpass_read import logical_lines, match_field
from databricks.labs.oauth_rotator.pgpass_fields import token_fingerprint

_BOM = b"\xef\xbb\xbf"


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


def shadowed(data: bytes, entries: Sequence[PgpassEntry]) -> list[Shadowing]:
    """Which of our entries present in the file libpq would not use for some connection they cover."""
    lines = physical_lines(data)
    managed = {entry.key for entry in entries}
    owners = [owner_key(raw) for raw in lines]
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
    lines = physical_lines(data)
    owners = [owner_key(raw) for raw in lines]
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


def without_lines(data: bytes, retired: Mapping[Key, str]) -> bytes:
    """`.pgpass` without the lines of `retired` keys that hold the credential of that fingerprint; every other
    byte as it was (a line of someone else's for the same key stays)."""
    kept = []
    for raw in physical_lines(data):
        line = raw.rstrip(b"\r\n")
        split = split_key(line)
        if split is not None and split[0] in retired:
            try:
                password = password_at(line, split[2]).decode("utf-8")
            except UnicodeDecodeError:
                password = ""
            if password and token_fingerprint(password) == retired[split[0]]:
                continue
        kept.append(raw)
    return b"".join(kept)


def _merge_one_by_one(lines: list[bytes], rendered: Sequence[tuple[Key, bytes]], managed: set[Key]) -> bytes:
    """Each entry placed in turn in a fresh parse of the file so far: any file, in time entries x lines."""
    for key, line in rendered:
        lines = _place(lines, key, line, managed)
    return b"".join(lines)


def _ending(raw: bytes) -> bytes:
    """The line's own line ending; b"" for an unterminated line (a bare CR there would glue ours onto the next)."""
    ending = raw[len(raw.rstrip(b"\r\n")) :]
    return ending if ending.endswith(b"\n") else b""


def _file_ending(lines: Sequence[bytes]) -> bytes:
    for raw in lines:
        if raw.endswith(b"\n"):
            return b"\r\n" if raw.endswith(b"\r\n") else b"\n"
    return b"\n"


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
        token = None if value == ANY else encode(value)
        following: set[int] = set()
        for pos in positions:
            if token is None:
                following.update(_field_ends(text, pos))
                continue
            end = match_field(text, pos, token)
            if end is not None:
                following.add(end)
        if not following:
            return False
        positions = following
    return True


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
    for logical in logical_lines(b"".join(lines)):
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
    owners = [owner_key(raw) for raw in lines]
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
        encoded = {key: encode_key(key) for key in managed}
        index = FirstLines(list(encoded.values()), any_is_wildcard=True)
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
