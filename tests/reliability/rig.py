"""What the reliability scenarios watch while the product runs: psql logins, the `.pgpass` file, the daemon's
processes, and every place a secret could leak to.

* `Lakebase` wraps the test server's password setter so that, as on real Lakebase, a credential that is already
  expired never replaces a working one, and remembers which credential the role currently accepts.
* `PgpassWatch` reads `.pgpass` every 50 ms and records every anomaly: a missing file or line, a wider mode, a
  changed user line, a second line for our key, an empty, expired, unknown or other user's token, or an older
  credential written over a newer one.
* `LoginJudge` logs in with the real `psql` in the background and sorts each failure: the test server's own
  supersede race (it keeps one password per role, real Lakebase keeps every unexpired credential), a failure
  while a valid credential existed (the product's fault), or one while none did (an outage longer than the
  credential's life).
* `Daemon` runs `python -m databricks.labs.oauth_rotator run ...` in its own session and samples `ps auxww`.
* `SecretsCollector` gathers every issued secret and every haystack of the session for the final leak scan.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from databricks.labs.oauth_rotator.files import pgpass
from tests.integration.conftest import USER, UserHome
from tests.rigs.postgres import LocalPostgres
from tests.rigs.tokens import IssuedCredential
from tests.rigs.workspace import DEMO_INSTANCE, FakeWorkspace

USER_LINES = (
    b"# my own databases, written by hand\n",
    b"prod.example.com:5432:*:alice:hunter2\n",
    b"localhost:*:*:postgres:local\\:admin\n",
    b"127.0.0.1:*:*:*:an-old-password-that-would-shadow-ours\n",
)
"""A user's own `.pgpass`: a comment, two lines for other servers, and a wildcard line that libpq would use
for our key if our line came after it (the product must put its line first and keep every other byte)."""


class ProductGap(AssertionError):
    """A check that fails because of a known product gap; such tests are `xfail(raises=ProductGap, strict=True)`,
    so any other failure in them still fails the run, and the fix of the gap turns them into an XPASS failure."""


def wait_for(condition: Callable[[], Any], *, timeout: float, interval: float = 0.05) -> float | None:
    """Seconds until `condition()` is true, or None after `timeout`."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            return None
        time.sleep(interval)


class Lakebase:
    """The test server's password per role, set the way Lakebase treats credentials.

    The rig sets the role's password at issue time, which revokes the previous credential at once; real Lakebase
    keeps every credential valid until it expires. An already-expired credential is never set here (on Lakebase
    it could not log in, and the previous one would still work), so the expired-token fault tests the product,
    not the rig.
    """

    def __init__(self, workspace: FakeWorkspace, postgres: LocalPostgres) -> None:
        self._workspace = workspace
        self._postgres = postgres
        self._lock = threading.Lock()
        self._current: dict[str, str] = {}
        self.issued_at: dict[str, float] = {}
        self.credential_seen = threading.Event()
        workspace.on_credential = self._on_credential

    def _on_credential(self, user: str, token: str, expires_at: datetime) -> None:
        now = time.time()
        with self._lock:
            self.issued_at[token] = now
        self.credential_seen.set()
        if expires_at.timestamp() <= now:
            return
        self._postgres.set_password(user, token, expires_at)
        with self._lock:
            self._current[user] = token

    def role_password(self, user: str = USER) -> str | None:
        with self._lock:
            return self._current.get(user)

    def credential(self, token: str | None) -> IssuedCredential | None:
        if not token:
            return None
        return next((c for c in reversed(self._workspace.issued) if c.token == token), None)

    def valid(self, token: str | None, at: float, user: str = USER) -> bool:
        """Whether `token` is a credential issued for `user` that had not expired at `at`."""
        found = self.credential(token)
        return found is not None and found.user == user and found.expires_at.timestamp() > at

    def any_valid(self, at: float, user: str = USER) -> bool:
        """Whether some credential issued for `user` by `at` was still valid at `at`."""
        return any(
            c.user == user and c.expires_at.timestamp() > at and self.issued_at.get(c.token, 0) <= at
            for c in list(self._workspace.issued)
        )

    def issued_after(self, moment: float, user: str = USER) -> list[IssuedCredential]:
        return [c for c in list(self._workspace.issued) if c.user == user and self.issued_at.get(c.token, 0) >= moment]


class PgpassWatch:
    """Checks `.pgpass` every `interval` seconds on a thread; `anomalies` lists every broken invariant."""

    def __init__(
        self,
        path: Path,
        lakebase: Lakebase,
        key: tuple[str, str, str, str],
        *,
        user_lines: Sequence[bytes] = USER_LINES,
        interval: float = 0.05,
    ) -> None:
        self.path = path
        self.key = key
        self._lakebase = lakebase
        self._user_lines = list(user_lines)
        self._interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pgpass-watch", daemon=True)
        self.anomalies: list[str] = []
        self.writes: list[tuple[float, str]] = []
        self.checks = 0
        self._last_expiry: float | None = None
        self.allow_missing = False
        self.allow_mode: int | None = None

    def __enter__(self) -> PgpassWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    @contextmanager
    def user_edit(self, new_user_lines: Sequence[bytes] | None = None) -> Iterator[None]:
        """The user edits the file: checks wait, and the edited lines are the ones to keep from then on."""
        with self._lock:
            yield
            if new_user_lines is not None:
                self._user_lines = list(new_user_lines)

    @property
    def current_token(self) -> str | None:
        return self.writes[-1][1] if self.writes else None

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with self._lock:
                    self.check()
            except Exception as err:  # a bug in the watch must show, not silently stop the checks
                self.anomalies.append(f"watch error: {type(err).__name__}: {err}")

    def _anomaly(self, text: str) -> None:
        if len(self.anomalies) < 200:
            self.anomalies.append(f"{time.strftime('%H:%M:%S')} {text}")

    def check(self) -> None:
        """One look at the file (also called by tests after each step)."""
        self.checks += 1
        now = time.time()
        try:
            mode = stat.S_IMODE(os.stat(self.path).st_mode)
            data = self.path.read_bytes()
        except FileNotFoundError:
            if self.writes and not self.allow_missing:
                self._anomaly("the file is missing")
            return
        if mode not in {0o600, self.allow_mode}:
            self._anomaly(f"mode {mode:04o}")
        lines = pgpass.parse(data)
        ours = [line for line in lines if line.entry is not None and line.entry.key == self.key]
        others = [line.raw for line in lines if not (line.entry is not None and line.entry.key == self.key)]
        if others != self._user_lines:
            self._anomaly(f"user lines changed: {len(others)} lines, expected {len(self._user_lines)}")
        if len(ours) > 1:
            self._anomaly(f"{len(ours)} lines for our key")
        if not ours:
            if self.writes and not self.allow_missing:
                self._anomaly("our line is missing")
            return
        entry = ours[0].entry
        assert entry is not None
        if entry.password != self.current_token:
            self.writes.append((now, entry.password))
            self._check_new(entry.password, now)

    def _check_new(self, token: str, now: float) -> None:
        """A credential just written: it must be one the workspace issued for the user, unexpired, not older."""
        found = self._lakebase.credential(token)
        if not token:
            self._anomaly("an empty password was written")
        elif found is None:
            self._anomaly("a password the workspace never issued was written")
        elif found.user != self.key[3]:
            self._anomaly(f"a credential for {found.user} was written on the line for {self.key[3]}")
        elif found.expires_at.timestamp() < now - 1:
            self._anomaly("an expired credential was written")
        elif self._last_expiry is not None and found.expires_at.timestamp() < self._last_expiry:
            self._anomaly("an older credential was written over a newer one")
        if found is not None:
            self._last_expiry = max(self._last_expiry or 0.0, found.expires_at.timestamp())


@dataclass
class LoginCounts:
    attempts: int = 0
    ok: int = 0
    superseded: int = 0
    """Failures of the test server's supersede race: `.pgpass` held a valid credential it had just revoked."""
    failed: int = 0
    """Failures while a valid credential for the user existed: the product's fault."""
    failed_no_valid: int = 0
    """Failures while no credential for the user was valid (an outage that outlasted the credential's life)."""
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "logins": self.attempts,
            "logins_ok": self.ok,
            "logins_failed": self.failed,
            "logins_failed_no_valid_credential": self.failed_no_valid,
            "logins_superseded_by_test_server": self.superseded,
        }

    def text(self) -> str:
        extra = f", {self.failed_no_valid} with no valid credential in existence" if self.failed_no_valid else ""
        return f"{self.attempts} psql logins, {self.failed} failed{extra}"


class LoginJudge:
    """Real `psql -w` logins on a thread, every `interval` seconds, each failure sorted by whose fault it was."""

    def __init__(self, home: UserHome, lakebase: Lakebase, *, interval: float = 0.5, host: str = "127.0.0.1"):
        self._home = home
        self._lakebase = lakebase
        self._interval = interval
        self._host = host
        self.counts = LoginCounts()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="login-judge", daemon=True)

    def __enter__(self) -> LoginJudge:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> LoginCounts:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        return self.counts

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No logins while the user makes `.pgpass` unusable on purpose (deletes it, widens its mode)."""
        self._paused.set()
        time.sleep(self._interval + 0.3)  # an attempt in flight finishes first
        try:
            yield
        finally:
            self._paused.clear()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            if not self._paused.is_set():
                self.attempt()

    def _token(self) -> str | None:
        try:
            data = self._home.pgpass.read_bytes()
        except OSError:
            return None
        return pgpass.lookup(data, self._host, str(self._home.postgres.port), "postgres", USER)

    def attempt(self) -> bool:
        counts = self.counts
        at = time.time()
        role_before, before = self._lakebase.role_password(), self._token()
        result = self._home.postgres.psql_login(user=USER, passfile=self._home.pgpass, host=self._host)
        after, role_after = self._token(), self._lakebase.role_password()
        counts.attempts += 1
        if result.returncode == 0:
            counts.ok += 1
            return True
        tokens = {t for t in (before, after) if t is not None}
        if any(self._lakebase.valid(t, at) for t in tokens):
            if len(tokens) == 1 and before == role_before == role_after:
                counts.failed += 1  # the server refused the very password it holds: not a race
                counts.failures.append(f"{time.strftime('%H:%M:%S')} {result.stderr.strip()[:200]}")
            else:
                counts.superseded += 1
            return False
        if self._lakebase.any_valid(at):
            counts.failed += 1
            reason = "no line" if not tokens else "the line held an unusable password"
            counts.failures.append(f"{time.strftime('%H:%M:%S')} {reason}: {result.stderr.strip()[:200]}")
        else:
            counts.failed_no_valid += 1
            counts.failures.append(f"{time.strftime('%H:%M:%S')} no valid credential existed")
        return False


def children(pid: int) -> list[int]:
    """The direct children of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class SecretsCollector:
    """Every secret the session's fake workspaces issued, and every place the product could have leaked one to."""

    _RUN = re.compile(rb"[A-Za-z0-9_-]{24,}")

    def __init__(self) -> None:
        self._workspaces: list[FakeWorkspace] = []
        self._roots: list[Path] = []
        self.outputs: list[str] = []
        self.ps_samples: list[str] = []
        self._lock = threading.Lock()

    def add_workspace(self, workspace: FakeWorkspace) -> None:
        self._workspaces.append(workspace)

    def add_root(self, root: Path) -> None:
        """A user's home: every file under it is scanned except the password file and files the test wrote with a
        secret in them on purpose (`.databrickscfg`, an env file, a fake CLI)."""
        self._roots.append(root)

    def add_output(self, *texts: str) -> None:
        with self._lock:
            self.outputs.extend(t for t in texts if t)

    def add_ps(self, text: str) -> None:
        with self._lock:
            self.ps_samples.append(text)

    @staticmethod
    def _excluded(path: Path, root: Path) -> bool:
        relative = path.relative_to(root)
        name = relative.name
        if name.startswith((".pgpass", "pgpass", ".databrickscfg", "secret")) or ".tmp." in name:
            return True
        return relative.parts[0] in {"bin", "secrets"}

    def secrets(self) -> set[str]:
        found: set[str] = set()
        for workspace in self._workspaces:
            found |= workspace.issued_secrets()
        return found

    def scan(self) -> dict[str, Any]:
        """Counts of what was scanned, and `hits`: (where, secret prefix) for every secret found."""
        secrets = self.secrets()
        fragments: dict[bytes, str] = {}
        plain: list[bytes] = []
        for secret in secrets:
            parts = secret.split(".")
            if len(parts) == 3 and secret.startswith("eyJ"):
                for part in parts[1:]:  # the payload and the signature; the header is shared and public
                    fragments[part.encode()[:24]] = secret
            else:
                plain.append(secret.encode())
        haystacks: list[tuple[str, bytes]] = []
        files = 0
        for root in self._roots:
            for path in root.rglob("*"):
                with suppress(OSError):
                    if path.is_file() and not path.is_symlink() and not self._excluded(path, root):
                        haystacks.append((str(path), path.read_bytes()))
                        files += 1
        haystacks += [(f"output #{i}", t.encode()) for i, t in enumerate(self.outputs)]
        haystacks += [(f"ps auxww sample #{i}", t.encode()) for i, t in enumerate(self.ps_samples)]
        hits: list[tuple[str, str]] = []
        for where, data in haystacks:
            for run in self._RUN.finditer(data):
                found = fragments.get(run.group()[:24])
                if found is not None:
                    hits.append((where, found[:12] + "..."))
            hits += [(where, s[:6].decode() + "...") for s in plain if s in data]
        return {
            "secrets": len(secrets),
            "files": files,
            "outputs": len(self.outputs),
            "ps_samples": len(self.ps_samples),
            "bytes": sum(len(d) for _, d in haystacks),
            "hits": len(hits),
            "where": hits[:20],
        }


class Daemon:
    """`python -m databricks.labs.oauth_rotator run ARGS` as the service runs it, in its own session (so a SIGKILL
    of the group takes its worker child too), output to files, `ps auxww` sampled every 2 s for the leak scan."""

    def __init__(
        self,
        home: UserHome,
        args: Sequence[str],
        *,
        collector: SecretsCollector,
        name: str = "daemon",
        env: dict[str, str] | None = None,
        sample_ps: bool = True,
    ) -> None:
        self.name = name
        self.stdout_path = home.root / f"{name}.stdout"
        self.stderr_path = home.root / f"{name}.stderr"
        argv = [sys.executable, "-m", "databricks.labs.oauth_rotator", "run", *args]
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(
                argv, env={**home.env, **(env or {})}, stdout=out, stderr=err, start_new_session=True, cwd=home.root
            )
        self._collector = collector
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name=f"{name}-ps", daemon=True)
        if sample_ps:
            self._sampler.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def worker_pids(self) -> list[int]:
        return children(self.pid) if self.alive() else []

    def _sample(self) -> None:
        while not self._stop.wait(2.0) and self.alive():
            result = subprocess.run(["ps", "auxww"], capture_output=True, text=True, check=False)
            self._collector.add_ps(result.stdout)

    def kill_group(self) -> None:
        """SIGKILL the daemon and its worker child at once (a power cut for this process tree)."""
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._stop.set()

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, as the service manager stops it; returns the exit code."""
        was_alive = self.alive()
        if was_alive:
            self.proc.terminate()
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            code = -9
        self._stop.set()
        if was_alive:  # a worker it left behind is in its session: it must not outlive the test
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        return code

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""


def load_status(home: UserHome) -> dict[str, Any]:
    try:
        raw = json.loads(home.status_file.read_text())
    except (OSError, ValueError):
        return {}
    return raw.get("targets", {}).get(DEMO_INSTANCE, {}) if isinstance(raw, dict) else {}


def log_lines(home: UserHome) -> list[str]:
    try:
        return home.log_file.read_text(errors="replace").splitlines()
    except OSError:
        return []


def temp_files(directory: Path) -> list[Path]:
    """Temp files of the atomic writer (`.NAME.tmp.<16 hex>`) left in `directory`."""
    return [p for p in directory.iterdir() if re.fullmatch(r"\..+\.tmp\.[0-9a-f]{16}", p.name)]
