"""The pgbouncer front as one object: its files from what `.pgpass` holds, its checks (real pgbouncer: integration
tests)."""

from __future__ import annotations

import json
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
from databricks.labs.oauth_rotator.rotation.front import Front
from databricks.labs.oauth_rotator.rotation.front_checks import service_user
from databricks.labs.oauth_rotator.rotation.front_process import find_binary, reload, running_pid
from databricks.labs.oauth_rotator.rotation.state import Status, TargetState

RUN_AS = "postgres" if os.geteuid() == 0 else None
KEY = ("h.example.com", "5432", "postgres", "someone@example.com")


@pytest.fixture
def folder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The front's folder, reachable by the user pgbouncer runs as; the state folder (pgbouncer.json) beside it."""
    base = Path(tempfile.mkdtemp(prefix="oauth-rotator-front-", dir="/tmp"))
    base.chmod(0o755)
    monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(base / "state"))
    yield base / "front"
    shutil.rmtree(base, ignore_errors=True)


def config_for(folder: Path, **front: Any) -> RotatorConfig:
    front.setdefault("password", "local-pw")
    block = PgbouncerConfig(dir=str(folder), run_as=RUN_AS, **front)
    return RotatorConfig(targets=[TargetConfig(name="sales", host=KEY[0], database=KEY[2])], pgbouncer=block)


def status_with_key(expires_at: float | None = None) -> Status:
    return Status(targets={"sales": TargetState(name="sales", keys=[list(KEY)], expires_at=expires_at)})


def update(config: RotatorConfig, data: bytes, status: Status, **kwargs: Any) -> Any:
    return Front(config, **kwargs).update(data, status)


def pgpass_with(password: str) -> bytes:
    return pgpass.merge(b"", [pgpass.PgpassEntry(*KEY, password=password)])


def test_the_front_gets_the_credential_on_the_targets_pgpass_line_in_private_files(folder: Path):
    config = config_for(folder)
    done = update(config, pgpass_with("token-1"), status_with_key())
    assert done.changed and done.databases == ["sales"] and done.reloaded is None
    files = Front(config).files
    assert "password='token-1'" in files.ini.read_text()
    assert files.auth_file.read_text() == '"lakebase" "local-pw"\n'
    for path in (files.ini, files.auth_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.folder.stat().st_mode) == (0o710 if RUN_AS else 0o700)
    again = update(config, pgpass_with("token-1"), status_with_key())
    assert not again.changed, "the same credential writes nothing, and reloads nothing"
    assert update(config, pgpass_with("token-2"), status_with_key()).changed
    described = (folder.parent / "state" / "pgbouncer.json").read_text()
    assert '"databases": [\n    "sales"\n  ]' in described and "token" not in described and "local-pw" not in described


def test_status_shows_where_to_connect_and_the_generated_password(folder: Path):
    config = config_for(folder)
    assert config.pgbouncer is not None
    config.pgbouncer.password = None
    update(config, pgpass_with("token-1"), status_with_key())
    generated = Front(config).files.password_file.read_text().strip()
    rows = with_front([{"target": "sales"}, {"target": "other"}], str(folder.parent / "state" / "pgbouncer.json"))
    assert rows[0]["front"] == "host=127.0.0.1 port=6432 dbname=sales user=lakebase"
    assert rows[0]["front_password"] == generated and "front" not in rows[1]


def test_a_generated_local_password_is_made_once(folder: Path):
    config = config_for(folder)
    assert config.pgbouncer is not None
    config.pgbouncer.password = None
    update(config, pgpass_with("t"), status_with_key())
    files = Front(config).files
    generated = files.password_file.read_text().strip()
    assert len(generated) >= 24 and stat.S_IMODE(files.password_file.stat().st_mode) == 0o600
    update(config, pgpass_with("t2"), status_with_key())
    assert files.password_file.read_text().strip() == generated
    assert files.auth_file.read_text() == f'"lakebase" "{generated}"\n'


def test_a_credential_too_long_for_pgbouncer_is_never_written(folder: Path):
    front = Front(config_for(folder))
    front.version = (1, 18, 0)
    done = front.update(pgpass_with("x" * 1025), status_with_key())
    assert list(done.refused) == ["sales"] and "1025 bytes" in done.refused["sales"]
    assert "no credential for it until one fits" in done.refused["sales"]
    assert "x" * 1025 not in front.files.ini.read_text() and done.databases == []


def test_a_credential_too_long_for_pgbouncer_leaves_the_previous_one_while_it_lives(folder: Path):
    clock = [1_000_000.0]
    front = Front(config_for(folder), now=lambda: clock[0])
    front.version = (1, 18, 0)
    front.update(pgpass_with("short-token"), status_with_key(expires_at=clock[0] + 3600))
    done = front.update(pgpass_with("x" * 1025), status_with_key(expires_at=clock[0] + 7200))
    assert done.databases == ["sales"] and "keeps the previous credential" in done.refused["sales"]
    ini = front.files.ini.read_text()
    assert "password='short-token'" in ini and "x" * 1025 not in ini
    recorded = json.loads((folder.parent / "state" / "pgbouncer.json").read_text())
    assert "keeps the previous credential" in recorded["refused"]["sales"]
    clock[0] += 3601  # the previous credential is dead: the database goes
    done = front.update(pgpass_with("x" * 1025), status_with_key(expires_at=clock[0] + 7200))
    assert done.databases == [] and "short-token" not in front.files.ini.read_text()


def test_a_target_without_a_line_on_file_gets_no_entry(folder: Path):
    assert update(config_for(folder), b"", status_with_key()).databases == []


def test_no_reload_without_a_running_pgbouncer(folder: Path):
    folder.mkdir(parents=True)
    assert reload(folder / "pgbouncer.pid") is None
    (folder / "pgbouncer.pid").write_text(f"{os.getpid()}\n")  # alive, but not pgbouncer
    assert running_pid(folder / "pgbouncer.pid") is None


def test_a_taken_port_and_a_missing_program_are_config_errors(folder: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = config_for(folder, listen_port=taken.getsockname()[1])
        if find_binary(None) is not None:
            with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1"):
                Front(config).check()
    with pytest.raises(ConfigError, match="not installed at /nonexistent/pgbouncer"):
        Front(config_for(folder, binary="/nonexistent/pgbouncer")).check()
    assert not folder.exists(), "checks write nothing"


@pytest.mark.skipif(os.geteuid() != 0, reason="root only")
def test_under_root_a_user_to_run_pgbouncer_as_is_required():
    with pytest.raises(ConfigError, match="refuses to run as root"):
        service_user(PgbouncerConfig())


def test_the_block_survives_a_save_and_a_load(tmp_path: Path):
    config = from_raw({"targets": [{"host": "h"}], "pgbouncer": {"listen_port": 7000, "manage": False}})
    loaded = load_config(save_config(config, tmp_path / "config.yml"))
    assert loaded.pgbouncer == PgbouncerConfig(listen_port=7000, manage=False)
    assert loaded.front is not None and not loaded.front.is_managed


def test_a_disabled_block_is_no_front():
    assert from_raw({"targets": [{"host": "h"}], "pgbouncer": {"enabled": False}}).front is None
