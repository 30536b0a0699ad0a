"""`password` as clients run it (pgAdmin's password exec command, DBeaver's pre-connect command): the console script
and the labs entrypoint in a subprocess, the real SDK against the fake workspace, a real PostgreSQL login with what
it printed as the password (psycopg, no .pgpass), and the workspace taken away to prove it answers from the file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psycopg
import pytest

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.files.config_store import save_config
from tests.integration.conftest import USER, UserHome
from tests.integration.test_labs_contract import Labs
from tests.rigs.postgres import LocalPostgres
from tests.rigs.workspace import DEMO_INSTANCE, FakeWorkspace


@pytest.fixture(name="labs")
def labs_fixture(tmp_path: Path, workspace: FakeWorkspace) -> Labs:
    return Labs(tmp_path, workspace)


def configure(home: UserHome, **fields: object) -> Path:
    """The saved config a user has after `configure`: the demo instance (on the rig's port) and a .pgpass."""
    path = home.root / "config" / "config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    target = TargetConfig(name="sales", instance=DEMO_INSTANCE, port=home.postgres.port)
    save_config(RotatorConfig(targets=[target], pgpass_file=str(home.pgpass), **fields), path)  # type: ignore[arg-type]
    return path


def logs_in(postgres: LocalPostgres, password: str) -> bool:
    """A psycopg connection with `password` as its password (and no password file to fall back on)."""
    try:
        with psycopg.connect(
            host="127.0.0.1",
            port=postgres.port,
            user=USER,
            dbname="postgres",
            password=password,
            passfile=os.devnull,
            sslmode="require",
            connect_timeout=5,
        ) as connection:
            return connection.execute("select current_user").fetchone() == (USER,)
    except psycopg.OperationalError:
        return False


def on_file(home: UserHome) -> str | None:
    return pgpass.lookup(home.pgpass.read_bytes(), "127.0.0.1", str(home.postgres.port), "*", USER)


def issued_long_ago(home: UserHome, seconds: float) -> None:
    """Record the target's credential as issued `seconds` before it expires, as a long-lived credential near the end
    of its life is recorded (a subprocess's clock cannot be moved): the margin, capped at half of that life, is
    then past."""
    status = json.loads(home.status_file.read_text())
    target = status["targets"]["sales"]
    target["issued_at"] = target["expires_at"] - seconds
    home.status_file.write_text(json.dumps(status))


def issued_tokens(workspace: FakeWorkspace) -> list[str]:
    return [credential.token for credential in workspace.issued]


def test_the_printed_password_logs_in_and_is_all_of_stdout(home: UserHome):
    configure(home)
    minted = home.rotator("password")
    assert minted.returncode == 0, minted.stderr
    assert minted.stderr == ""
    token = minted.stdout.removesuffix("\n")
    assert minted.stdout == f"{token}\n" and "\n" not in token and token
    assert issued_tokens(home.workspace) == [token]  # minted once, by a forced cycle of that target...
    assert on_file(home) == token  # ...which wrote it to .pgpass too
    assert json.loads(home.status_file.read_text())["targets"]["sales"]["last_error"] is None
    assert logs_in(home.postgres, token)

    again = home.rotator("password", "--target", "sales")
    assert again.returncode == 0, again.stderr
    assert again.stdout == minted.stdout  # answered from the file: nothing minted
    assert issued_tokens(home.workspace) == [token]
    assert home.secrets_seen(minted.stderr, again.stderr) == []  # never in the log, status.json or stderr


def test_with_the_workspace_unreachable_the_credential_on_file_is_still_printed(home: UserHome):
    configure(home)
    rotated = home.rotator("--once", "--config", str(home.root / "config" / "config.yml"))
    assert rotated.returncode == 0, rotated.stderr
    token = on_file(home)
    assert token is not None
    home.workspace.stop()
    result = home.rotator("password", env={"DATABRICKS_HOST": "http://127.0.0.1:9"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{token}\n" and result.stderr == ""
    assert logs_in(home.postgres, token)


@pytest.mark.parametrize("outage", ["refused", "hanging"])
def test_within_the_margin_and_unreachable_a_still_valid_credential_is_printed_with_a_warning(
    home: UserHome, outage: str
):
    """Whether the workspace refuses at once or never answers (the one-shot deadline then gives up on it), the
    credential on file is still good for an hour: printed, with a warning."""
    configure(home, margin_minutes=90)  # longer than a credential lives: capped at half its life
    first = home.rotator("password")
    assert first.returncode == 0, first.stderr
    issued_long_ago(home, 3 * 3600)  # the 90-minute margin (half of 3 h) is past: due, yet valid for an hour
    env = {}
    if outage == "refused":
        home.workspace.stop()
        env = {"DATABRICKS_HOST": "http://127.0.0.1:9"}
    else:  # the SDK's token request has no timeout: only the deadline ends it
        home.workspace.delay_seconds = 120
        home.workspace.delay_path_prefix = "/oidc/v1/token"
    started = time.monotonic()
    result = home.rotator("password", env=env, timeout=90)
    home.workspace.delay_seconds = 0
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 45
    assert result.stdout == first.stdout
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("warning: could not refresh sales") and "valid for" in warning
    assert home.secrets_seen(result.stderr) == []


def test_with_no_valid_credential_and_no_workspace_it_fails_with_one_line_and_no_output(home: UserHome):
    home.workspace.ttl_seconds = 20  # shorter than MIN_LEFT_SECONDS: never printed from the file
    configure(home)
    first = home.rotator("password")
    assert first.returncode == 0, first.stderr  # just minted: printed whatever its lifetime
    assert logs_in(home.postgres, first.stdout.strip())
    issued_long_ago(home, 3600)  # due, whatever the cap
    home.workspace.stop()
    result = home.rotator("password", env={"DATABRICKS_HOST": "http://127.0.0.1:9"}, timeout=90)
    assert result.returncode != 0
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("databricks-oauth-rotator: error: ")
    assert home.secrets_seen(result.stderr) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["password", "--target", "nope"], "no target named 'nope' (configured: sales)"),
        (["password", "--bogus"], "unrecognized arguments: --bogus"),
        (["password", "--target"], "expected one argument"),
    ],
)
def test_bad_usage_is_one_line_exit_2_and_asks_nothing(home: UserHome, argv: list[str], message: str):
    configure(home)
    started = time.monotonic()
    result = home.rotator(*argv)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert message in line
    assert home.workspace.issued == [] and not home.pgpass.exists()
    assert time.monotonic() - started < 20


def test_without_a_config_it_says_to_configure(home: UserHome):
    result = home.rotator("password")
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "no such config file" in line and "configure" in line


def test_labs_password_answers_from_the_file_then_mints_with_the_saved_profile(labs: Labs, postgres: LocalPostgres):
    cfg = labs.home / ".databrickscfg"
    cfg.write_text(
        f"[lakebase]\nhost = {labs.workspace.host}\nauth_type = oauth-m2m\n"
        f"client_id = {labs.workspace.client_id}\nclient_secret = {labs.workspace.client_secret}\n"
    )
    cfg.chmod(0o600)
    labs.configure(postgres, profile="lakebase")
    minted = labs.run("password", DATABRICKS_CONFIG_FILE=str(cfg))  # unauthenticated: the profile logs in
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.removesuffix("\n")
    assert [c.token for c in labs.workspace.issued] == [token]
    assert logs_in(postgres, token)
    labs.workspace.stop()
    again = labs.run("password", flags={"target": DEMO_INSTANCE}, DATABRICKS_CONFIG_FILE=str(cfg))
    assert again.returncode == 0, again.stderr
    assert again.stdout == minted.stdout and again.stderr == ""
    bad = labs.run("password", flags={"target": "nope"})
    assert bad.returncode == 2 and bad.stdout == ""
    expected = f"oauth-rotator password: error: no target named 'nope' (configured: {DEMO_INSTANCE})"
    assert bad.stderr.splitlines() == [expected]
    assert labs.secrets_in(minted.stderr, again.stderr) == []


def test_four_concurrent_calls_mint_once_and_print_the_same_credential(home: UserHome):
    """Issue 23 (10): a client opening four connections at once runs `password` four times; the first mints under
    a lock, the others wait and read what it wrote."""
    configure(home)
    calls = [home.start("password") for _ in range(4)]
    results = [call.communicate(timeout=120) for call in calls]
    assert [call.returncode for call in calls] == [0] * 4, [err for _, err in results]
    (printed,) = {out for out, _ in results}
    assert issued_tokens(home.workspace) == [printed.strip()]
    assert logs_in(home.postgres, printed.strip())


def test_a_five_minute_credential_is_printed_again_not_minted_on_every_call(home: UserHome):
    """Issue 23 (9): shorter than twice the 10-minute margin, it is reused for half its life."""
    home.workspace.ttl_seconds = 300
    configure(home)
    first = home.rotator("password")
    assert first.returncode == 0, first.stderr
    for _ in range(3):
        again = home.rotator("password")
        assert again.returncode == 0 and again.stdout == first.stdout, again.stderr
    assert len(home.workspace.issued) == 1
