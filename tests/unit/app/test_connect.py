"""`psql` and `env`: psql's argv and environment (recorded by an injected exec, never replacing the test process),
the export lines as a real shell evaluates them, and the commands through the entrypoint as the CLI runs it."""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator.app.connect import (
    Connection,
    ProgramError,
    database_for,
    env_lines,
    export_lines,
    look_up_connection,
    open_psql,
    psql_argv,
    psql_environ,
)
from databricks.labs.oauth_rotator.app.rotate import fresh_credential
from databricks.labs.oauth_rotator.commands import labs_cli, record
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files.config_store import save_config
from databricks.labs.oauth_rotator.lakebase.credentials import Credential
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState
from tests.rigs.workspace import DEMO_ENDPOINT, DEMO_INSTANCE, FakeWorkspace

ROOT = Path(__file__).resolve().parents[3]
ENTRYPOINT = ROOT / "src" / "databricks" / "labs" / "oauth_rotator" / "commands" / "labs_cli.py"
USER = "someone@example.com"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJlLXRoYXQtbXVzdC1ub3QtbGVhaw"
HOST = "instance-1234.database.cloud.databricks.com"
SHELL = "/bin/bash"


class RecordingExec:
    """Stands in for `os.execvpe`: records what would have run, and returns (the real one never does)."""

    def __init__(self, error: OSError | None = None) -> None:
        self.calls: list[tuple[str, list[str], dict[str, str]]] = []
        self.error = error

    def __call__(self, path: str, argv: list[str], env: dict[str, str]) -> None:
        self.calls.append((path, list(argv), dict(env)))
        if self.error is not None:
            raise self.error

    @property
    def only(self) -> tuple[str, list[str], dict[str, str]]:
        assert len(self.calls) == 1, self.calls
        return self.calls[0]


class StaticMint:
    """Stands in for `fresh_credential`: one credential with a known token, and a count of the calls."""

    def __init__(self, *, user: str = USER, hosts: tuple[str, ...] = (HOST,), token: str = TOKEN) -> None:
        self.user, self.hosts, self.token = user, hosts, token
        self.calls: list[str | None] = []

    def __call__(self, config: RotatorConfig, name: str | None) -> tuple[TargetConfig, Credential]:
        self.calls.append(name)
        target = next(t for t in config.targets if name in {None, t.label})
        now = datetime.now(timezone.utc)
        credential = Credential(
            token=self.token,
            expires_at=now + timedelta(hours=1),
            issued_at=now,
            user=self.user,
            hosts=self.hosts,
            source=f"instance {target.label}",
        )
        return target, credential


class NoLookUp:
    def __init__(self, answer: tuple[str, str] | None = None) -> None:
        self.answer = answer
        self.calls: list[str] = []

    def __call__(self, config: RotatorConfig, target: TargetConfig) -> tuple[str, str]:
        self.calls.append(target.label)
        if self.answer is None:
            raise AssertionError("the workspace was asked")
        return self.answer


def fake_psql_path(tmp_path: Path) -> str:
    """A folder with an executable `psql`, for PATH: `which` must find it; the recording exec never runs it."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    psql = folder / "psql"
    psql.write_text("#!/bin/sh\nexit 99\n")
    psql.chmod(0o755)
    return str(folder)


def config_with(*targets: TargetConfig, pgpass_file: str | None = None) -> RotatorConfig:
    return RotatorConfig(targets=list(targets) or [TargetConfig(instance="sales")], pgpass_file=pgpass_file)


def rotated(store: StateStore, name: str, *, host: str = HOST, user: str = USER) -> None:
    def change(status: Status) -> None:
        status.targets[name] = TargetState(name=name, user=user, hosts=[host, "ro." + host])

    store.update(change)


def evaluate(lines: list[str], *names: str, env: dict[str, str] | None = None) -> dict[str, str | None]:
    """Run `eval "$(lines)"` in a real shell and report each variable as the shell then has it (None: unset)."""
    probe = "".join(
        f'if [ -n "${{{n}+x}}" ]; then printf "%s=%s\\0" {n} "${n}"; else printf "%s\\0" {n}; fi; ' for n in names
    )
    result = subprocess.run(
        [SHELL, "-c", f'eval "$LINES" && {probe}'],
        env={"PATH": os.environ.get("PATH", ""), **(env or {}), "LINES": "\n".join(lines)},
        capture_output=True,
        text=True,
        check=True,
    )
    seen: dict[str, str | None] = {}
    for item in result.stdout.split("\0")[:-1]:
        name, sep, value = item.partition("=")
        seen[name] = value if sep else None
    return seen


# ---- psql: argv and environment ------------------------------------------------------------------------------------


def test_psql_argv_names_neither_the_connection_nor_a_password():
    """Where to connect goes in PG* variables: psql reads a `--dbname` holding `=` as a connection string."""
    assert psql_argv() == ["psql"]
    assert psql_argv("select 1") == ["psql", "-c", "select 1"]


def test_psql_runs_with_the_credential_in_its_environment_only(tmp_path):
    execute, mint = RecordingExec(), StaticMint()
    environ = {
        "PATH": fake_psql_path(tmp_path),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PGPASSWORD": "stale-password",
        "PGSSLMODE": "disable",
        "PGHOSTADDR": "10.0.0.66",
        "PGSERVICE": "elsewhere",
        "DATABRICKS_HOST": "https://example.cloud.databricks.com",
        "DATABRICKS_CLIENT_SECRET": "dose-client-secret",
        "ARM_CLIENT_SECRET": "azure-secret",
    }
    config = config_with(TargetConfig(instance="sales", port=6543))

    assert open_psql(config, sql="select current_user", environ=environ, mint=mint, execute=execute) == 0

    path, argv, env = execute.only
    assert path == str(tmp_path / "bin" / "psql")
    assert argv == ["psql", "-c", "select current_user"]
    assert not any(TOKEN in arg for arg in argv)
    assert env["PGPASSWORD"] == TOKEN and env["PGSSLMODE"] == "require"
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"]) == (HOST, "6543", USER)
    assert env["PGDATABASE"] == "databricks_postgres"  # the target's database is `*`
    assert env["HOME"] == str(tmp_path) and env["LANG"] == "C.UTF-8"
    for gone in ("PGHOSTADDR", "PGSERVICE", "DATABRICKS_HOST", "DATABRICKS_CLIENT_SECRET", "ARM_CLIENT_SECRET"):
        assert gone not in env, gone
    assert environ["PGPASSWORD"] == "stale-password"  # the caller's mapping is not changed
    assert mint.calls == [None]


@pytest.mark.parametrize(
    ("configured", "flag", "expected"),
    [
        (None, None, "databricks_postgres"),
        ("*", None, "databricks_postgres"),
        ("sales_db", None, "sales_db"),
        ("sales_db", "postgres", "postgres"),
        (None, "*", "databricks_postgres"),
    ],
)
def test_the_database_is_the_flag_else_the_targets_else_databricks_postgres(configured, flag, expected):
    assert database_for(TargetConfig(instance="sales", database=configured), flag) == expected


@pytest.mark.parametrize("database", ["host=evil.example.com dbname=x", "postgresql://evil/x", "a\0b"])
def test_a_connection_string_as_database_is_refused_before_minting(tmp_path, database):
    mint, execute = StaticMint(), RecordingExec()
    with pytest.raises(ConfigError, match="--database") as raised:
        open_psql(
            config_with(), database=database, environ={"PATH": fake_psql_path(tmp_path)}, mint=mint, execute=execute
        )
    assert raised.value.exit_code == 2
    assert not mint.calls and not execute.calls


def test_the_target_is_chosen_by_name(tmp_path):
    execute = RecordingExec()
    config = config_with(TargetConfig(instance="sales"), TargetConfig(name="reports", instance="r", database="rpt"))
    open_psql(config, name="reports", environ={"PATH": fake_psql_path(tmp_path)}, mint=StaticMint(), execute=execute)
    _, _, env = execute.only
    assert env["PGDATABASE"] == "rpt"


@pytest.mark.parametrize(("given", "expected"), [("verify-full", "verify-full"), ("VERIFY-CA", "verify-ca")])
def test_a_stronger_sslmode_is_kept(given, expected):
    assert psql_environ({"PGSSLMODE": given}, TOKEN)["PGSSLMODE"] == expected
    assert psql_environ({"PGSSLMODE": "prefer"}, TOKEN)["PGSSLMODE"] == "require"


def test_without_psql_on_path_it_says_so_and_mints_nothing(tmp_path):
    mint, execute = StaticMint(), RecordingExec()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProgramError, match="psql not found on PATH") as raised:
        open_psql(config_with(), environ={"PATH": str(tmp_path / "empty")}, mint=mint, execute=execute)
    assert raised.value.exit_code == 2
    assert "install the PostgreSQL client" in str(raised.value)
    assert not mint.calls and not execute.calls


def test_a_psql_that_cannot_start_is_exit_2(tmp_path):
    execute = RecordingExec(error=PermissionError(13, "Permission denied"))
    with pytest.raises(ProgramError, match=r"cannot run .*psql: Permission denied") as raised:
        open_psql(config_with(), environ={"PATH": fake_psql_path(tmp_path)}, mint=StaticMint(), execute=execute)
    assert raised.value.exit_code == 2
    assert TOKEN not in str(raised.value)


def test_psql_with_a_credential_from_the_workspace_leaks_it_nowhere(
    tmp_path, fake_workspace: FakeWorkspace, caplog, capsys
):
    ws = WorkspaceClient(config=fake_workspace.sdk_config())
    execute = RecordingExec()
    caplog.set_level(logging.DEBUG)
    # An earlier test's setup_logging may have left the package's logger at INFO: this test needs its DEBUG record.
    caplog.set_level(logging.DEBUG, logger="databricks.labs.oauth_rotator")
    open_psql(
        config_with(TargetConfig(instance=DEMO_INSTANCE)),
        environ={"PATH": fake_psql_path(tmp_path)},
        mint=lambda config, name: fresh_credential(config, name, workspace_client=ws),
        execute=execute,
    )
    _, argv, env = execute.only
    (issued,) = fake_workspace.issued
    assert env["PGPASSWORD"] == issued.token
    assert argv == ["psql"]
    assert [env[k] for k in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE")] == [
        "127.0.0.1",
        "5432",
        USER,
        "databricks_postgres",
    ]
    out, err = capsys.readouterr()
    seen = " ".join([*argv, out, err, caplog.text])
    assert "Running" in caplog.text  # the debug record was written (and holds no secret)
    assert [s for s in fake_workspace.issued_secrets() if s in seen] == []


def test_an_unknown_target_is_refused_before_any_credential(tmp_path, fake_workspace: FakeWorkspace):
    ws = WorkspaceClient(config=fake_workspace.sdk_config())
    with pytest.raises(ConfigError, match="no target named 'nope'"):
        open_psql(
            config_with(TargetConfig(instance=DEMO_INSTANCE)),
            name="nope",
            environ={"PATH": fake_psql_path(tmp_path)},
            mint=lambda config, name: fresh_credential(config, name, workspace_client=ws),
            execute=RecordingExec(),
        )
    assert fake_workspace.issued == []


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the signal mask from /proc")
def test_psql_is_exec_ed_with_its_exit_code_and_sigpipe_restored():
    """The real exec: the process becomes the program (same pid, its exit code), with SIGPIPE not ignored."""
    script = (
        "import os, sys\n"
        "from databricks.labs.oauth_rotator.app.connect import replace_process\n"
        "print(os.getpid(), flush=True)\n"
        "replace_process('/bin/sh', ['sh', '-c', 'echo $$; grep SigIgn /proc/$$/status; exit 7'], dict(os.environ))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 7, result.stderr
    python_pid, shell_pid, ignored = result.stdout.split("\n")[:3]
    assert python_pid == shell_pid
    assert not int(ignored.split()[1], 16) & (1 << (signal.SIGPIPE - 1))


# ---- env: the lines ------------------------------------------------------------------------------------------------


def test_export_lines_survive_eval_with_any_characters():
    odd = Connection("h'st; rm -rf /", 5432, "o'brien $HOME `id`@example.com", 'my "db"\nx')
    lines = export_lines(odd, environ={}, password="p'w $x")
    seen = evaluate(lines, "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSSLMODE", "PGPASSWORD")
    assert seen == {
        "PGHOST": odd.host,
        "PGPORT": "5432",
        "PGUSER": odd.user,
        "PGDATABASE": odd.database,
        "PGSSLMODE": "require",
        "PGPASSWORD": "p'w $x",
    }


def test_env_without_the_password_reads_the_rotated_target_and_unsets_a_stale_password(tmp_path):
    store = StateStore(tmp_path / "status.json")
    rotated(store, "sales")
    config = config_with(TargetConfig(instance="sales"))
    look_up, mint = NoLookUp(), StaticMint()

    lines = env_lines(config, environ={"HOME": str(tmp_path)}, state=store, mint=mint, look_up=look_up)

    assert lines == [
        f"export PGHOST={HOST}",
        "export PGPORT=5432",
        f"export PGUSER={USER}",
        "export PGDATABASE=databricks_postgres",
        "export PGSSLMODE=require",
        "unset PGPASSWORD PGHOSTADDR PGSERVICE",
    ]
    assert not mint.calls and not look_up.calls  # no credential, no workspace
    stale = {"PGPASSWORD": "expired-an-hour-ago", "PGSERVICE": "other", "PGHOSTADDR": "10.0.0.66"}
    seen = evaluate(lines, "PGPASSWORD", "PGSERVICE", "PGHOSTADDR", "PGHOST", env=stale)
    assert seen == {"PGPASSWORD": None, "PGSERVICE": None, "PGHOSTADDR": None, "PGHOST": HOST}


def test_env_with_the_password_mints_one_and_exports_it(tmp_path):
    mint = StaticMint()
    lines = env_lines(
        config_with(TargetConfig(instance="sales", port=6543)),
        with_password=True,
        environ={},
        state=StateStore(tmp_path / "status.json"),
        mint=mint,
        look_up=NoLookUp(),
    )
    assert mint.calls == [None]
    assert lines[-2:] == [f"export PGPASSWORD={TOKEN}", "unset PGHOSTADDR PGSERVICE"]
    assert evaluate(lines, "PGPASSWORD", "PGPORT") == {"PGPASSWORD": TOKEN, "PGPORT": "6543"}


def test_env_for_a_target_never_rotated_asks_the_workspace_and_warns(tmp_path, caplog):
    look_up = NoLookUp(answer=("looked-up.example.com", "sp-application-id"))
    lines = env_lines(
        config_with(TargetConfig(instance="sales")),
        environ={},
        state=StateStore(tmp_path / "status.json"),
        mint=StaticMint(),
        look_up=look_up,
    )
    assert look_up.calls == ["sales"]
    assert lines[:3] == ["export PGHOST=looked-up.example.com", "export PGPORT=5432", "export PGUSER=sp-application-id"]
    assert "sales has not been rotated yet" in caplog.text


@pytest.mark.parametrize(
    "target",
    [TargetConfig(instance="sales", user="other@example.com"), TargetConfig(instance="sales", host="new.example.com")],
)
def test_env_ignores_a_status_the_config_has_moved_away_from(tmp_path, target):
    store = StateStore(tmp_path / "status.json")
    rotated(store, "sales")
    look_up = NoLookUp(answer=("new.example.com", "other@example.com"))
    env_lines(config_with(target), environ={}, state=store, mint=StaticMint(), look_up=look_up)
    assert look_up.calls == ["sales"]


def test_env_exports_pgpassfile_only_when_libpq_would_read_another_file(tmp_path):
    store = StateStore(tmp_path / "status.json")
    rotated(store, "sales")
    home = {"HOME": str(tmp_path)}

    def lines_for(pgpass_file: str | None, environ: dict[str, str]) -> list[str]:
        config = config_with(TargetConfig(instance="sales"), pgpass_file=pgpass_file)
        return env_lines(config, environ=environ, state=store, mint=StaticMint(), look_up=NoLookUp())

    elsewhere = tmp_path / "secrets dir" / "pgpass"
    assert f"export PGPASSFILE={shlex.quote(str(elsewhere))}" in lines_for(str(elsewhere), home)
    assert not any("PGPASSFILE" in line for line in lines_for(str(tmp_path / ".pgpass"), home))
    assert not any("PGPASSFILE" in line for line in lines_for(None, home))
    assert not any("PGPASSFILE" in line for line in lines_for(str(elsewhere), {"PGPASSFILE": str(elsewhere)}))


def test_env_warns_when_pgpass_holds_the_password_for_another_database(tmp_path, caplog):
    store = StateStore(tmp_path / "status.json")
    rotated(store, "sales")
    config = config_with(TargetConfig(instance="sales", database="sales_db"))
    lines = env_lines(config, database="postgres", environ={}, state=store, mint=StaticMint(), look_up=NoLookUp())
    assert "export PGDATABASE=postgres" in lines
    assert "for database sales_db only, not postgres" in caplog.text


def test_look_up_asks_the_workspace_and_mints_nothing(fake_workspace: FakeWorkspace):
    ws = WorkspaceClient(config=fake_workspace.sdk_config())
    config = config_with(TargetConfig(instance=DEMO_INSTANCE))
    assert look_up_connection(config, config.targets[0], workspace_client=ws) == ("127.0.0.1", USER)
    endpoint = TargetConfig(endpoint=DEMO_ENDPOINT, user="sp-id")
    assert look_up_connection(config_with(endpoint), endpoint, workspace_client=ws)[1] == "sp-id"
    assert fake_workspace.issued == []


def test_look_up_of_a_fully_configured_target_asks_nobody(fake_workspace: FakeWorkspace):
    target = TargetConfig(host="db.example.com", user=USER)
    ws = WorkspaceClient(config=fake_workspace.sdk_config())
    calls = sum(fake_workspace.calls.values())
    assert look_up_connection(config_with(target), target, workspace_client=ws) == ("db.example.com", USER)
    assert sum(fake_workspace.calls.values()) == calls


# ---- through the entrypoint, as the CLI runs it ------------------------------------------------------------------


def labs_env(home: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_", "PG", "XDG_CONFIG"))}
    return {
        **keep,
        "HOME": str(home),
        "DATABRICKS_LABS_CONFIG_DIR": str(home / "config"),
        "DATABRICKS_LABS_STATE_DIR": str(home / "state"),
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
        **extra,
    }


def run_entrypoint(
    home: Path, command: str, *, path: str | None = None, **flags: str
) -> subprocess.CompletedProcess[str]:
    """`python cli.py '<payload>'` with every declared flag as a string, as `databricks labs` runs it."""
    payload = json.dumps(
        {
            "command": command,
            "flags": {**record.command_named(command).defaults_for(record.LABS), **flags, "log_level": "warn"},
        }
    )
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT), payload],
        env=labs_env(home, **({"PATH": path} if path else {})),
        cwd=home,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_env_command_prints_only_the_lines(tmp_path):
    save_config(
        config_with(TargetConfig(name="sales", host=HOST, user=USER, database="sales_db")),
        tmp_path / "config" / "config.yml",
    )
    rotated(StateStore(tmp_path / "state" / "status.json"), "sales")
    result = run_entrypoint(tmp_path, "env", target="sales")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"export PGHOST={HOST}",
        "export PGPORT=5432",
        f"export PGUSER={USER}",
        "export PGDATABASE=sales_db",
        "export PGSSLMODE=require",
        "unset PGPASSWORD PGHOSTADDR PGSERVICE",
    ]
    assert result.stderr == ""


CONFIGURED = TargetConfig(host=HOST, user=USER)
NOT_ROTATED = TargetConfig(instance="sales")  # needs the workspace, and there is no login


@pytest.mark.parametrize(
    ("command", "target", "flags", "message"),
    [
        ("env", None, {}, "oauth-rotator configure"),
        ("psql", None, {}, "oauth-rotator configure"),
        ("env", CONFIGURED, {"target": "nope"}, "no target named 'nope'"),
        ("env", CONFIGURED, {"database": "host=evil"}, "expected a database name"),
        ("psql", CONFIGURED, {"target": "nope"}, "no target named 'nope'"),
        ("env", CONFIGURED, {"with-password": "yes"}, "--with-password expects true or false"),
        ("env", NOT_ROTATED, {}, "no Databricks workspace configured"),
    ],
)
def test_a_failure_is_one_line_on_stderr_exit_2_and_nothing_on_stdout(tmp_path, command, target, flags, message):
    if target is not None:
        save_config(config_with(target), tmp_path / "config" / "config.yml")
    result = run_entrypoint(tmp_path, command, **flags)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr


def test_psql_command_without_psql_on_path_is_exit_2(tmp_path):
    save_config(config_with(TargetConfig(host=HOST, user=USER)), tmp_path / "config" / "config.yml")
    (tmp_path / "empty").mkdir()
    result = run_entrypoint(tmp_path, "psql", path=str(tmp_path / "empty"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "oauth-rotator psql: error: psql not found on PATH; install the PostgreSQL client "
        "(e.g. `brew install libpq`, `apt-get install postgresql-client`)"
    ]


def test_the_flags_reach_the_commands_with_their_types():
    registered = labs_cli.build_app()._mapping  # pylint: disable=protected-access
    assert registered["env"].get_argument_type("with_password") == "bool"
    assert registered["psql"].get_argument_type("command") == "str"
    assert labs_cli.parse_payload([json.dumps({"command": "env", "flags": {"with-password": "TRUE"}})]).flags == {
        "target": "",
        "database": "",
        "with-password": "true",
    }


# ---- values go where they belong (issue 19) ---------------------------------------------------------------------


def test_a_configured_connection_string_as_database_never_reaches_psql(tmp_path):
    """`database: "dbname=postgres host=evil.example port=6543"` reached `psql --dbname` with PGPASSWORD set. A
    config built in code (the Python API) skips the file's checks: the value is checked where it is used."""
    execute, mint = RecordingExec(), StaticMint()
    target = TargetConfig(instance="sales", database="dbname=postgres host=evil.example port=6543")
    with pytest.raises(ConfigError, match="connection string") as raised:
        open_psql(config_with(target), environ={"PATH": fake_psql_path(tmp_path)}, mint=mint, execute=execute)
    assert raised.value.exit_code == 2
    assert not execute.calls and not mint.calls


def test_psql_gets_no_secret_of_any_name_and_no_login_variable():
    environ = {
        "MY_API_TOKEN": "t",
        "DATABRICKS_TOKEN": "dapi",
        "DATABRICKS_CONFIG_PROFILE": "p",
        "AWS_SECRET_ACCESS_KEY": "k",
        "DATABRICKS_HOST": "https://x",
        "PATH": "/bin",
    }
    env = psql_environ(environ, TOKEN, Connection(HOST, 5432, USER, "db"))
    assert env["PATH"] == "/bin" and env["PGPASSWORD"] == TOKEN
    for gone in ("MY_API_TOKEN", "DATABRICKS_TOKEN", "AWS_SECRET_ACCESS_KEY", "DATABRICKS_HOST"):
        assert gone not in env
