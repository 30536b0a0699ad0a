"""Many writers, a reader, psql and SIGKILL at random moments, all on one real `.pgpass`.

Invariants (pgpass-and-files.md section 10): every version a reader sees is complete (I5); the user's lines
are byte-identical and in order (I2); one line per key holding the latest value (I3); mode 0600 (I4); no
temp files after a successful run, stale ones removed by the next (I6); psql logs in throughout (I7).
Run with `-s` to see the figures.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import signal
import stat
import time
from datetime import datetime, timedelta, timezone
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from databricks.labs.oauth_rotator.files.pgpass import ANY, PgpassEntry, merge, parse
from databricks.labs.oauth_rotator.files.writer import update_file
from tests.rigs.postgres import LocalPostgres

WRITERS = 8
ROTATIONS = 200
KILLS = 200
USER_FILE = b"# hand-written\r\n*:*:*:*:wrong\r\nlocalhost:5432:*:me:p\\:w\r\n \t# not a comment\r\n"
TOKEN = re.compile(r"w(\d)-(\d{4})-x{1500}")
FORK = multiprocessing.get_context("fork")


def _entry(writer: int, rotation: int) -> PgpassEntry:
    return PgpassEntry(
        f"writer{writer}.example.com", "5432", ANY, "me@example.com", f"w{writer}-{rotation:04d}-" + "x" * 1500
    )


def _rotate(path: Path, entry: PgpassEntry) -> None:
    update_file(path, lambda old: merge(old, [entry]))


def _writer(path: Path, writer: int) -> None:
    for rotation in range(ROTATIONS):
        _rotate(path, _entry(writer, rotation))


def _temps(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if ".tmp." in name]


def _foreign(data: bytes) -> list[bytes]:
    lines = parse(data)
    return [line.raw for line in lines if line.entry is None or line.entry.key[0] in {"*", "localhost"}]


class Reader:
    """Reads the file the way libpq does (open, read all, close) and checks every version it sees."""

    def __init__(self, path: Path, login: PgpassEntry) -> None:
        self.path, self.login = path, login
        self.reads = self.torn = self.regressions = self.bad_modes = 0
        self.last_seen: dict[int, int] = {}

    def check_once(self) -> None:
        with open(self.path, "rb") as file:
            data = file.read()
            mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
        self.reads += 1
        self.bad_modes += mode != 0o600
        if not self._complete(data):
            self.torn += 1

    def _complete(self, data: bytes) -> bool:
        if _foreign(data) != _foreign(USER_FILE):
            return False
        seen: dict[int, int] = {}
        for line in parse(data):
            if line.entry is None or line.entry.key[0] in {"*", "localhost"}:
                continue
            if line.entry == self.login:
                continue
            match = TOKEN.fullmatch(line.entry.password)
            if match is None or int(match.group(1)) in seen or line.raw[-2:] != b"\r\n":
                return False
            seen[int(match.group(1))] = int(match.group(2))
        self.regressions += sum(seen.get(w, -1) < n for w, n in self.last_seen.items())
        self.last_seen.update(seen)
        return self.login in {line.entry for line in parse(data)}


def _read_loop(path: Path, login: PgpassEntry, stop: Synchronized, counts: dict) -> None:
    reader = Reader(path, login)
    while not stop.value:
        reader.check_once()
    counts.update(reads=reader.reads, torn=reader.torn, regressions=reader.regressions, bad_modes=reader.bad_modes)


def test_eight_writers_a_reader_and_psql(postgres: LocalPostgres, tmp_path: Path) -> None:
    login = PgpassEntry(postgres.host, str(postgres.port), ANY, "pgpass_concurrent", "stable-login-token")
    postgres.set_password(login.user, login.password, datetime.now(timezone.utc) + timedelta(hours=1))
    path = tmp_path / ".pgpass"
    path.write_bytes(USER_FILE)
    path.chmod(0o600)
    _rotate(path, login)
    stop, counts = FORK.Value("b", 0), FORK.Manager().dict()
    reader = FORK.Process(target=_read_loop, args=(path, login, stop, counts))
    writers = [FORK.Process(target=_writer, args=(path, writer)) for writer in range(WRITERS)]
    started = time.monotonic()
    reader.start()
    for process in writers:
        process.start()
    logins = failures = 0
    while any(process.is_alive() for process in writers):
        result = postgres.psql_login(user=login.user, passfile=path)
        logins += 1
        failures += result.returncode != 0
    elapsed = time.monotonic() - started
    stop.value = 1
    reader.join()
    final = path.read_bytes()
    lost = [w for w in range(WRITERS) if _entry(w, ROTATIONS - 1) not in {line.entry for line in parse(final)}]
    print(
        f"\n{WRITERS} writers x {ROTATIONS} rotations in {elapsed:.1f} s "
        f"({WRITERS * ROTATIONS / elapsed:.0f} rotations/s): {counts['reads']} reads, {counts['torn']} torn, "
        f"{counts['regressions']} regressions, {counts['bad_modes']} with a mode other than 0600; "
        f"{logins} psql logins, {failures} failed; {len(lost)} lost entries; {len(_temps(tmp_path))} temp files left"
    )
    assert all(process.exitcode == 0 for process in writers)
    assert counts["reads"] > 100
    assert (counts["torn"], counts["regressions"], counts["bad_modes"]) == (0, 0, 0)
    assert logins > 20
    assert failures == 0
    assert lost == []
    assert _temps(tmp_path) == []
    assert _foreign(final) == _foreign(USER_FILE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def _crash_entry(rotation: int) -> PgpassEntry:
    return PgpassEntry("crash.example.com", "5432", ANY, "me@example.com", f"crash-{rotation:06d}-" + "y" * 1500)


def _rotate_forever(path: Path, first: int, done: Synchronized) -> None:
    rotation = first
    while True:
        _rotate(path, _crash_entry(rotation))
        done.value = rotation
        rotation += 1


def test_sigkill_at_random_moments_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / ".pgpass"
    path.write_bytes(USER_FILE)
    path.chmod(0o600)
    _rotate(path, _crash_entry(0))
    versions = {0: path.read_bytes()}
    done = FORK.RawValue("q", 0)  # no lock: a killed child must not leave one held
    rng = random.Random(20_260_101)
    left_temps = removed_by_next_run = completed_rotations = 0
    previous_temps: set[str] = set()
    started = time.monotonic()
    for _ in range(KILLS):
        first = done.value + 1
        child = FORK.Process(target=_rotate_forever, args=(path, first, done))
        child.start()
        time.sleep(rng.uniform(0, 0.05))
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join()
        completed_rotations += max(0, done.value - first + 1)
        data, last = path.read_bytes(), done.value
        for rotation in (last, last + 1):
            versions.setdefault(rotation, merge(USER_FILE, [_crash_entry(rotation)]))
        assert data in {versions[last], versions[last + 1]}, "neither the old nor the new version"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        temps = set(_temps(tmp_path))
        if done.value >= first:  # the child finished a rotation: the earlier leftovers must be gone
            assert not previous_temps & temps
            removed_by_next_run += len(previous_temps)
        left_temps += len(temps - previous_temps)
        previous_temps = temps
    _rotate(path, _crash_entry(done.value + 1))
    elapsed = time.monotonic() - started
    print(
        f"\n{KILLS} SIGKILLs in {elapsed:.1f} s over {completed_rotations} completed rotations: every file "
        f"was the old or the new version, mode 0600; {left_temps} temp files left by kills, "
        f"{removed_by_next_run} removed by the next run, {len(_temps(tmp_path))} after a final clean run"
    )
    assert _temps(tmp_path) == []
    assert path.read_bytes() == merge(USER_FILE, [_crash_entry(done.value + 1)])
