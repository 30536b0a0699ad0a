"""A real, throwaway PostgreSQL server for tests: SSL only over TCP, SCRAM passwords, per-role expiry.

The server listens on 127.0.0.1, 127.0.0.2 and 127.0.0.3 (Linux; 127.0.0.1 elsewhere) on a free port, so
tests can use several distinct ``.pgpass`` host keys. TCP clients must use SSL and a SCRAM password; the
fixture's own admin connection is ``trust`` over a private unix socket. Under root the server runs as the
``postgres`` OS user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

logger = logging.getLogger(__name__)

_SUPERUSER = "postgres"
_PG_HBA = """\
# TYPE     DATABASE  USER  ADDRESS       METHOD
local      all       all                 trust
hostssl    all       all   127.0.0.0/8   scram-sha-256
hostnossl  all       all   0.0.0.0/0     reject
host       all       all   ::/0          reject
"""
_DROP_ROLES = r"""
SELECT format('DROP OWNED BY %I', rolname), format('DROP ROLE %I', rolname)
FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> current_user
\gexec
"""
# psql quotes the values itself (:'x' literal, :"x" identifier); \getenv needs psql 15 or later.
_SET_PASSWORD = r"""
\getenv role RIG_ROLE
\getenv pw RIG_PASSWORD
\getenv until RIG_VALID_UNTIL
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')
\gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'pw' VALID UNTIL :'until';
"""


def _bindir() -> Path:
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout
        if (Path(out.strip()) / "initdb").exists():
            return Path(out.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: install postgresql or put pg_config on PATH")
    return candidates[-1].parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """A PostgreSQL server in a temp dir; ``start()``/``stop()`` or a context manager (stops even on errors)."""

    host = "127.0.0.1"

    def __init__(self, *, hosts: tuple[str, ...] | None = None) -> None:
        self.hosts = hosts or (("127.0.0.1", "127.0.0.2", "127.0.0.3") if sys.platform == "linux" else ("127.0.0.1",))
        self.port = 0
        self.bindir = _bindir()
        self._base: Path | None = None
        self._as_postgres = os.geteuid() == 0
        self._lock = threading.Lock()
        self._watchdog: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> Path:
        """The temp dir holding ``data/``, ``sock/``, ``server.crt`` (usable as ``sslrootcert``) and ``server.log``."""
        if self._base is None:
            raise RuntimeError("LocalPostgres is not started")
        return self._base

    @property
    def ca_file(self) -> Path:
        """The self-signed server certificate (subjectAltName: every listen address), for ``sslmode=verify-full``."""
        return self.base / "server.crt"

    def start(self) -> LocalPostgres:
        """Runs ``initdb`` and starts the server on a free port (a few tries if the port is taken meanwhile)."""
        if self._base is not None:
            return self
        self._base = Path(tempfile.mkdtemp(prefix="oauth-rotator-pg-"))
        self._watchdog = _start_watchdog(self._base)
        try:
            self._base.chmod(0o755)
            if self._as_postgres:
                _require_traversable(self._base.parent)
            self._make_certificate()
            if self._as_postgres:
                shutil.chown(self._base, _SUPERUSER, _SUPERUSER)
                for path in self._base.iterdir():
                    shutil.chown(path, _SUPERUSER, _SUPERUSER)
            initdb = [str(self.bindir / "initdb"), "-D", str(self.base / "data"), "-U", _SUPERUSER]
            self._run_as_server([*initdb, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"])
            self._configure()
            self._start_on_free_port()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops the server (immediate shutdown) and deletes its temp dir; safe to call twice."""
        base, self._base = self._base, None
        if base is None:
            return
        if (base / "data" / "postmaster.pid").exists():
            pg_ctl = [str(self.bindir / "pg_ctl"), "-D", str(base / "data"), "-m", "immediate", "-w", "stop"]
            result = subprocess.run(self._server_argv(pg_ctl), capture_output=True, text=True, check=False)
            if result.returncode != 0:
                logger.warning(f"pg_ctl stop failed: {result.stderr.strip()}")
        shutil.rmtree(base, ignore_errors=True)
        if self._watchdog is not None:
            self._watchdog.communicate(timeout=10)  # closes its stdin: it finds nothing left to clean and exits
            self._watchdog = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def set_password(self, role: str, password: str, valid_until: datetime) -> None:
        """Creates ``role`` (LOGIN) if missing and sets its password, valid until ``valid_until`` (aware datetime).

        The new password replaces the old one, so only the newest credential logs in, and only until it expires.
        """
        if valid_until.tzinfo is None:
            raise ValueError("valid_until must be timezone-aware")
        values = {"RIG_ROLE": role, "RIG_PASSWORD": password, "RIG_VALID_UNTIL": valid_until.isoformat()}
        with self._lock:  # two CREATE ROLE at once would collide
            self.admin_psql(_SET_PASSWORD, values)

    def reset(self) -> None:
        """Drops every role but the superuser (and what they own in ``postgres``): no password is left set."""
        self.admin_psql(_DROP_ROLES)

    def admin_psql(self, script: str, env: Mapping[str, str] | None = None) -> str:
        """Runs ``script`` (on stdin) as the superuser over the unix socket and returns stdout; values the script
        reads with ``\\getenv`` come from ``env`` (not from argv, which every local user can see)."""
        connect = ["-h", str(self.base / "sock"), "-p", str(self.port), "-U", _SUPERUSER, "-d", "postgres"]
        argv = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *connect, "-f", "-"]
        result = subprocess.run(
            argv, input=script, capture_output=True, text=True, env={**_clean_env(), **(env or {})}, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql as {_SUPERUSER} failed: {result.stderr.strip()}")
        return result.stdout

    def psql_login(
        self,
        *,
        user: str,
        passfile: Path,
        host: str = "127.0.0.1",
        database: str = "postgres",
        extra_env: Mapping[str, str] | None = None,
        timeout: float = 10,
        sql: str = "select current_user",
    ) -> subprocess.CompletedProcess[str]:
        """Runs the real ``psql -w -X -A -t -c <sql>`` with ``PGPASSFILE=passfile`` and ``sslmode=require`` (no
        ``PGPASSWORD``, no other ``PG*`` variable); ``returncode == 0`` means the passfile's password logged in."""
        env = {**_clean_env(), "PGPASSFILE": str(passfile), "PGSSLMODE": "require", "PGCONNECT_TIMEOUT": "5"}
        env.update(extra_env or {})
        connect = ["-h", host, "-p", str(self.port), "-U", user, "-d", database]
        argv = ["psql", "-w", "-X", "-A", "-t", *connect, "-c", sql]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)

    # ---- internals ---------------------------------------------------------------------------------------------

    def _server_argv(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", _SUPERUSER, "--", *argv] if self._as_postgres else argv

    def _run_as_server(self, argv: list[str]) -> None:
        result = subprocess.run(self._server_argv(argv), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed ({result.returncode}): {result.stderr.strip()}")

    def _make_certificate(self) -> None:
        sans = ",".join(f"IP:{h}" for h in self.hosts)
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout", str(self.base / "server.key")]
        subject = ["-subj", f"/CN={self.hosts[0]}", "-addext", f"subjectAltName={sans}"]
        argv = ["openssl", "req", "-x509", "-nodes", "-days", "2", *key, "-out", str(self.ca_file), *subject]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"openssl failed: {result.stderr.strip()}")
        (self.base / "server.key").chmod(0o600)
        (self.base / "sock").mkdir(mode=0o755)

    def _configure(self) -> None:
        data = self.base / "data"
        settings = {
            "listen_addresses": ",".join(self.hosts),
            "unix_socket_directories": str(self.base / "sock"),
            "ssl": "on",
            "ssl_cert_file": str(self.ca_file),
            "ssl_key_file": str(self.base / "server.key"),
            "password_encryption": "scram-sha-256",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "40",
            "shared_buffers": "16MB",
            "log_connections": "on",
        }
        with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# oauth-rotator test rig\n")
            conf.writelines(f"{k} = '{v}'\n" for k, v in settings.items())
        (data / "pg_hba.conf").write_text(_PG_HBA, encoding="utf-8")

    def _start_on_free_port(self, attempts: int = 3) -> None:
        conf = self.base / "data" / "postgresql.conf"
        for attempt in range(1, attempts + 1):
            self.port = _free_port()
            with conf.open("a", encoding="utf-8") as handle:
                handle.write(f"port = {self.port}\n")  # the last setting wins
            log = self.base / "server.log"
            pg_ctl = [str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), "-l", str(log), "-w", "-t", "30"]
            result = subprocess.run(self._server_argv([*pg_ctl, "start"]), capture_output=True, text=True, check=False)
            if result.returncode == 0:
                logger.debug(f"PostgreSQL on {','.join(self.hosts)}:{self.port}, data in {self.base}")
                return
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else result.stderr
            logger.warning(f"PostgreSQL did not start on port {self.port} (attempt {attempt}): {tail}")
        raise RuntimeError(f"PostgreSQL did not start after {attempts} attempts; see the log above")


def _require_traversable(directory: Path) -> None:
    """Under root the server runs as ``postgres``, which must be able to reach its data dir."""
    for path in (directory, *directory.parents):
        if not path.stat().st_mode & 0o001:
            raise RuntimeError(f"{path} is not traversable by the postgres user; set TMPDIR=/tmp")


# Waits for EOF on stdin, which comes when the owner calls stop() or dies in any way (SIGKILL, SIGTERM, crash),
# then stops the postmaster (SIGQUIT: immediate shutdown) and deletes the temp dir. Its own session, so a Ctrl-C
# aimed at pytest does not reach it.
_WATCHDOG = """
import os, shutil, signal, sys, time
base = sys.argv[1]
sys.stdin.buffer.read()
try:
    with open(os.path.join(base, "data", "postmaster.pid")) as pidfile:
        pid = int(pidfile.readline())
    os.kill(pid, signal.SIGQUIT)
    for _ in range(200):
        time.sleep(0.05)
        os.kill(pid, 0)
except (OSError, ValueError):
    pass
shutil.rmtree(base, ignore_errors=True)
"""


def _start_watchdog(base: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(base)]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, start_new_session=True)


def _clean_env() -> dict[str, str]:
    """The environment without any ``PG*`` variable (``PGPASSWORD`` would bypass the passfile under test)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}
