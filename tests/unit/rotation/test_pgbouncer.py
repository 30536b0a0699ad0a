"""The front's files from what `.pgpass` holds, the machine checks, the reload (real pgbouncer: integration tests)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from databricks.labs.oauth_rotator.app.status import with_front
from databricks.labs.oauth_rotator.config import PgbouncerConfig, RotatorConfig, TargetConfig, from_raw
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.files.config_store import load_config, save_config
from databricks.labs.oauth_rotator.rotation import pgbouncer
from databricks.labs.oauth_rotator.rotation.state import Status, TargetState

RUN_AS = "postgres" if os.geteuid() == 0 else None
KEY = ("h.example.com", "5432", "postgres", "someone@example.com")


@pytest.fixture
def folder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The front's folder, reachable by the user pgbouncer runs as; the state folder (pgbouncer.json) beside it."""
    base = Path(tempfile.mkdtemp(prefix="oauth-rotator-front-", dir="/tmp"))
    monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(base / "state"))
    yield base / "front"
    shutil.rmtree(base, ignore_errors=True)


def config_for(folder: Path, **front: Any) -> RotatorConfig:
    block = PgbouncerConfig(dir=str(folder), password="local-pw", run_as=RUN_AS, **front)
    return RotatorConfig(targets=[TargetConfig(name="sales", host=KEY[0], database=KEY[2])], pgbouncer=block)


def status_with_key() -> Status:
    return Status(targets={"sales": TargetState(name="sales", keys=[list(KEY)])})


def pgpass_with(password: str) -> bytes:
    return pgpass.merge(b"", [pgpass.PgpassEntry(*KEY, password=password)])


def test_the_front_gets_the_credential_on_the_targets_pgpass_line_in_private_files(folder: Path):
    config = config_for(folder)
    update = pgbouncer.write_front(config, pgpass_with("token-1"), status_with_key())
    assert update.changed and update.databases == ["sales"] and update.reloaded is None
    files = pgbouncer.files_for(config)
    assert "password='token-1'" in files.ini.read_text()
    assert files.auth_file.read_text() == '"lakebase" "local-pw"\n'
    for path in (files.ini, files.auth_file, files.folder):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    again = pgbouncer.write_front(config, pgpass_with("token-1"), status_with_key())
    assert not again.changed, "the same credential writes nothing, and reloads nothing"
    assert pgbouncer.write_front(config, pgpass_with("token-2"), status_with_key()).changed
    described = (folder.parent / "state" / "pgbouncer.json").read_text()
    assert '"databases": [\n    "sales"\n  ]' in described and "token" not in described and "local-pw" not in described


def test_status_shows_where_to_connect_and_the_generated_password(folder: Path):
    config = config_for(folder)
    assert config.pgbouncer is not None
    config.pgbouncer.password = None
    pgbouncer.write_front(config, pgpass_with("token-1"), status_with_key())
    generated = pgbouncer.files_for(config).password_file.read_text().strip()
    rows = with_front([{"target": "sales"}, {"target": "other"}], str(folder.parent / "state" / "pgbouncer.json"))
    assert rows[0]["front"] == "host=127.0.0.1 port=6432 dbname=sales user=lakebase"
    assert rows[0]["front_password"] == generated and "front" not in rows[1]


def test_a_generated_local_password_is_made_once(folder: Path):
    config = config_for(folder)
    assert config.pgbouncer is not None
    config.pgbouncer.password = None
    pgbouncer.write_front(config, pgpass_with("t"), status_with_key())
    files = pgbouncer.files_for(config)
    generated = files.password_file.read_text().strip()
    assert len(generated) >= 24 and stat.S_IMODE(files.password_file.stat().st_mode) == 0o600
    pgbouncer.write_front(config, pgpass_with("t2"), status_with_key())
    assert files.password_file.read_text().strip() == generated
    assert files.auth_file.read_text() == f'"lakebase" "{generated}"\n'


def test_a_credential_too_long_for_pgbouncer_is_never_written(folder: Path):
    config = config_for(folder)
    update = pgbouncer.write_front(config, pgpass_with("x" * 1025), status_with_key(), version=(1, 18, 0))
    assert list(update.refused) == ["sales"] and "1025 bytes" in update.refused["sales"]
    assert "x" * 1025 not in pgbouncer.files_for(config).ini.read_text()


def test_a_target_without_a_line_on_file_gets_no_entry(folder: Path):
    update = pgbouncer.write_front(config_for(folder), b"", status_with_key())
    assert update.databases == []


def test_no_reload_without_a_running_pgbouncer(folder: Path):
    folder.mkdir(parents=True)
    assert pgbouncer.reload(folder / "pgbouncer.pid") is None
    (folder / "pgbouncer.pid").write_text(f"{os.getpid()}\n")  # alive, but not pgbouncer
    assert pgbouncer.running_pid(folder / "pgbouncer.pid") is None


def test_a_taken_port_and_a_missing_program_are_config_errors(folder: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = config_for(folder, listen_port=taken.getsockname()[1])
        if pgbouncer.find_binary(config.pgbouncer or PgbouncerConfig()) is not None:
            with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1"):
                pgbouncer.check_machine(config)
    with pytest.raises(ConfigError, match="not installed at /nonexistent/pgbouncer"):
        pgbouncer.check_machine(config_for(folder, binary="/nonexistent/pgbouncer"))
    assert not folder.exists(), "checks write nothing"


@pytest.mark.skipif(os.geteuid() != 0, reason="root only")
def test_under_root_a_user_to_run_pgbouncer_as_is_required():
    with pytest.raises(ConfigError, match="refuses to run as root"):
        pgbouncer.service_user(PgbouncerConfig())


def test_the_block_survives_a_save_and_a_load(tmp_path: Path):
    config = from_raw({"targets": [{"host": "h"}], "pgbouncer": {"listen_port": 7000, "manage": False}})
    loaded = load_config(save_config(config, tmp_path / "config.yml"))
    assert loaded.pgbouncer == PgbouncerConfig(listen_port=7000, manage=False)
    assert loaded.front is not None and not loaded.front.is_managed


def test_a_disabled_block_is_no_front():
    assert from_raw({"targets": [{"host": "h"}], "pgbouncer": {"enabled": False}}).front is None
