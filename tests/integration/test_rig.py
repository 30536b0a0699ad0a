"""End to end with the rig: an SDK credential from the fake workspace, a hand-written .pgpass, a real psql login.

The rotation here is done by hand on purpose; the product's own tests replace it. The negatives show that the
rig refuses what the product must never rely on: a superseded or expired token, a passfile readable by others,
a password from the environment, a plaintext connection, a credential for another user.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config

from tests.rigs import demo
from tests.rigs.postgres import LocalPostgres
from tests.rigs.workspace import DEMO_ENDPOINT, DEMO_INSTANCE, FakeWorkspace

USER = "someone@example.com"


def _escape(field: str) -> str:
    return field.replace("\\", "\\\\").replace(":", "\\:")


def _write_pgpass(path: Path, *lines: tuple[str, int, str, str]) -> Path:
    """``host:port:*:user:password`` lines, escaped as libpq reads them, mode 0600."""
    path.write_text("".join(f"{_escape(h)}:{p}:*:{_escape(u)}:{_escape(pw)}\n" for h, p, u, pw in lines))
    path.chmod(0o600)
    return path


def _mint(w: WorkspaceClient) -> tuple[str, str, str]:
    """Returns (user, host, token) for DEMO_INSTANCE, the way `databricks psql` gets them."""
    user = w.current_user.me().user_name
    host = w.database.get_database_instance(DEMO_INSTANCE).read_write_dns
    credential = w.database.generate_database_credential(instance_names=[DEMO_INSTANCE], request_id=str(uuid4()))
    assert user and host and credential.token
    return user, host, credential.token


def _refused(result: object) -> str:
    assert getattr(result, "returncode", 0) != 0, "psql logged in but must not have"
    return str(getattr(result, "stderr", ""))


def test_m2m_credential_logs_in_with_psql(postgres: LocalPostgres, sdk_config: Config, tmp_path: Path) -> None:
    user, host, token = _mint(WorkspaceClient(config=sdk_config))
    passfile = _write_pgpass(tmp_path / "pgpass", (host, postgres.port, user, token))
    result = postgres.psql_login(user=user, passfile=passfile, host=host)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == USER


def test_autoscaling_credential_logs_in_on_its_own_host_key(
    workspace: FakeWorkspace, postgres: LocalPostgres, sdk_config: Config, tmp_path: Path
) -> None:
    w = WorkspaceClient(config=sdk_config)
    endpoint = w.postgres.get_endpoint(DEMO_ENDPOINT)
    assert endpoint.status is not None and endpoint.status.hosts is not None and endpoint.status.hosts.host
    host = endpoint.status.hosts.host
    token = w.postgres.generate_database_credential(endpoint=DEMO_ENDPOINT).token or ""
    passfile = _write_pgpass(tmp_path / "pgpass", (host, postgres.port, USER, token))
    assert postgres.psql_login(user=USER, passfile=passfile, host=host).returncode == 0
    if host != "127.0.0.1":  # a line for another host key does not apply
        assert "password" in _refused(postgres.psql_login(user=USER, passfile=passfile, host="127.0.0.1"))
    assert workspace.issued[-1].kind == "postgres"


def test_superseded_token_is_refused(postgres: LocalPostgres, sdk_config: Config, tmp_path: Path) -> None:
    w = WorkspaceClient(config=sdk_config)
    _, host, first = _mint(w)
    _, _, second = _mint(w)
    old = _write_pgpass(tmp_path / "old", (host, postgres.port, USER, first))
    new = _write_pgpass(tmp_path / "new", (host, postgres.port, USER, second))
    assert "password authentication failed" in _refused(postgres.psql_login(user=USER, passfile=old, host=host))
    assert postgres.psql_login(user=USER, passfile=new, host=host).returncode == 0


def test_expired_token_is_refused(
    workspace: FakeWorkspace, postgres: LocalPostgres, sdk_config: Config, tmp_path: Path
) -> None:
    workspace.ttl_seconds = 2
    _, host, token = _mint(WorkspaceClient(config=sdk_config))
    passfile = _write_pgpass(tmp_path / "pgpass", (host, postgres.port, USER, token))
    assert postgres.psql_login(user=USER, passfile=passfile, host=host).returncode == 0
    time.sleep(max(0.0, (workspace.issued[-1].expires_at - datetime.now(timezone.utc)).total_seconds()) + 0.2)
    assert "password authentication failed" in _refused(postgres.psql_login(user=USER, passfile=passfile, host=host))


def test_credential_for_another_user_is_refused(
    workspace: FakeWorkspace, postgres: LocalPostgres, sdk_config: Config, tmp_path: Path
) -> None:
    w = WorkspaceClient(config=sdk_config)
    _, host, own = _mint(w)
    workspace.wrong_user_next(1)
    _, _, foreign = _mint(w)
    passfile = _write_pgpass(tmp_path / "pgpass", (host, postgres.port, USER, foreign))
    _refused(postgres.psql_login(user=USER, passfile=passfile, host=host))
    _write_pgpass(passfile, (host, postgres.port, USER, own))  # the user's own credential is still current
    assert postgres.psql_login(user=USER, passfile=passfile, host=host).returncode == 0


def test_pgpass_readable_by_others_is_ignored(postgres: LocalPostgres, sdk_config: Config, tmp_path: Path) -> None:
    _, host, token = _mint(WorkspaceClient(config=sdk_config))
    passfile = _write_pgpass(tmp_path / "pgpass", (host, postgres.port, USER, token))
    assert postgres.psql_login(user=USER, passfile=passfile, host=host).returncode == 0
    passfile.chmod(0o644)
    assert "group or world access" in _refused(postgres.psql_login(user=USER, passfile=passfile, host=host))


def test_login_uses_the_passfile_only_and_ssl(
    postgres: LocalPostgres, sdk_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, host, token = _mint(WorkspaceClient(config=sdk_config))
    monkeypatch.setenv("PGPASSWORD", token)
    empty = tmp_path / "empty"
    empty.touch(mode=0o600)
    _refused(postgres.psql_login(user=USER, passfile=empty, host=host))
    passfile = _write_pgpass(tmp_path / "pgpass", (host, postgres.port, USER, token))
    assert postgres.psql_login(user=USER, passfile=passfile, host=host).returncode == 0
    plaintext = postgres.psql_login(user=USER, passfile=passfile, host=host, extra_env={"PGSSLMODE": "disable"})
    assert "no encryption" in _refused(plaintext)


@pytest.mark.parametrize("password", ["p:a\\ss:", 'it\'s $$ a "quote" ;--', "tab\tand spaces  "])
def test_any_token_survives_quoting_and_escaping(postgres: LocalPostgres, tmp_path: Path, password: str) -> None:
    role = "odd'role@example.com"
    postgres.set_password(role, password, datetime.now(timezone.utc) + timedelta(minutes=5))
    try:
        passfile = _write_pgpass(tmp_path / "pgpass", ("127.0.0.1", postgres.port, role, password))
        result = postgres.psql_login(user=role, passfile=passfile)
        assert (result.returncode, result.stdout.strip()) == (0, role), result.stderr
        if ":" in password or "\\" in password:
            raw = tmp_path / "raw"
            raw.write_text(f"127.0.0.1:{postgres.port}:*:{_escape(role)}:{password}\n")
            raw.chmod(0o600)
            _refused(postgres.psql_login(user=role, passfile=raw))
    finally:
        postgres.reset()


def test_demo_logs_in_and_never_prints_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert f"{USER}|" in out  # psql's "select current_user, now()" row
    assert re.search(r"[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}", out) is None


def test_concurrent_credentials_leave_the_last_issued_one_current(
    workspace: FakeWorkspace, postgres: LocalPostgres, sdk_config: Config, tmp_path: Path
) -> None:
    w = WorkspaceClient(config=sdk_config)
    w.current_user.me()  # fetch the workspace token once, before the threads share the client
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: _mint(w), range(8)))
    assert len(workspace.issued) == 8
    first, last = workspace.issued[0].token, workspace.issued[-1].token
    current = _write_pgpass(tmp_path / "last", ("127.0.0.1", postgres.port, USER, last))
    assert postgres.psql_login(user=USER, passfile=current).returncode == 0
    stale = _write_pgpass(tmp_path / "first", ("127.0.0.1", postgres.port, USER, first))
    _refused(postgres.psql_login(user=USER, passfile=stale))
