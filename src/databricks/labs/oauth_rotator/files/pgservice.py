"""`pg_service.conf` entries for each target, so `psql service=NAME` connects with the password from `.pgpass`.

Pure (no I/O), stdlib only. We own only the sections we wrote, each marked by a comment line right above its
header; every other byte of the file stays as it was. A section never holds a password: libpq does not check
this file's permissions and caps its lines at 1023 bytes, so tokens do not belong here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from databricks.labs.oauth_rotator.errors import PgpassFormatError
from databricks.labs.oauth_rotator.names import service_name  # noqa: F401  # pylint: disable=unused-import  # re-exported

MARKER = b"# managed by oauth-rotator: "
MAX_LINE = 1023


@dataclass(frozen=True)
class ServiceEntry:
    """One service: where and as whom to connect, always over SSL (Lakebase refuses anything else)."""

    name: str
    host: str
    port: str
    dbname: str
    user: str

    def render(self, ending: bytes = b"\n") -> bytes:
        lines = [
            MARKER + self.name.encode(),
            b"[" + self.name.encode() + b"]",
            *(f"{key}={value}".encode() for key, value in self._pairs()),
        ]
        for line in lines:
            if len(line) >= MAX_LINE:
                raise PgpassFormatError(f"pg_service.conf line for {self.name} is longer than libpq reads")
        return b"".join(line + ending for line in lines)

    def _pairs(self) -> list[tuple[str, str]]:
        pairs = [("host", self.host), ("port", self.port), ("dbname", self.dbname), ("user", self.user)]
        for key, value in pairs:
            if not value or value != value.strip() or any(c in value for c in "\r\n\0"):
                raise PgpassFormatError(f"pg_service.conf cannot hold {key}={value!r} for {self.name}")
        return [*pairs, ("sslmode", "require")]


@dataclass
class _Block:
    name: str | None
    """The service a managed block defines; None for everything else (kept byte for byte)."""
    lines: list[bytes]


def _header(line: bytes) -> str | None:
    stripped = line.strip()
    if stripped.startswith(b"[") and b"]" in stripped:
        return stripped[1 : stripped.index(b"]")].decode("utf-8", "replace")
    return None


def _is_pair(line: bytes) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith(b"#") and b"=" in stripped and _header(line) is None


def _blocks(data: bytes) -> list[_Block]:
    lines = data.splitlines(keepends=True)
    blocks: list[_Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        name = line.strip()[len(MARKER) :].decode("utf-8", "replace") if line.startswith(MARKER) else None
        if name is not None and i + 1 < len(lines) and _header(lines[i + 1]) == name:
            end = i + 2
            while end < len(lines) and _is_pair(lines[end]):
                end += 1
            blocks.append(_Block(name, lines[i:end]))
            i = end
            continue
        blocks.append(_Block(None, [line]))
        i += 1
    return blocks


def foreign_sections(data: bytes) -> set[str]:
    """Names of the sections in `data` that someone else wrote."""
    owned = {b.name for b in _blocks(data) if b.name is not None}
    return {name for line in data.splitlines() if (name := _header(line)) is not None and name not in owned}


def merge(data: bytes, entries: Sequence[ServiceEntry], *, keep: Collection[str] = ()) -> bytes:
    """`data` with our sections for `entries` written in place or appended; ours not in `entries` or `keep` go.

    A section of the same name that someone else wrote wins: ours is not added (libpq would read theirs first).
    """
    ending = b"\r\n" if b"\r\n" in data.split(b"\n", 1)[0] + b"\n" else b"\n"
    wanted = {e.name: e for e in entries if e.name not in foreign_sections(data)}
    out: list[bytes] = []
    written: set[str] = set()
    for block in _blocks(data):
        if block.name is None:
            out.extend(block.lines)
        elif block.name in wanted and block.name not in written:
            out.append(wanted[block.name].render(ending))
            written.add(block.name)
        elif block.name in keep and block.name not in written:
            out.extend(block.lines)
            written.add(block.name)
    missing = [entry for name, entry in wanted.items() if name not in written]
    if missing and out and not out[-1].endswith(b"\n"):
        out.append(ending)
    # No blank line between sections: removing ours later must give back exactly the bytes that were there.
    out.extend(entry.render(ending) for entry in missing)
    return b"".join(out)
