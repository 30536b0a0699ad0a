"""Benchmark 5: updating one entry of a `.pgpass` that holds 1, 100 or 10 000 foreign lines, durably; and a fleet's
50 and 500 entries at once.

The subject is what a cycle does to the file: `writer.update_file(path, lambda old: pgpass.merge(old, [entry]))`
(sidecar lock, read, merge as libpq reads the file, temp file, fsync, rename, directory fsync), with a new
password each run for an entry already in the file. The floor, interleaved with it, writes the same bytes the
plainest durable way: `os.open`, `write`, `fsync`, `os.replace`, directory fsync. Both write in the same
directory (by default under the system temp directory; `--work-dir` picks another file system).

For a fleet (50 and 500 entries of ours, each with a 1 KB credential, among 100 foreign lines), the update is the
cycle's: `pgpass.lookup_many` for every entry (the check for longer-lived credentials already there), then one
`merge` of them all, in one `update_file`; against the same durable-write floor. And the daemon's minute check
for lost lines, `Status.lines_lost(file)` for that many targets, for 500 against 50 (both linear: about 10x).
"""

from __future__ import annotations

import os
import secrets
import statistics
from pathlib import Path
from typing import Any

from bench.harness import BenchError, Options, scratch, standalone
from bench.stats import figure, measure_interleaved, timed

NAME = "pgpass"
SIZES = (1, 100, 10_000)
SMOKE_SIZES = (1, 100)
FLEET_SIZES = (50, 500)
SMOKE_FLEET_SIZES = (5, 50)
FLEET_FOREIGN_LINES = 100
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
    from databricks.labs.oauth_rotator.files import pgpass, writer

    directory.mkdir()
    target, floor_file = directory / "pgpass", directory / "floor"

    def entry() -> pgpass.PgpassEntry:
        return pgpass.PgpassEntry(OUR_HOST, "5432", "*", OUR_USER, f"token-{secrets.token_hex(32)}")

    first = pgpass.merge(foreign_lines(count), [entry()])
    durable_write(target, first)
    durable_write(floor_file, first)

    def update() -> float:
        new = entry()
        seconds = timed(lambda: writer.update_file(target, lambda old: pgpass.merge(old, [new])))
        if pgpass.lookup(target.read_bytes(), *new.key) != new.password:
            raise BenchError(f"{target}: the update did not land")
        return seconds

    def floor() -> float:
        data = target.read_bytes()  # what the update wrote last: the same bytes, outside the timing
        return timed(lambda: durable_write(floor_file, data))

    runs = measure_interleaved({"update": update, "floor": floor}, runs=options.cheap_runs, warmup=options.warmup)
    return runs["update"], runs["floor"], len(first)


def fleet_entries(count: int) -> list[Any]:
    """`count` entries of ours with fresh credentials about as long as Lakebase's (JWTs of about 1 KB)."""
    from databricks.labs.oauth_rotator.files import pgpass

    return [
        pgpass.PgpassEntry(f"instance-{i}.database.example.com", "5432", "*", OUR_USER, secrets.token_urlsafe(760))
        for i in range(count)
    ]


def fleet_status(entries: list[Any]) -> Any:
    """A status.json for targets that wrote `entries`, one line each."""
    from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint
    from databricks.labs.oauth_rotator.rotation.state import Status, TargetState

    targets = {
        f"t{i}": TargetState(
            name=f"t{i}", keys=[list(e.key)], fingerprint=token_fingerprint(e.password), expires_at=4e9, due_at=4e9
        )
        for i, e in enumerate(entries)
    }
    return Status(targets=targets)


def measure_fleet(directory: Path, count: int, options: Options) -> tuple[list[float], list[float], list[float]]:
    """Interleaved runs of the fleet update and its floor; then the lost-line check on the file it left."""
    from databricks.labs.oauth_rotator.files import pgpass, writer

    directory.mkdir()
    target, floor_file = directory / "pgpass", directory / "floor"
    durable_write(target, pgpass.merge(foreign_lines(FLEET_FOREIGN_LINES), fleet_entries(count)))
    written: list[Any] = []

    def transform(old: bytes, new: list[Any]) -> bytes:
        pgpass.lookup_many(old, [e.key for e in new])  # the cycle looks for longer-lived credentials first
        return pgpass.merge(old, new)

    def update() -> float:
        new = fleet_entries(count)
        seconds = timed(lambda: writer.update_file(target, lambda old: transform(old, new)))
        if pgpass.lookup_many(target.read_bytes(), [e.key for e in new]) != {e.key: e.password for e in new}:
            raise BenchError(f"{target}: the fleet update did not land")
        written[:] = new
        return seconds

    def floor() -> float:
        data = target.read_bytes()
        return timed(lambda: durable_write(floor_file, data))

    runs = measure_interleaved({"update": update, "floor": floor}, runs=options.cheap_runs, warmup=options.warmup)
    data, status = target.read_bytes(), fleet_status(written)
    if status.lines_lost(data):
        raise BenchError(f"{target}: lines reported lost that are there")
    checks = measure_interleaved(
        {"check": lambda: timed(lambda: status.lines_lost(data))}, runs=options.cheap_runs, warmup=options.warmup
    )
    return runs["update"], runs["floor"], checks["check"]


def fleet_figures(tmp: Path, options: Options) -> tuple[list[dict[str, Any]], dict[str, float]]:
    small, large = SMOKE_FLEET_SIZES if options.smoke else FLEET_SIZES
    ms = 1000
    measured = {n: measure_fleet(tmp / f"fleet-{n}", n, options) for n in (small, large)}
    figures = [
        figure(
            f"{n} entries",
            "update every entry",
            "ms",
            [s * ms for s in update],
            floor=FLOOR_LABEL,
            floor_values=[s * ms for s in floor],
        )
        for n, (update, floor, _) in measured.items()
    ]
    figures.append(
        figure(
            f"{large} entries",
            "lost-line check",
            "ms",
            [s * ms for s in measured[large][2]],
            floor=f"the same for {small} entries",
            floor_values=[s * ms for s in measured[small][2]],
        )
    )
    growth = {
        "update": statistics.median(measured[large][0]) / statistics.median(measured[small][0]),
        "lost_line_check": statistics.median(measured[large][2]) / statistics.median(measured[small][2]),
    }
    return figures, {k: round(v, 3) for k, v in growth.items()}


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
        fleet, growth = fleet_figures(tmp, options)
    figures += fleet
    return {
        "title": ".pgpass merge and durable write",
        "floor": FLOOR_LABEL,
        "file_system": file_system(options.work_dir),
        "sizes": list(sizes),
        "file_bytes": file_bytes,
        "fleet_sizes": list(SMOKE_FLEET_SIZES if options.smoke else FLEET_SIZES),
        "fleet_growth": growth,
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
