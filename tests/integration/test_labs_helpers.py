"""`psql` and `env` as `databricks labs` runs them (the entrypoint by path with a JSON payload and the CLI's
environment), against the fake workspace and a real PostgreSQL: the real psql is exec'ed and logs in, and
`eval "$(... env ...)"` in a real shell makes `psql -w` log in, via `.pgpass` or with the exported password."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files.config_store import save_config
from tests.integration.test_labs_contract import LABS_YML, LIB, Labs, declared
from tests.rigs.postgres import LocalPostgres
from tests.rigs.workspace import DEMO_INSTANCE, FakeWorkspace

USER = "someone@example.com"
ENTRYPOINT = LIB / LABS_YML["entrypoint"]
LOGIN = "psql -w -X -A -t -c 'select current_user'"


@pytest.fixture(name="labs")
def labs_fixture(tmp_path: Path, workspace: FakeWorkspace) -> Labs:
    return Labs(tmp_path, workspace)


def payload(name: str, flags: dict[str, str] | None = None, log_level: str = "warn") -> str:
    """Every declared flag of command `name` as a string (its default unless given), as the CLI sends them."""
    sent = {f["name"]: f["default"] for f in declared(name).get("flags") or []}
    return json.dumps({"command": name, "flags": {**sent, **(flags or {}), "log_level": log_level}, "output_type": ""})


def run_entrypoint(
    labs: Labs, name: str, flags: dict[str, str] | None = None, log_level: str = "warn"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT), payload(name, flags, log_level)],
        env=labs.env(name),
        cwd=labs.cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def eval_env_then(
    labs: Labs, then: str, flags: dict[str, str], *, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`eval "$(<entrypoint> '<env payload>')"` in bash, then `then`; the lines are kept in `env.out`."""
    entry = f"{shlex.quote(sys.executable)} {shlex.quote(str(ENTRYPOINT))} {shlex.quote(payload('env', flags))}"
    script = f'lines="$({entry})" || exit 97\nprintf "%s\\n" "$lines" > env.out\neval "$lines"\n{then}'
    return subprocess.run(
        ["bash", "-c", script],
        env={**labs.env("env"), "PGCONNECT_TIMEOUT": "5", **(extra_env or {})},
        cwd=labs.cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


# ---- psql ----------------------------------------------------------------------------------------------------------


def test_psql_runs_the_command_as_the_user_and_exits_0(labs: Labs, postgres: LocalPostgres):
    labs.configure(postgres)
    result = labs.run("psql", flags={"target": "", "database": "postgres", "command": "select current_user"})
    assert result.returncode == 0, result.stderr
    assert USER in result.stdout.split()
    assert not labs.pgpass.exists()  # one-shot: nothing written
    assert len(labs.workspace.issued) == 1
    assert labs.secrets_in(result.stdout, result.stderr) == []


def test_psql_hands_on_psqls_exit_code_and_leaks_nothing_even_in_debug(labs: Labs, postgres: LocalPostgres):
    labs.configure(postgres)
    result = run_entrypoint(labs, "psql", {"database": "postgres", "command": "select 1/0"}, "debug")
    assert result.returncode == 1  # psql's own: the query failed after the login
    assert "division by zero" in result.stderr
    assert "Running" in result.stderr  # the debug records are there, without the credential
    assert labs.workspace.issued and labs.secrets_in(result.stdout, result.stderr) == []


def test_psql_for_a_named_target(labs: Labs, postgres: LocalPostgres):
    save_config(
        RotatorConfig(
            targets=[
                TargetConfig(name="other", host="127.0.0.9", user="nobody@example.com"),
                TargetConfig(name="demo", instance=DEMO_INSTANCE, port=postgres.port, database="postgres"),
            ],
            pgpass_file=str(labs.pgpass),
        ),
        labs.config_file,
    )
    result = labs.run("psql", flags={"target": "demo", "command": "select current_database()"})
    assert result.returncode == 0, result.stderr
    assert "postgres" in result.stdout.split()


# ---- env -----------------------------------------------------------------------------------------------------------


def test_env_after_rotate_logs_in_through_pgpass_despite_a_stale_pgpassword(labs: Labs, postgres: LocalPostgres):
    labs.configure(postgres)
    assert labs.run("rotate").returncode == 0
    issued = len(labs.workspace.issued)
    result = eval_env_then(labs, LOGIN, {"database": "postgres"}, extra_env={"PGPASSWORD": "expired-an-hour-ago"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == USER
    assert len(labs.workspace.issued) == issued  # no credential minted: .pgpass has it
    lines = (labs.cwd / "env.out").read_text().splitlines()
    assert lines == [
        "export PGHOST=127.0.0.1",
        f"export PGPORT={postgres.port}",
        f"export PGUSER={USER}",
        "export PGDATABASE=postgres",
        "export PGSSLMODE=require",
        "unset PGPASSWORD PGHOSTADDR PGSERVICE",
    ]
    assert labs.secrets_in(result.stdout, result.stderr, *lines) == []


def test_env_with_the_password_logs_in_without_any_pgpass(labs: Labs, postgres: LocalPostgres):
    save_config(
        RotatorConfig(
            targets=[TargetConfig(instance=DEMO_INSTANCE, port=postgres.port)],
            pgpass_file=str(labs.home / "never-written"),
        ),
        labs.config_file,
    )
    result = eval_env_then(labs, f'[ -n "$PGPASSWORD" ] && {LOGIN}', {"database": "postgres", "with-password": "true"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == USER
    assert not labs.pgpass.exists() and not (labs.home / "never-written").exists()
    (credential,) = labs.workspace.issued
    assert f"export PGPASSWORD={credential.token}" in (labs.cwd / "env.out").read_text().splitlines()
    assert labs.secrets_in(result.stderr) == []


def test_env_points_libpq_at_a_pgpass_file_of_its_own(labs: Labs, postgres: LocalPostgres):
    private = labs.home / "private" / "pgpass"
    private.parent.mkdir(mode=0o700)
    save_config(
        RotatorConfig(targets=[TargetConfig(instance=DEMO_INSTANCE, port=postgres.port)], pgpass_file=str(private)),
        labs.config_file,
    )
    assert labs.run("rotate").returncode == 0
    result = eval_env_then(labs, LOGIN, {"database": "postgres"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == USER
    assert f"export PGPASSFILE={private}" in (labs.cwd / "env.out").read_text().splitlines()


def test_env_before_any_rotation_looks_the_target_up_and_says_to_rotate(labs: Labs, postgres: LocalPostgres):
    labs.configure(postgres)
    result = run_entrypoint(labs, "env")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == [
        "export PGHOST=127.0.0.1",
        f"export PGPORT={postgres.port}",
        f"export PGUSER={USER}",
    ]
    assert "has not been rotated yet" in result.stderr
    assert labs.workspace.issued == []


@pytest.mark.parametrize("command", ["psql", "env"])
def test_with_nothing_configured_each_says_to_configure(labs: Labs, command: str):
    result = labs.run(command)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "oauth-rotator configure" in result.stderr
