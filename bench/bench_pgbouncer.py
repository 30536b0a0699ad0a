"""Benchmark 6: connect latency through the pgbouncer front against connecting to PostgreSQL directly.

The subject is what a BI tool or a script without `.pgpass` does through the front: a psycopg connection to
pgbouncer on 127.0.0.1 (local SCRAM login with the front's password), `select 1`, close. pgbouncer keeps the
server connection it logged in with (TLS + SCRAM to PostgreSQL, with the rotated credential) and hands it to the
next client, so after the first login the front needs no new server login. The floor, interleaved with it, is the
same connect, `select 1` and close straight to the PostgreSQL rig (TLS + SCRAM, the credential as the password):
what each client pays without the front.

The front is the product's: its files written by `rotation.front.Front.update` from a `.pgpass` line, pgbouncer
run by its `Supervisor` (as `postgres` under root), against the test rig's PostgreSQL 15.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.rigs.net import free_port

from bench.harness import BenchError, Options, standalone
from bench.stats import figure, measure_interleaved, timed

NAME = "pgbouncer"
FLOOR_LABEL = "direct to PostgreSQL (TLS + SCRAM)"
USER = "bench@example.com"
LOCAL_PASSWORD = secrets.token_urlsafe(18)
"""The front's local password, made per run like the one it generates."""
CONNECTS_PER_RUN = 5
"""Connections per measured run (the figure is per connection): one connect is about a millisecond here."""


def connect_and_query(**params: Any) -> None:
    import psycopg

    with psycopg.connect(connect_timeout=5, **params) as conn:
        if conn.execute("select 1").fetchone() != (1,):
            raise BenchError(f"select 1 through {params.get('host')}:{params.get('port')} gave another answer")


def connect_times(params: dict[str, Any], **more: Any) -> None:
    """`CONNECTS_PER_RUN` connections one after another, each with its `select 1`."""
    for _ in range(CONNECTS_PER_RUN):
        connect_and_query(**params, **more)


def start_front(folder: Path, postgres: Any, token: str) -> tuple[Any, int]:
    """The product's front for one target whose `.pgpass` line holds `token`: files written, pgbouncer started."""
    from databricks.labs.oauth_rotator.config import PgbouncerConfig, RotatorConfig, TargetConfig
    from databricks.labs.oauth_rotator.files import pgpass
    from databricks.labs.oauth_rotator.rotation.front import Front
    from databricks.labs.oauth_rotator.rotation.front_process import Supervisor, argv_for, require_binary
    from databricks.labs.oauth_rotator.rotation.state import Status, TargetState

    port = free_port()
    front = PgbouncerConfig(
        dir=str(folder / "front"),
        listen_port=port,
        password=LOCAL_PASSWORD,
        run_as="postgres" if os.geteuid() == 0 else None,
        server_tls_ca_file=str(postgres.ca_file),  # verify-full, against the rig's CA
    )
    config = RotatorConfig(
        targets=[TargetConfig(name="bench", host="127.0.0.1", port=postgres.port, database="postgres")],
        pgbouncer=front,
    )
    key = ("127.0.0.1", str(postgres.port), "postgres", USER)
    data = pgpass.merge(b"", [pgpass.PgpassEntry(*key, password=token)])
    status = Status(targets={"bench": TargetState(name="bench", keys=[list(key)])})
    the_front = Front(config)
    the_front.update(data, status)
    supervisor = Supervisor(argv_for(require_binary(None), the_front.files, the_front.user), the_front.files)
    supervisor.start()
    return supervisor, port


def wait_until_it_answers(port: int, seconds: float = 20) -> None:
    import psycopg

    deadline = time.monotonic() + seconds
    while True:
        try:
            connect_and_query(host="127.0.0.1", port=port, dbname="bench", user="lakebase", password=LOCAL_PASSWORD)
            return
        except psycopg.OperationalError as err:  # until pgbouncer listens
            if time.monotonic() > deadline:
                raise BenchError(f"the pgbouncer front did not answer within {seconds:g} s: {err}") from err
            time.sleep(0.1)


def run(options: Options) -> dict[str, Any]:
    from tests.rigs.postgres import LocalPostgres

    token = secrets.token_urlsafe(600)[:800]  # about as long as a Lakebase credential
    # Under /tmp, not options.work_dir: pgbouncer runs as `postgres` under root and must reach its folder.
    folder = Path(tempfile.mkdtemp(prefix="oauth-rotator-bench-pgbouncer-", dir="/tmp"))
    folder.chmod(0o755)
    with LocalPostgres(hosts=("127.0.0.1",)) as postgres:
        postgres.set_password(USER, token, datetime.now(timezone.utc) + timedelta(hours=2))
        supervisor, port = start_front(folder, postgres, token)
        try:
            wait_until_it_answers(port)
            through = {"host": "127.0.0.1", "port": port, "dbname": "bench", "user": "lakebase"}
            direct = {"host": "127.0.0.1", "port": postgres.port, "dbname": "postgres", "user": USER}

            def front() -> float:
                return timed(lambda: connect_times(through, password=LOCAL_PASSWORD)) / CONNECTS_PER_RUN

            def floor() -> float:
                return timed(lambda: connect_times(direct, password=token, sslmode="require")) / CONNECTS_PER_RUN

            runs = measure_interleaved({"front": front, "floor": floor}, runs=options.cheap_runs, warmup=options.warmup)
            starts = supervisor.starts
        finally:
            supervisor.stop()
            shutil.rmtree(folder, ignore_errors=True)
    if starts != 1:
        raise BenchError(f"pgbouncer was started {starts} times during the benchmark")
    ms = 1000
    return {
        "title": "Connect latency through the pgbouncer front",
        "floor": FLOOR_LABEL,
        "connects_per_run": CONNECTS_PER_RUN,
        "figures": [
            figure(
                "connect + select 1",
                "through the pgbouncer front",
                "ms",
                [s * ms for s in runs["front"]],
                floor=FLOOR_LABEL,
                floor_values=[s * ms for s in runs["floor"]],
            )
        ],
    }


if __name__ == "__main__":
    standalone(NAME, run, __doc__ or NAME)
