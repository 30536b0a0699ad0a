"""The user (or the machine) changes `.pgpass` under the running daemon.

* Edits (a new line, reordered lines, our line deleted, a shadowing line on top) survive every rotation, byte for
  byte, and our line comes back; the scheduler checks the file at every wake (at least once a minute).
* A deleted file is recreated; a file made 0644 (which libpq ignores) is made 0600 again, with a warning (at the
  next refresh: with nothing due, not yet within a minute, a known gap).
* A full disk and a read-only file system: a clear error in the log and in status, the old file untouched, and
  rotation resumes once the problem is fixed. Root bypasses permission bits, so both are real mounts: a 64 KiB
  tmpfs filled to the last page, and the same tmpfs remounted read-only.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.reliability.conftest import Figures, Home
from tests.reliability.rig import USER_LINES, ProductGap, load_status, log_lines, wait_for

pytestmark = pytest.mark.timeout(300)  # scenarios wait for real cycles on a shared, loaded machine
GROUP = "File faults"
WAKE_SECONDS = 60
"""The scheduler wakes at least this often; a check of the file happens at every wake."""
RECOVERY_SECONDS = 15
"""After a fixed disk: the ordinary backoff after one or two failures is 2.5-10 s."""


def _is_ours(home: Home, line: bytes) -> bool:
    return line.startswith(f"127.0.0.1:{home.postgres.port}:*:".encode())


def _replace_like_an_editor(path: Path, data: bytes) -> None:
    """Write a new version next to the file and rename it over (vim, VS Code, sed -i do this)."""
    tmp = path.with_name(path.name + ".swp")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    os.replace(tmp, path)


def _wait_for_new_credential(home: Home, old: str | None, timeout: float) -> float | None:
    return wait_for(
        lambda: (t := home.current_token()) is not None and t != old and home.rig.valid(t, time.time()), timeout=timeout
    )


def test_the_users_edits_survive_rotations_and_our_line_comes_back(home: Home, figures: Figures):
    home.workspace.ttl_seconds = 12  # refreshed every 6 s
    home.write_user_lines()
    edits = []
    daemon = home.daemon()
    with home.watch() as watch:
        home.wait_first_rotation()

        def edit(what: str, new_lines: list[bytes], change: Callable[[], None]) -> None:
            time.sleep(2)  # the daemon is asleep between cycles, as it is nearly always
            token = home.current_token()
            with watch.user_edit(new_lines):
                change()
            edits.append((what, _wait_for_new_credential(home, token, 30)))

        # 1. A new line at the end, written in place.
        lines = [*USER_LINES, b"db.internal:6432:app:carol:pa\\:ss\n"]
        edit("added a line", lines, lambda: _append(home.pgpass, lines[-1]))
        # 2. Lines reordered with an editor (a copy renamed over the file).
        lines = [lines[0], lines[2], lines[1], *lines[3:]]
        edit("reordered lines", lines, lambda: _replace_like_an_editor(home.pgpass, _with_ours(home, lines)))
        # 3. A catch-all line on top, which libpq would use before ours.
        lines = [b"*:*:*:*:my-old-password\n", *lines]
        edit(
            "added a shadowing line on top",
            lines,
            lambda: _replace_like_an_editor(home.pgpass, _with_ours(home, lines)),
        )
        # 4. Our line deleted; 5. the whole file deleted.
        watch.allow_missing = True
        edit("deleted our line", lines, lambda: _replace_like_an_editor(home.pgpass, b"".join(lines)))
        edit("deleted the file", [], home.pgpass.unlink)
        watch.allow_missing = False
        time.sleep(1)
        watch.check()
    code = daemon.terminate()
    login = home.login()
    figures.record(
        "file/user-edits",
        group=GROUP,
        injected="while the daemon rotates 12 s credentials the user adds a line, reorders lines with an editor "
        "(rename over), puts a catch-all `*:*:*:*:...` line on top, deletes our line, then deletes the file",
        goal="every edit kept byte for byte through each rotation; our line back (and first) at the next cycle; "
        "the file recreated 0600",
        measured="; ".join(
            f"{what}: next credential after {t:.1f} s" if t is not None else f"{what}: NOTHING" for what, t in edits
        )
        + f"; {len(watch.writes)} credentials written, {len(watch.anomalies)} anomalies; psql after: "
        + ("ok" if login.returncode == 0 else "FAILED"),
        anomalies=len(watch.anomalies),
        data={what.replace(" ", "_") + "_seconds": t for what, t in edits},
    )
    assert watch.anomalies == [], watch.anomalies
    assert all(t is not None for _, t in edits), edits
    assert code == 0 and login.returncode == 0, login.stderr


def _append(path: Path, line: bytes) -> None:
    with path.open("ab") as f:
        f.write(line)


def _with_ours(home: Home, user_lines: list[bytes]) -> bytes:
    """The user's lines in their new order, with our line where it was (before the first line that follows it)."""
    current = home.pgpass.read_bytes().splitlines(keepends=True)
    ours = next(line for line in current if _is_ours(home, line))
    after = current[current.index(ours) + 1 :]
    at = user_lines.index(after[0]) if after and after[0] in user_lines else len(user_lines)
    return b"".join([*user_lines[:at], ours, *user_lines[at:]])


@pytest.mark.slow
def test_a_deleted_line_is_restored_within_a_minute_when_nothing_is_due(home: Home, figures: Figures):
    """One-hour credentials: nothing is due, so only the scheduler's check of the file at each wake brings our line
    back. The line goes 2 s after a cycle, when the scheduler has just gone to sleep: the longest wait there is."""
    home.workspace.ttl_seconds = 3600
    home.write_user_lines()
    daemon = home.daemon()
    home.wait_first_rotation()
    time.sleep(2)
    lines = home.pgpass.read_bytes().splitlines(keepends=True)
    home.pgpass.write_bytes(b"".join(line for line in lines if not _is_ours(home, line)))
    line_back = wait_for(lambda: home.current_token() is not None, timeout=WAKE_SECONDS + 30)
    login = home.login()
    code = daemon.terminate()
    restored = b"".join(line for line in home.pgpass.read_bytes().splitlines(keepends=True) if not _is_ours(home, line))
    figures.record(
        "file/line-deleted-nothing-due",
        group=GROUP,
        injected="with 1-hour credentials (nothing due for 50 min): our line deleted 2 s after a cycle",
        goal="restored at the scheduler's next wake (≤ 60 s), the user's lines untouched",
        measured=(f"restored after {line_back:.1f} s" if line_back is not None else "NOT restored within 90 s")
        + f"; user lines {'intact' if restored == b''.join(USER_LINES) else 'CHANGED'}; psql after: "
        + ("ok" if login.returncode == 0 else "FAILED"),
        line_restored_seconds=line_back,
    )
    assert line_back is not None and line_back <= WAKE_SECONDS + 15
    assert restored == b"".join(USER_LINES)
    assert login.returncode == 0 and code == 0


def test_a_pgpass_others_can_read_is_made_private_again_with_a_warning(home: Home, figures: Figures):
    home.workspace.ttl_seconds = 20
    home.write_user_lines()
    daemon = home.daemon()
    with home.watch() as watch:
        home.wait_first_rotation()
        with watch.user_edit():
            watch.allow_mode = 0o644
            home.pgpass.chmod(0o644)
        ignored = home.login()  # libpq refuses to read it now
        fixed = wait_for(lambda: stat.S_IMODE(home.pgpass.stat().st_mode) == 0o600, timeout=30)
        watch.allow_mode = None
    code = daemon.terminate()
    warnings = [line for line in log_lines(home) if "WARNING" in line and "0644" in line]
    figures.record(
        "file/mode-0644",
        group=GROUP,
        injected="`chmod 644 ~/.pgpass` while the daemon rotates 20 s credentials (libpq then ignores the file)",
        goal="mode 0600 again at the next cycle, with a warning in the log",
        measured=(f"0600 again after {fixed:.1f} s" if fixed is not None else "NOT fixed within 30 s")
        + f"; {len(warnings)} warning(s) in the log; a login meanwhile: exit {ignored.returncode}",
        fixed_seconds=fixed,
        warnings=len(warnings),
    )
    assert fixed is not None
    assert warnings, log_lines(home)[-5:]
    assert watch.anomalies == [] and code == 0, watch.anomalies
    assert home.login().returncode == 0


@pytest.mark.slow
def test_a_pgpass_others_can_read_is_made_private_within_a_minute_when_nothing_is_due(home: Home, figures: Figures):
    home.workspace.ttl_seconds = 3600
    home.write_user_lines()
    daemon = home.daemon()
    home.wait_first_rotation()
    time.sleep(2)  # the scheduler has just gone to sleep
    home.pgpass.chmod(0o644)
    fixed = wait_for(lambda: stat.S_IMODE(home.pgpass.stat().st_mode) == 0o600, timeout=WAKE_SECONDS + 15)
    code = daemon.terminate()
    figures.record(
        "file/mode-0644-nothing-due",
        group=GROUP,
        injected="`chmod 644 ~/.pgpass` 2 s after a cycle, with 1-hour credentials (nothing due for 50 min)",
        goal="mode 0600 again at the scheduler's next wake (≤ 60 s): until then libpq reads no password at all",
        measured=f"0600 again after {fixed:.1f} s" if fixed is not None else f"still 0644 after {WAKE_SECONDS + 15} s",
        note="" if fixed is not None else "fixed only at the next refresh",
        fixed_seconds=fixed,
    )
    assert code == 0
    if fixed is None:
        raise ProductGap(f"still 0644 {WAKE_SECONDS + 15} s later")


@contextmanager
def tmpfs(where: Path, size: str = "64k") -> Iterator[Path]:
    where.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {result.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def _fill(directory: Path) -> int:
    """Fill the file system to the last byte; returns how much was written."""
    written = 0
    with (directory / "filler").open("wb", buffering=0) as f:
        for size in (4096, 512, 1):
            try:
                while True:
                    written += f.write(b"\0" * size)
            except OSError:
                continue
    return written


FIXES = {
    "disk-full": ("No space left on device", "free some space"),
    "read-only": ("Read-only file system", "writable file system"),
}


@pytest.mark.parametrize("fault", list(FIXES))
def test_a_full_disk_or_read_only_directory_is_reported_and_the_old_file_survives(
    home: Home, figures: Figures, fault: str
):
    with tmpfs(home.root / "mnt") as mnt:
        home.pgpass_path = mnt / ".pgpass"
        home.workspace.ttl_seconds = 12
        home.write_user_lines()
        daemon = home.daemon()
        home.wait_first_rotation()
        before = home.pgpass.read_bytes()
        if fault == "disk-full":
            filled = _fill(mnt)
        else:
            filled = 0
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        message, fix = FIXES[fault]
        reported = wait_for(lambda: message in (load_status(home).get("last_error") or ""), timeout=40)
        status = load_status(home)
        rows = json.loads(home.labs(json.dumps({"command": "status", "flags": {}, "output_type": ""})).stdout)
        intact = home.pgpass.read_bytes() == before and stat.S_IMODE(home.pgpass.stat().st_mode) == 0o600
        logged = [line for line in log_lines(home) if message in line and "Rotation of" in line]
        # The user fixes it.
        if fault == "disk-full":
            (mnt / "filler").unlink()
        else:
            subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
        fixed_at = time.time()
        recovered = wait_for(
            lambda: home.rig.issued_at.get(home.current_token() or "", 0) >= fixed_at, timeout=RECOVERY_SECONDS
        )
        alive = daemon.alive()
        code = daemon.terminate()
    figures.record(
        f"file/{fault}",
        group=GROUP,
        injected="the directory of `.pgpass` is a 64 KiB tmpfs: "
        + (f"filled to the last byte ({filled} bytes)" if fault == "disk-full" else "remounted read-only")
        + ", then fixed",
        goal="a clear error in the log and in status (with the fix), the old file intact, rotation resumed "
        "within the backoff cap once fixed",
        measured=(f"reported after {reported:.1f} s" if reported is not None else "NOT reported")
        + f" ({len(logged)} log line(s), status fix {status.get('fix')!r}); old file "
        + ("intact" if intact else "CHANGED")
        + (
            f"; rotation resumed {recovered:.1f} s after the fix"
            if recovered is not None
            else f"; rotation NOT resumed within {RECOVERY_SECONDS} s of the fix "
            f"(next try at +{_next_try(status):.0f} s)"
        ),
        reported_seconds=reported,
        recovered_seconds=recovered,
    )
    assert reported is not None, log_lines(home)[-5:]
    assert fix in (status.get("fix") or "") and status.get("needs_person") is True, status
    assert any(message in row.get("last_error", "") for row in rows), rows
    assert intact and len(logged) == 1, logged
    assert alive and code == 0
    assert recovered is not None, (
        f"no rotation within {RECOVERY_SECONDS} s of the fix; next try at +{_next_try(status):.0f} s"
    )


def _next_try(status: dict[str, object]) -> float:
    next_attempt = status.get("next_attempt")
    return float(next_attempt) - time.time() if isinstance(next_attempt, (int, float)) else float("nan")
