"""The local pgbouncer front: its files, written from what `.pgpass` holds after a cycle; its reload; its supervisor.

Clients that take only a fixed user and password (BI tools, pgAdmin, tokio-postgres) log in to pgbouncer on
127.0.0.1:6432 with a local password; pgbouncer logs in to Lakebase with the credential the cycle wrote into its
`[databases]` entry (`password=`), over TLS. The cycle rewrites the files with the one writer (lock, 0600, atomic
replace) and sends pgbouncer SIGHUP when they changed: new server connections use the new credential, open ones
are left alone. The scheduler runs pgbouncer as a child and restarts it with backoff when it dies (`Supervisor`).

Stdlib and our plain modules only: the scheduler imports this, and never the SDK.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from databricks.labs.oauth_rotator.config import PgbouncerConfig, RotatorConfig
from databricks.labs.oauth_rotator.errors import ConfigError, RotatorError
from databricks.labs.oauth_rotator.files import pgbouncer_ini, pgpass, writer
from databricks.labs.oauth_rotator.files.pgservice import service_name
from databricks.labs.oauth_rotator.paths import front_file, pgbouncer_dir_for
from databricks.labs.oauth_rotator.rotation.state import Status
from databricks.labs.oauth_rotator.rotation.verify import DEFAULT_DATABASE
from databricks.labs.oauth_rotator.secrets import without_secrets

logger = logging.getLogger(__name__)

FALLBACK_BINARY = "/usr/sbin/pgbouncer"
"""Where Debian's and Ubuntu's package puts it (not on a user's PATH: /usr/sbin)."""
RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Seconds before restarting a pgbouncer that died: the first restarts are quick, a crash loop slows down."""
STEADY_SECONDS = 60.0
"""A pgbouncer that ran this long before dying starts the backoff again from the first delay."""
STOP_SECONDS = 5.0
SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
"""The first message a PostgreSQL client may send; any PostgreSQL server (pgbouncer too) answers one byte."""


@dataclass(frozen=True)
class FrontFiles:
    """The files of the front, all in one private folder."""

    folder: Path

    @property
    def ini(self) -> Path:
        return self.folder / "pgbouncer.ini"

    @property
    def auth_file(self) -> Path:
        return self.folder / "userlist.txt"

    @property
    def pidfile(self) -> Path:
        return self.folder / "pgbouncer.pid"

    @property
    def logfile(self) -> Path:
        return self.folder / "pgbouncer.log"

    @property
    def password_file(self) -> Path:
        return self.folder / "password"


def files_for(config: RotatorConfig, environ: Mapping[str, str] | None = None) -> FrontFiles:
    return FrontFiles(pgbouncer_dir_for(config, environ))


def find_binary(front: PgbouncerConfig) -> str | None:
    """The pgbouncer program to run: `binary` when it is an executable file, else `pgbouncer` on PATH, else
    /usr/sbin/pgbouncer; None when there is none."""
    if front.binary:
        named = os.path.expanduser(front.binary)
        found = shutil.which(named) if os.sep not in named else named
        return found if found and os.path.isfile(found) and os.access(found, os.X_OK) else None
    found = shutil.which("pgbouncer")
    if found:
        return found
    return FALLBACK_BINARY if os.access(FALLBACK_BINARY, os.X_OK) else None


def binary_version(binary: str) -> tuple[int, int, int] | None:
    """`pgbouncer --version` as numbers (None when it cannot be run or read)."""
    try:
        result = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return pgbouncer_ini.parse_version(result.stdout + result.stderr)


def service_user(front: PgbouncerConfig) -> tuple[str, int, int] | None:
    """Under root, the OS user pgbouncer runs as (name, uid, gid): pgbouncer refuses to run as root. None otherwise."""
    if sys.platform == "win32" or os.geteuid() != 0:
        return None
    import pwd

    name = front.run_as
    if not name:
        raise ConfigError(
            "pgbouncer.run_as: pgbouncer refuses to run as root", fix="set pgbouncer.run_as to an unprivileged OS user"
        )
    try:
        entry = pwd.getpwnam(name)
    except KeyError as err:
        raise ConfigError(f"pgbouncer.run_as: no OS user named {name!r}") from err
    return name, entry.pw_uid, entry.pw_gid


def check_machine(config: RotatorConfig, environ: Mapping[str, str] | None = None, *, port: bool = True) -> None:
    """What the front needs from this machine, checked before anything is written: pgbouncer installed, a user to
    run it as, and, for a managed front that is not running yet, a free listen port. `ConfigError` (exit 2).

    A cycle's worker skips the port (`port=False`): its scheduler checked it at start, and a port held for a moment
    by something else while its pgbouncer restarts is the supervisor's to retry, not a reason to stop the service.
    """
    front = config.front
    if front is None:
        return
    if find_binary(front) is None:
        named = f" at {front.binary}" if front.binary else " (on PATH or at /usr/sbin/pgbouncer)"
        raise ConfigError(
            f"pgbouncer: the pgbouncer program is not installed{named}",
            fix="install it (apt install pgbouncer, brew install pgbouncer) or set pgbouncer.binary",
        )
    if not front.is_managed:
        return
    service_user(front)
    files = files_for(config, environ)
    if not port or running_pid(files.pidfile) is not None:
        return  # ours already holds the port
    address, number = front.effective_listen_address, front.effective_listen_port
    problem = port_problem(address, number)
    if problem:
        raise ConfigError(
            f"pgbouncer.listen_port: cannot listen on {address}:{number}: {problem}",
            fix="set pgbouncer.listen_port to a free port, or stop what listens there",
        )


def port_problem(address: str, port: int) -> str | None:
    """Why nothing could listen on `address:port` now (taken, not an address of ours), or None."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as pgbouncer sets it: TIME_WAIT is no conflict
        try:
            probe.bind((address, port))
        except OSError as err:
            return err.strerror or str(err)
    return None


def listener_problem(address: str, port: int, timeout: float = 3.0) -> str | None:
    """Why the listener does not answer like a PostgreSQL server, or None: an SSLRequest must get `N` or `S` back."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            conn.sendall(SSL_REQUEST)
            answer = conn.recv(1)
    except OSError as err:
        return err.strerror or type(err).__name__
    return None if answer in {b"N", b"S"} else f"unexpected answer {answer!r} to an SSLRequest"


def running_pid(pidfile: Path) -> int | None:
    """The pid in pgbouncer's pidfile when that process is alive (and, where /proc tells, is pgbouncer)."""
    try:
        pid = int(pidfile.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, someone else's
    comm = Path(f"/proc/{pid}/comm")
    try:
        if comm.exists() and comm.read_text(encoding="utf-8").strip() != "pgbouncer":
            return None  # a stale pidfile whose pid was reused
    except OSError:
        pass
    return pid


def reload(pidfile: Path) -> int | None:
    """SIGHUP to the pgbouncer of `pidfile` (it re-reads the ini and the auth file); its pid, or None if none runs."""
    pid = running_pid(pidfile)
    hangup = getattr(signal, "SIGHUP", None)
    if pid is None:
        return None
    if hangup is None:  # Windows: pgbouncer there reloads on `RELOAD` at its admin console, or a service restart
        logger.warning(f"pgbouncer (pid {pid}) must be reloaded by hand here: its files changed")
        return None
    try:
        os.kill(pid, hangup)
    except OSError as err:
        logger.warning(f"Could not reload pgbouncer (pid {pid}): {err.strerror or err}")
        return None
    return pid


def local_password(front: PgbouncerConfig, files: FrontFiles) -> str:
    """The password clients log in with: the configured one, else the one generated once into `password` (0600)."""
    if front.password:
        return front.password
    fresh = secrets.token_urlsafe(24)
    writer.update_file(
        files.password_file, lambda old: old if old.strip() else (fresh + "\n").encode(), delegate=_delegate(front)
    )
    return files.password_file.read_text(encoding="utf-8").strip()


def prepare_folder(front: PgbouncerConfig, files: FrontFiles) -> None:
    """The private folder, owned by the user pgbouncer runs as: new files in it get that owner (the writer gives a
    file root creates its folder's owner), so pgbouncer can read them and no one else can."""
    writer.make_private_directories(files.folder)
    user = service_user(front)
    if user is not None:
        os.chown(files.folder, user[1], user[2])
        os.chmod(files.folder, 0o700)


def _delegate(front: PgbouncerConfig) -> int | None:
    """The uid of the user pgbouncer runs as when it is not us (under root): its folder is handed to it."""
    user = service_user(front)
    return user[1] if user is not None else None


@dataclass
class FrontUpdate:
    """What writing the front's files did."""

    changed: bool = False
    reloaded: int | None = None
    """The pid of the pgbouncer that was sent SIGHUP."""
    refused: dict[str, str] = field(default_factory=dict)
    """Targets whose credential pgbouncer must not get (too long for it), and why."""
    databases: list[str] = field(default_factory=list)


def write_front(
    config: RotatorConfig,
    pgpass_data: bytes,
    status: Status,
    *,
    files: FrontFiles | None = None,
    version: tuple[int, int, int] | None = None,
) -> FrontUpdate:
    """Write pgbouncer's ini and auth file for every configured target from the credential on its `.pgpass` line
    (the primary host), and reload pgbouncer when either changed. Raises `FileWriteError` when a file cannot be
    written (the previous one is untouched)."""
    front = config.front
    if front is None:
        return FrontUpdate()
    files = files or files_for(config)
    prepare_folder(front, files)
    update = FrontUpdate()
    upstreams = _upstreams(config, pgpass_data, status, version, update.refused)
    ini = pgbouncer_ini.render_ini(_settings(front, files), upstreams)
    auth = pgbouncer_ini.render_auth_file({front.effective_user: local_password(front, files)})
    changed_auth = writer.update_file(files.auth_file, lambda _old: auth, delegate=_delegate(front))
    changed_ini = writer.update_file(files.ini, lambda _old: ini, delegate=_delegate(front))
    update.changed = changed_auth or changed_ini
    update.databases = [u.name for u in upstreams]
    _describe_front(front, files, update.databases)
    if update.changed:
        update.reloaded = reload(files.pidfile)
    return update


def _describe_front(front: PgbouncerConfig, files: FrontFiles, databases: list[str]) -> None:
    """`state/pgbouncer.json` for `status`, which reads it without the config: how to connect, and where the
    generated password is (by name: the password itself stays in its own 0600 file)."""
    described = {
        "address": front.effective_listen_address,
        "port": front.effective_listen_port,
        "unix_socket_dir": front.unix_socket_dir,
        "user": front.effective_user,
        "databases": databases,
        "password_file": None if front.password else str(files.password_file),
    }
    data = (json.dumps(described, indent=2, sort_keys=True) + "\n").encode()
    try:
        writer.make_private_directories(front_file().parent)
        writer.update_file(front_file(), lambda _old: data)
    except RotatorError as err:
        logger.warning(f"Could not describe the pgbouncer front for `status`: {err}")


def _upstreams(
    config: RotatorConfig,
    pgpass_data: bytes,
    status: Status,
    version: tuple[int, int, int] | None,
    refused: dict[str, str],
) -> list[pgbouncer_ini.Upstream]:
    """A database entry per target with a credential on file that this pgbouncer can take; `refused` gets the rest."""
    upstreams = []
    for target in config.targets:
        known = status.targets.get(target.label)
        keys = [tuple(k) for k in known.keys if len(k) == 4] if known is not None else []
        if not keys:
            continue
        host, port, database, user = keys[0]
        password = pgpass.lookup(pgpass_data, host, port, database, user)
        if not password:
            continue
        reason = pgbouncer_ini.too_long(password, version)
        if reason is not None:
            refused[target.label] = f"{target.label}: not handed to pgbouncer: {reason}"
            continue
        dbname = database if database != "*" else DEFAULT_DATABASE
        upstreams.append(pgbouncer_ini.Upstream(service_name(target.label), host, port, dbname, user, password))
    return upstreams


def _settings(front: PgbouncerConfig, files: FrontFiles) -> pgbouncer_ini.Settings:
    return pgbouncer_ini.Settings(
        listen_address=front.effective_listen_address,
        listen_port=front.effective_listen_port,
        unix_socket_dir=os.path.expanduser(front.unix_socket_dir) if front.unix_socket_dir else "",
        auth_file=str(files.auth_file),
        pidfile=str(files.pidfile),
        logfile=str(files.logfile),
        server_tls_sslmode=front.effective_sslmode,
        server_tls_ca_file=os.path.expanduser(front.server_tls_ca_file) if front.server_tls_ca_file else "",
    )


def read_pgpass(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


class Supervisor:
    """Runs pgbouncer as a child of the scheduler: started with it, restarted with backoff when it dies, stopped
    with it (SIGTERM: pgbouncer's fast exit). `prepare` (re)writes its files before each start."""

    def __init__(
        self,
        config: RotatorConfig,
        *,
        prepare: Callable[[], None] | None = None,
        files: FrontFiles | None = None,
        delays: tuple[float, ...] = RESTART_DELAYS,
        steady_seconds: float = STEADY_SECONDS,
    ) -> None:
        front = config.front
        if front is None:
            raise ValueError("no pgbouncer block in this config")
        self._front = front
        self._files = files or files_for(config)
        self._prepare = prepare
        self._delays = delays
        self._steady = steady_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._child.pid if self._child is not None and self._child.poll() is None else None

    def argv(self) -> list[str]:
        """pgbouncer in the foreground (`-q`: its log goes to its log file only), as `run_as` under root."""
        binary = find_binary(self._front)
        if binary is None:
            raise ConfigError("pgbouncer: the pgbouncer program is not installed")
        user = service_user(self._front)
        return [binary, "-q", *(["-u", user[0]] if user else []), str(self._files.ini)]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="oauth-rotator-pgbouncer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self._thread is not None:
            self._thread.join(STOP_SECONDS * 2)
        logger.info("pgbouncer stopped")

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            code = self._run_once()
            if self._stop.is_set():
                return
            failures = 1 if time.monotonic() - started >= self._steady else failures + 1
            delay = self._delays[min(failures, len(self._delays)) - 1]
            logger.warning(f"pgbouncer exited ({_describe_exit(code)}); restarting it in {delay:g} s")
            self._stop.wait(delay)

    def _run_once(self) -> int | None:
        try:
            if self._prepare is not None:
                self._prepare()
            argv = self.argv()
            with self._lock:
                if self._stop.is_set():
                    return None
                # A long-lived child, waited for below and stopped by `stop()`: no `with` block fits its lifetime.
                self._child = subprocess.Popen(  # pylint: disable=consider-using-with
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=without_secrets(os.environ),  # it needs no Databricks login, and gets none
                    close_fds=True,
                )
                child = self._child
        except (RotatorError, OSError) as err:
            logger.error(f"Could not start pgbouncer: {err}")
            return None
        self.starts += 1
        address = f"{self._front.effective_listen_address}:{self._front.effective_listen_port}"
        logger.info(f"pgbouncer started (pid {child.pid}) on {address}; its log: {self._files.logfile}")
        return child.wait()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "it could not be started"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
