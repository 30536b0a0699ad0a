"""The real scheduler loop and the real writer under Windows' file semantics (issue #24, item 1).

Facts modelled (`HostOS.windows()`), and their sources:
- every writable file reports mode 0666, and no chmod narrows it (CPython `Modules/posixmodule.c`,
  `attributes_to_mode`; `os.chmod` sets only the read-only attribute): the file here is really 0666 on disk;
- there is no `fchmod`, `fchown`, `O_NOFOLLOW`, `getuid`, nor a directory to fsync (the `os` documentation's
  availability notes), so the writer must not call them.
The loop runs on a fake clock; the cycle is in-process and writes `.pgpass` through the real `update_file`.
"""

import threading

import pytest

from databricks.labs.oauth_rotator.errors import FileWriteError
from databricks.labs.oauth_rotator.files.writer import update_file
from databricks.labs.oauth_rotator.hostos import HostOS
from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint
from databricks.labs.oauth_rotator.rotation.daemon import CycleResult, Daemon
from databricks.labs.oauth_rotator.rotation.schedule import FakeClock
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState

WINDOWS = HostOS.windows()
LINE = b"h:5432:*:u:tok\n"


class WritingCycle:
    """One rotation cycle's file work: our line merged into `.pgpass` by the real writer, due again in 50 min."""

    def __init__(self, clock, pgpass, stop, *, host, limit=50):
        self.clock, self.pgpass, self.stop, self.host, self.limit = clock, pgpass, stop, host, limit
        self.times: list[float] = []
        self.changed: list[bool] = []

    def run(self, *, force: bool) -> CycleResult:
        self.times.append(self.clock.time())
        merge = lambda old: old if LINE in old else LINE + old  # noqa: E731
        self.changed.append(update_file(self.pgpass, merge, host=self.host))
        self.pgpass.chmod(0o666)  # on Windows a new file reports 0666 too: keep modelling it on this disk
        if len(self.times) >= self.limit:
            self.stop.set()
        return CycleResult(0, self.clock.time() + 3000)


def _state(tmp_path, pgpass) -> StateStore:
    status = Status(
        pgpass_file=str(pgpass),
        targets={"t": TargetState(name="t", keys=[["h", "5432", "*", "u"]], fingerprint=token_fingerprint("tok"))},
    )
    state = StateStore(tmp_path / "status.json")
    state.path.write_bytes(status.to_json())
    return state


def _windows_pgpass(tmp_path):
    pgpass = tmp_path / "pgpass.conf"
    pgpass.write_bytes(b"# the user's own line\n")
    pgpass.chmod(0o666)  # what os.stat reports for every writable file on Windows
    return pgpass


class StopAfter(FakeClock):
    """Stops the loop once `seconds` of simulated time have passed."""

    def __init__(self, stop, seconds):
        super().__init__(start=0)
        self.stop, self.seconds = stop, seconds

    def wait(self, stop, seconds):
        if self.time() >= self.seconds:
            self.stop.set()
        return super().wait(stop, seconds)


def test_under_windows_semantics_the_scheduler_waits_between_cycles_and_rewrites_nothing(tmp_path):
    pgpass = _windows_pgpass(tmp_path)
    stop = threading.Event()
    clock = StopAfter(stop, 2 * 3600)
    cycle = WritingCycle(clock, pgpass, stop, host=WINDOWS)
    inode_before = None

    daemon = Daemon(cycle, clock=clock, stop=stop, state=_state(tmp_path, pgpass), host=WINDOWS)
    assert daemon.run() == 0

    # Two simulated hours: the first cycle, then one every 50 minutes, not 50 in no time.
    assert cycle.times == [0, 3000, 6000]
    assert max(clock.waits) <= 60 and len(clock.waits) >= 100
    # The first cycle wrote our line; the next ones found it there and wrote nothing: the same file, not a new one.
    assert cycle.changed == [True, False, False]
    inode_before = pgpass.stat().st_ino
    assert update_file(pgpass, lambda old: old, host=WINDOWS) is False
    assert pgpass.stat().st_ino == inode_before
    assert pgpass.read_bytes() == LINE + b"# the user's own line\n"


def test_reading_a_mode_that_cannot_change_as_posix_would_spins_the_loop(tmp_path):
    """The defect itself: the mode check of POSIX on a file whose 0666 no writer can narrow (Windows) runs a
    cycle on every turn without waiting. This is what the Windows semantics above prevent."""
    pgpass = _windows_pgpass(tmp_path)
    stop = threading.Event()
    clock = FakeClock(start=0)
    cycle = WritingCycle(clock, pgpass, stop, host=WINDOWS, limit=50)
    Daemon(cycle, clock=clock, stop=stop, state=_state(tmp_path, pgpass), host=HostOS.posix()).run()
    assert len(cycle.times) == 50
    assert cycle.times[-1] == 0  # 50 cycles in 0 simulated seconds


def test_the_windows_writer_calls_no_posix_only_function(tmp_path):
    """No fchmod, fchown or O_NOFOLLOW under Windows semantics: the new file keeps the mode it was created with
    (0600 from `os.open`), and an existing file's mode is left as it is (Windows cannot change it)."""
    pgpass = _windows_pgpass(tmp_path)
    assert update_file(pgpass, lambda old: old + b"x\n", host=WINDOWS) is True
    assert pgpass.stat().st_mode & 0o777 == 0o600  # created 0600 by os.open, never fchmod-ed
    fresh = tmp_path / "new.conf"
    assert update_file(fresh, lambda _old: LINE, host=WINDOWS) is True
    assert fresh.read_bytes() == LINE


def test_the_first_write_creates_libpqs_folder_under_appdata(tmp_path, monkeypatch):
    """A fresh Windows profile has no %APPDATA%\\postgresql (libpq never creates it): the writer does."""
    monkeypatch.setenv("APPDATA", str(tmp_path))
    target = tmp_path / "postgresql" / "pgpass.conf"
    assert update_file(target, lambda _old: LINE, host=WINDOWS) is True
    assert target.read_bytes() == LINE
    elsewhere = tmp_path / "other" / "pgpass.conf"
    with pytest.raises(FileWriteError, match="does not exist"):
        update_file(elsewhere, lambda _old: LINE, host=WINDOWS)
