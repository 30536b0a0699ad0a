"""The daemon dies at any moment (SIGKILL, an OOM kill, a laptop losing power) and is restarted; or two copies run.

SIGKILL lands at random points over many cycles of 2-second credentials: most right after the workspace answered
(while the worker writes `.pgpass` and `status.json`), the rest anywhere in a cycle. After every kill `.pgpass`
parses, is 0600, keeps the user's lines byte for byte and holds at most one line of ours, with a credential the
workspace issued for the user; temp files left by a kill are 0600 and gone after the next clean cycle.

Two daemons on one config: both run (the product does not refuse a second copy; the file lock, the
never-older-over-newer rule and the shared status file make that safe), and the file stays consistent.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import stat
import time
from collections import Counter
from contextlib import suppress
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.files import pgpass
from tests.integration.conftest import USER
from tests.reliability.conftest import Figures, Home
from tests.reliability.rig import USER_LINES, log_lines, temp_files, wait_for
from tests.rigs.workspace import DEMO_INSTANCE

pytestmark = pytest.mark.timeout(400)  # scenarios wait for real cycles on a shared, loaded machine
GROUP = "Process faults"
KILLS_PER_TEST = 50


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return False


def _gone(pid: int) -> bool:
    return not _alive(pid)


def check_files(home: Home) -> list[str]:
    """Every invariant of `.pgpass` and `status.json` that a kill could break, as a list of violations."""
    problems = []
    mode = stat.S_IMODE(home.pgpass.stat().st_mode)
    if mode != 0o600:
        problems.append(f".pgpass mode {mode:04o}")
    lines = pgpass.parse(home.pgpass.read_bytes())
    ours = [line for line in lines if line.entry is not None and line.entry.key == home.key]
    others = [line.raw for line in lines if line not in ours]
    if others != list(USER_LINES):
        problems.append("user lines changed")
    if len(ours) > 1:
        problems.append(f"{len(ours)} lines of ours")
    if ours and ours[0].entry is not None:
        found = home.rig.credential(ours[0].entry.password)
        if found is None or found.user != USER:
            problems.append("our line holds a password the workspace did not issue for the user")
    for directory in (home.pgpass.parent, home.status_file.parent):
        for tmp in temp_files(directory) if directory.exists() else []:
            with suppress(FileNotFoundError):
                if stat.S_IMODE(tmp.stat().st_mode) != 0o600:
                    problems.append(f"{tmp.name} is not 0600")
    if home.status_file.exists():
        try:
            json.loads(home.status_file.read_bytes())
        except ValueError:
            problems.append("status.json does not parse")
    return problems


def _temp_names(directories: list[Path]) -> set[str]:
    names: set[str] = set()
    for directory in directories:
        with suppress(FileNotFoundError):
            names |= {name for name in os.listdir(directory) if ".tmp." in name}
    return names


def _spin_until_temp_file(home: Home, *, since: set[str], timeout: float) -> None:
    """Poll (without sleeping: the window is milliseconds) until the atomic writer opens a new temp file."""
    deadline = time.monotonic() + timeout
    directories = [home.pgpass.parent, home.status_file.parent]
    while time.monotonic() < deadline:
        if _temp_names(directories) - since:
            return


def _leftover_temps(home: Home) -> int:
    return sum(len(temp_files(d)) for d in (home.pgpass.parent, home.status_file.parent) if d.exists())


@pytest.mark.slow
@pytest.mark.parametrize("how", ["daemon-and-worker", "worker-or-daemon-alone"])
def test_sigkill_at_random_points_never_breaks_pgpass(home: Home, figures: Figures, how: str):
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    home.workspace.ttl_seconds = 2  # every restart finds the credential due
    home.write_user_lines()
    # A clean first cycle measures how long a cycle takes here and now (a loaded machine is slower).
    first = home.daemon(name="first", env={})
    started = time.monotonic()
    home.wait_first_rotation(timeout=60)
    cycle_seconds = time.monotonic() - started
    first.kill_group()
    kinds: Counter[str] = Counter()
    points_kind: Counter[str] = Counter()
    points: list[float] = []
    violations: list[str] = []
    mid_write = 0
    for i in range(KILLS_PER_TEST):
        home.rig.credential_seen.clear()
        stale = _temp_names([home.pgpass.parent, home.status_file.parent])
        daemon = home.daemon(name=f"kill-{i}", sample_ps=i % 10 == 0)
        begun = time.monotonic()
        point = rng.random()
        if point < 0.4:
            # The moment a temp file appears: the worker is inside the atomic write of .pgpass or status.json.
            points_kind["in an atomic write"] += 1
            _spin_until_temp_file(home, since=stale, timeout=cycle_seconds * 5 + 5)
        elif point < 0.7:
            # Soon after the workspace answered: writing .pgpass, then status.json.
            points_kind["after the credential answer"] += 1
            home.rig.credential_seen.wait(timeout=30)
            time.sleep(rng.uniform(0.0, 0.3))
        else:
            points_kind["anywhere in the cycle"] += 1
            time.sleep(rng.uniform(0.1, cycle_seconds + 0.3))
        points.append(time.monotonic() - begun)
        workers = daemon.worker_pids()
        if how == "daemon-and-worker":
            kinds["daemon and worker (process group)"] += 1
            daemon.kill_group()
        elif i % 2 == 0 and workers:
            kinds["worker, then daemon"] += 1
            for pid in workers:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(rng.uniform(0.0, 0.5))
            daemon.kill_group()
        else:
            kinds["daemon alone (its worker finishes as an orphan)"] += 1
            with suppress(ProcessLookupError):
                os.kill(daemon.pid, signal.SIGKILL)
            daemon.proc.wait(timeout=30)
            for pid in workers:
                wait_for(functools.partial(_gone, pid), timeout=60)
        mid_write += 1 if _leftover_temps(home) else 0
        violations += [f"kill {i} at {points[-1]:.2f} s: {p}" for p in check_files(home)]
    # The next clean cycle removes what the kills left behind and leaves a working credential.
    home.workspace.ttl_seconds = 3600
    result = home.rotator("--once", "--instance", DEMO_INSTANCE, *home.target_flags())
    leftovers = _leftover_temps(home)
    login = home.login()
    violations += check_files(home)
    figures.record(
        f"process/sigkill-{how}",
        group=GROUP,
        injected=f"{KILLS_PER_TEST} SIGKILLs of the {', '.join(f'{k} ({n})' for k, n in sorted(kinds.items()))}, "
        f"each followed by a restart: {', '.join(f'{n} {k}' for k, n in sorted(points_kind.items()))} "
        f"({min(points):.2f}-{max(points):.2f} s after the start; a cycle took {cycle_seconds:.1f} s); "
        f"2 s credentials; seed {seed}",
        goal="after every kill `.pgpass` parses, is 0600, user lines intact, ≤ 1 line of ours holding an issued "
        "credential; no temp file after the next cycle; psql logs in",
        measured=f"{len(violations)} violations; {mid_write} kills left a temp file behind (each 0600); "
        f"{leftovers} temp files after the next cycle; {len(home.workspace.issued)} credentials issued; "
        f"psql login {'ok' if login.returncode == 0 else 'FAILED'}",
        kills=KILLS_PER_TEST,
        violations=len(violations),
        kills_leaving_temp_files=mid_write,
        kill_points=dict(points_kind),
        temps_after_next_cycle=leftovers,
        seed=seed,
    )
    assert violations == []
    assert result.returncode == 0, result.stderr
    assert leftovers == 0
    assert login.returncode == 0, login.stderr


def test_two_daemons_on_one_config_keep_one_consistent_line(home: Home, figures: Figures):
    """Two rotators on one `.pgpass`, each with its own state folder (two services of one user, a laptop's service
    and a container sharing the file): both run, and the file's lock and the newer-credential-wins rule keep it
    consistent; nothing is lost. (A second scheduler of the *same* config and state folder is refused with one line
    instead, exit 0: tests/integration/test_lifecycle.py.)"""
    home.workspace.ttl_seconds = 8
    home.write_user_lines()
    first = home.daemon(name="first")
    second = home.daemon(name="second", env={"DATABRICKS_LABS_STATE_DIR": str(home.root / "state-second")})
    with home.watch() as watch:
        home.wait_first_rotation()
        with home.judge() as judge:
            time.sleep(30)
            both_alive = first.alive() and second.alive()
        counts = judge.counts
    codes = first.terminate(), second.terminate()
    logs = "\n".join(log_lines(home))  # the workers' lines are in the log file, not the schedulers' stderr
    kept_newer = logs.count("Keeping the newer credential")
    rotations = logs.count("Rotated demo-instance")
    figures.record(
        "process/two-daemons",
        group=GROUP,
        injected="two `databricks-oauth-rotator run` on one .pgpass (two state folders) for 30 s, 8 s credentials",
        goal="both keep running; one line per key, always a valid credential, never an older one over a newer; "
        "user lines intact; 0 psql logins fail while a valid credential exists",
        measured=f"both running: {both_alive}; {rotations} rotations between them, {len(watch.writes)} credentials "
        f"written, {kept_newer} older ones refused, {len(watch.anomalies)} anomalies; {counts.text()} "
        f"({counts.superseded} more lost the test server's supersede race)",
        rotations=rotations,
        credentials_written=len(watch.writes),
        older_refused=kept_newer,
        anomalies=len(watch.anomalies),
        data=counts.summary(),
    )
    assert both_alive and codes == (0, 0)
    assert watch.anomalies == [], watch.anomalies
    assert counts.failed == 0 and counts.failed_no_valid == 0, counts.failures
    assert len(watch.writes) >= 4


def test_a_longer_lived_credential_from_another_rotator_is_never_replaced_by_a_shorter_one(
    home: Home, figures: Figures
):
    """Another copy (another machine sharing the file, the Python API) wrote a credential that outlives the ones
    this daemon gets: the daemon must leave it in place rather than put its own, older-expiring one over it."""
    from databricks.sdk import WorkspaceClient

    home.write_user_lines()
    home.workspace.ttl_seconds = 3600
    other = WorkspaceClient(config=home.workspace.sdk_config())
    theirs = other.database.generate_database_credential(instance_names=[DEMO_INSTANCE]).token
    assert theirs
    home.pgpass.write_bytes(pgpass.merge(home.pgpass.read_bytes(), [pgpass.PgpassEntry(*home.key, password=theirs)]))
    home.workspace.ttl_seconds = 12
    issued_before = len(home.workspace.issued)
    with home.watch() as watch:
        daemon = home.daemon()
        wait_for(lambda: len(home.workspace.issued) >= issued_before + 3, timeout=60)
        watch.check()
    code = daemon.terminate()
    kept = home.current_token() == theirs
    refused = "\n".join(log_lines(home)).count("Keeping the newer credential")  # a worker's line: in the log
    ours = len(home.workspace.issued) - issued_before
    figures.record(
        "process/longer-lived-credential-kept",
        group=GROUP,
        injected="another rotator wrote a 1-hour credential on our line; this daemon gets 12 s credentials",
        goal="the longer-lived credential stays; never an older-expiring one written over it",
        measured=f"{ours} credentials fetched by the daemon, {refused} kept out of the file, the 1-hour one "
        f"{'still in place' if kept else 'REPLACED'}; {len(watch.anomalies)} anomalies",
        fetched=ours,
        refused=refused,
        anomalies=len(watch.anomalies),
    )
    assert watch.anomalies == [], watch.anomalies
    assert kept and refused >= 1 and code == 0
