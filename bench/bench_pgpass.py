"""Benchmark 5: updating one entry of a `.pgpass` that holds 1, 100 or 10 000 foreign lines, durably.

The subject is what a cycle does to the file: `files.update_file(path, lambda old: pgpass.merge(old, [entry]))`
(sidecar lock, read, merge as libpq reads the file, temp file, fsync, rename, directory fsync), with a new
password each run for an entry already in the file. The floor, interleaved with it, writes the same bytes the
plainest durable way: `os.open`, `write`, `fsync`, `os.replace`, directory fsync. Both write in the same
directory (by default under the system temp directory; `--work-dir` picks another file system).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:  # `python bench/bench_pgpass.py` puts bench/, not the repository, on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BenchError, Options, figure, measure_interleaved, scratch, standalone, timed

NAME = "pgpass"
SIZES = (1, 100, 10_000)
SMOKE_SIZES = (1, 100)
FLOOR_LABEL = "write+fsync+rename+dir fsync"
OUR_HOST = "instance-ours.database.example.com"
OUR_USER = "someone@example.com"


def foreign_lines(count: int) -> bytes:
    """`count` lines of other people's hosts, as a long-lived `.pgpass` collects them."""
    return b"".join(
        f"db{i}.internal.example.com:{5432 + i % 3}:app_{i % 7}:user{i}:pw-{secrets.token_hex(12)}\n".encode()
        for i in range(count)
    )


def durable_write(path: Path, data: bytes) -> None:
    """The floor: the same bytes, written and made durable with nothing else around it."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def measure_size(directory: Path, count: int, options: Options) -> tuple[list[float], list[float], int]:
    """Interleaved runs of the update and of the floor for a file of `count` foreign lines plus ours."""
    from databricks.labs.oauth_rotator import files, pgpass

    directory.mkdir()
    target, floor_file = directory / "pgpass", directory / "floor"

    def entry() -> pgpass.PgpassEntry:
        return pgpass.PgpassEntry(OUR_HOST, "5432", "*", OUR_USER, f"token-{secrets.token_hex(32)}")

    first = pgpass.merge(foreign_lines(count), [entry()])
    durable_write(target, first)
    durable_write(floor_file, first)

    def update() -> float:
        new = entry()
        seconds = timed(lambda: files.update_file(target, lambda old: pgpass.merge(old, [new])))
        if pgpass.lookup(target.read_bytes(), *new.key) != new.password:
            raise BenchError(f"{target}: the update did not land")
        return seconds

    def floor() -> float:
        data = target.read_bytes()  # what the update wrote last: the same bytes, outside the timing
        return timed(lambda: durable_write(floor_file, data))

    runs = measure_interleaved({"update": update, "floor": floor}, runs=options.cheap_runs, warmup=options.warmup)
    return runs["update"], runs["floor"], len(first)


def run(options: Options) -> dict[str, Any]:
    sizes = SMOKE_SIZES if options.smoke else SIZES
    figures, file_bytes = [], {}
    with scratch(options, NAME) as tmp:
        for count in sizes:
            update, floor, size = measure_size(tmp / f"lines-{count}", count, options)
            file_bytes[str(count)] = size
            case = f"{count:,} foreign line{'s' if count > 1 else ''}".replace(",", " ")
            ms = 1000
            figures.append(
                figure(
                    case,
                    "update one entry",
                    "ms",
                    [s * ms for s in update],
                    floor=FLOOR_LABEL,
                    floor_values=[s * ms for s in floor],
                )
            )
    return {
        "title": ".pgpass merge and durable write",
        "floor": FLOOR_LABEL,
        "file_system": file_system(options.work_dir),
        "sizes": list(sizes),
        "file_bytes": file_bytes,
        "figures": figures,
    }


def file_system(path: Path) -> str:
    """The type of the file system holding `path` (from /proc/mounts: the longest mount point above it)."""
    best, kind = "", "?"
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                point = fields[1]
                inside = str(path.resolve()).startswith(point.rstrip("/") + "/") or str(path.resolve()) == point
                if inside and len(point) > len(best):
                    best, kind = point, fields[2]
    except OSError:
        pass
    return kind


if __name__ == "__main__":
    standalone(NAME, run, __doc__ or NAME)
