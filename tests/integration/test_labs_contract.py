"""The project as `databricks labs` runs it: the entrypoint by path with a JSON payload, the install hook with no
payload from the lib folder, the CLI's environment (labs folders, PYTHONPATH replaced, the resolved login as
environment variables), against the fake workspace and a real PostgreSQL, with real `psql` logins.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files.config_store import load_config, save_config
from tests.rigs.postgres import LocalPostgres
from tests.rigs.workspace import DEMO_INSTANCE, FakeWorkspace

LIB = Path(__file__).resolve().parents[2]
LABS_YML = yaml.safe_load((LIB / "labs.yml").read_text(encoding="utf-8"))
USER = "someone@example.com"


class Labs:
    """What `databricks labs oauth-rotator ...` does for one user: folders, environment, and the child process."""

    def __init__(self, home: Path, workspace: FakeWorkspace) -> None:
        self.home = home
        self.workspace = workspace
        self.config_dir = home / ".databricks" / "labs" / "oauth-rotator" / "config"
        self.state_dir = home / ".databricks" / "labs" / "oauth-rotator" / "state"
        self.cwd = home / "somewhere" / "else"
        self.cwd.mkdir(parents=True)
        self.pgpass = home / ".pgpass"
        self.login = {
            "DATABRICKS_HOST": workspace.host,
            "DATABRICKS_AUTH_TYPE": "oauth-m2m",
            "DATABRICKS_CLIENT_ID": workspace.client_id,
            "DATABRICKS_CLIENT_SECRET": workspace.client_secret,
        }
        """The login the CLI resolved, flattened into variables (no profile name reaches the child)."""

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.yml"

    def env(self, command: str | None = None, **extra: str) -> dict[str, str]:
        user = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_", "PG", "XDG_CONFIG"))}
        labs = self.home / ".databricks" / "labs" / "oauth-rotator"
        env = {
            **user,
            "HOME": str(self.home),
            "DATABRICKS_CLI_VERSION": "0.270.0",
            "DATABRICKS_LABS_CONFIG_DIR": str(self.config_dir),
            "DATABRICKS_LABS_STATE_DIR": str(self.state_dir),
            "DATABRICKS_LABS_CACHE_DIR": str(labs / "cache"),
            "DATABRICKS_LABS_LIB_DIR": str(LIB),
            "PYTHONPATH": f"{LIB}{os.pathsep}{LIB / 'src'}",  # replaces the user's
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PGDATABASE": "postgres",
        }
        if command is None or not declared(command).get("is_unauthenticated"):
            env.update(self.login)
        env.update(extra)
        return env

    def run(self, command: str, *, flags: dict[str, str] | None = None, timeout: float = 90, **env: str) -> Any:
        """`databricks labs oauth-rotator COMMAND` with every declared flag sent as a string, as the CLI does."""
        sent = {f["name"]: f["default"] for f in declared(command).get("flags") or []}
        sent.update(flags or {})
        payload = json.dumps({"command": command, "flags": {**sent, "log_level": "warn"}, "output_type": ""})
        return subprocess.run(
            [sys.executable, str(LIB / LABS_YML["entrypoint"]), payload],
            env=self.env(command, **env),
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def install_hook(self, answers: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        """The install hook: `python install.py`, no payload, cwd = lib, the user's answers on stdin."""
        return subprocess.run(
            [sys.executable, LABS_YML["install"]["script"]],
            env=self.env(**env),
            cwd=LIB,
            input="".join(f"{a}\n" for a in answers),
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    def configure(self, postgres: LocalPostgres, **fields: Any) -> RotatorConfig:
        config = RotatorConfig(
            targets=[TargetConfig(instance=DEMO_INSTANCE, port=postgres.port)], pgpass_file=str(self.pgpass), **fields
        )
        save_config(config, self.config_file)
        return config

    def secrets_in(self, *texts: str) -> list[str]:
        haystacks = [*texts, *(p.read_text(errors="replace") for p in self.home.glob(".databricks_oauth_rotator*"))]
        return [s for s in self.workspace.issued_secrets() if any(s in h for h in haystacks)]


def declared(command: str) -> dict[str, Any]:
    return next(c for c in LABS_YML["commands"] if c["name"] == command)


@pytest.fixture
def labs(tmp_path: Path, workspace: FakeWorkspace) -> Labs:
    return Labs(tmp_path, workspace)


def test_install_hook_then_rotate_then_psql_logs_in(labs: Labs, postgres: LocalPostgres):
    hook = labs.install_hook(
        [
            "",  # profile: none (login.json has none: the CLI resolved the login from the environment)
            "0",  # the first database offered: the demo instance
            "",  # no other database
            "",  # PostgreSQL user: the authenticated identity
            str(labs.pgpass),
            "",  # margin: 10 minutes
            "no",  # no background service here (no systemd user manager in a container)
        ]
    )
    assert hook.returncode == 0, hook.stderr
    assert f"Saved {labs.config_file}" in hook.stdout
    config = load_config(labs.config_file)
    assert config.targets == [TargetConfig(instance=DEMO_INSTANCE, user=USER)]
    assert config.profile is None and config.service is False and config.margin_minutes == 10

    # The fake Lakebase listens on a random port: the one edit a user would not need.
    config.targets[0].port = postgres.port
    save_config(config, labs.config_file)
    rotate = labs.run("rotate")
    assert rotate.returncode == 0, rotate.stderr
    assert rotate.stdout == f"rotated {DEMO_INSTANCE}\n"
    assert f"Rotated {DEMO_INSTANCE}" in rotate.stderr  # INFO shows despite the CLI's log_level warn
    login = postgres.psql_login(user=USER, passfile=labs.pgpass, host="127.0.0.1")
    assert login.returncode == 0, login.stderr

    status = labs.run("status")
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)  # all of stdout is one JSON value
    assert row["target"] == DEMO_INSTANCE and row["user"] == USER and row["host"] == "127.0.0.1"
    assert row["expires_in"].endswith("min") and row["last_error"] == "-"
    assert labs.secrets_in(hook.stdout, hook.stderr, rotate.stdout, rotate.stderr, status.stdout) == []


def test_a_pinned_profile_wins_over_the_login_the_cli_exported(labs: Labs, postgres: LocalPostgres):
    cfg = labs.home / ".databrickscfg"
    cfg.write_text(
        f"[lakebase]\nhost = {labs.workspace.host}\nauth_type = oauth-m2m\n"
        f"client_id = {labs.workspace.client_id}\nclient_secret = {labs.workspace.client_secret}\n"
    )
    cfg.chmod(0o600)
    labs.configure(postgres, profile="lakebase")
    # The CLI resolved another login (login.json's profile) and exported it: it must not decide.
    labs.login = {
        "DATABRICKS_HOST": "http://127.0.0.1:9",
        "DATABRICKS_TOKEN": "dapi-not-this",
        "DATABRICKS_AUTH_TYPE": "pat",
    }
    result = labs.run("rotate", flags={"verify": "true"}, DATABRICKS_CONFIG_FILE=str(cfg))
    assert result.returncode == 0, result.stderr
    assert "Verified: logged in to 127.0.0.1" in result.stderr  # the flag reached the command as a bool
    assert postgres.psql_login(user=USER, passfile=labs.pgpass, host="127.0.0.1").returncode == 0


def test_run_keeps_pgpass_fresh_in_the_foreground_and_stops_on_ctrl_c(labs: Labs, postgres: LocalPostgres):
    cfg = labs.home / ".databrickscfg"
    cfg.write_text(
        f"[lakebase]\nhost = {labs.workspace.host}\n"
        f"client_id = {labs.workspace.client_id}\nclient_secret = {labs.workspace.client_secret}\n"
    )
    labs.configure(postgres, profile="lakebase")
    labs.login = {"DATABRICKS_HOST": "http://127.0.0.1:9", "DATABRICKS_TOKEN": "dapi-not-this"}
    payload = json.dumps({"command": "run", "flags": {"log_level": "warn"}, "output_type": ""})
    with subprocess.Popen(
        [sys.executable, str(LIB / LABS_YML["entrypoint"]), payload],
        env=labs.env("run", DATABRICKS_CONFIG_FILE=str(cfg)),
        cwd=labs.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as daemon:
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and daemon.poll() is None:
                if postgres.psql_login(user=USER, passfile=labs.pgpass, host="127.0.0.1").returncode == 0:
                    break
                time.sleep(0.5)
            assert daemon.poll() is None, daemon.communicate()[1]
            assert postgres.psql_login(user=USER, passfile=labs.pgpass, host="127.0.0.1").returncode == 0
        finally:
            daemon.send_signal(signal.SIGINT)
            _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert "scheduler stopped" in err


def test_a_failed_rotation_exits_non_zero(labs: Labs, postgres: LocalPostgres):
    save_config(
        RotatorConfig(targets=[TargetConfig(instance="gone", port=postgres.port)], pgpass_file=str(labs.pgpass)),
        labs.config_file,
    )
    result = labs.run("rotate")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "gone" in result.stderr and "Traceback" not in result.stderr


# Every command, with its declared flags at their defaults, on a machine with nothing configured: each is routed
# (no "unknown command"), and each failure is a non-zero exit code with one clear line, never blueprint's exit 0.
EXPECTED = {
    "configure": (1, "standard input is closed"),
    "rotate": (2, "oauth-rotator configure"),
    "run": (2, "oauth-rotator configure"),
    "install": (2, "oauth-rotator configure"),
    "uninstall": (0, ""),
    "restart": (1, "not installed"),
    "status": (0, "No rotation has run yet"),
    "logs": (0, "No log yet"),
    "doctor": (1, ""),
    "psql": (2, "oauth-rotator configure"),
    "env": (2, "oauth-rotator configure"),
    "password": (2, "oauth-rotator configure"),
    "wait": (2, "oauth-rotator configure"),
    "shutdown": (0, "no scheduler is running"),
}


@pytest.mark.parametrize("command", [c["name"] for c in LABS_YML["commands"]])
def test_every_labs_command_is_routed_and_fails_loudly(labs: Labs, command: str):
    assert set(EXPECTED) == {c["name"] for c in LABS_YML["commands"]}
    code, message = EXPECTED[command]
    result = labs.run(command)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    for bad in ("unknown command", "unknown flag", "Traceback", "cannot find command"):
        assert bad not in result.stderr
    if command == "doctor":
        assert "FAIL  config" in result.stdout
    if command == "status":
        assert json.loads(result.stdout) == []


def test_status_answers_without_importing_the_sdk(labs: Labs, postgres: LocalPostgres):
    """How quick it is, is for the benchmark (`bench/bench_startup.py`); what makes it quick is checked here: the
    interpreter's own import log, as the Databricks CLI runs the entrypoint."""
    labs.configure(postgres)
    assert labs.run("rotate").returncode == 0
    result = labs.run("status", PYTHONPROFILEIMPORTTIME="1")
    assert result.returncode == 0 and len(json.loads(result.stdout)) == 1
    log = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    imported = {line.rsplit("|", 1)[-1].strip() for line in log}
    assert "databricks.labs.oauth_rotator.app.status" in imported, f"the control: {sorted(imported)}"
    assert not {name for name in imported if name.startswith(("databricks.sdk", "databricks.labs.blueprint"))}


def test_the_install_hook_cancelled_midway_saves_nothing(labs: Labs):
    result = labs.install_hook(["", "0"])  # stdin ends before the last question
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1] == "oauth-rotator install: cancelled before every question was answered"
    )
    assert not labs.config_file.exists()


def test_an_upgrade_with_no_terminal_keeps_the_config(labs: Labs, postgres: LocalPostgres):
    """`databricks labs upgrade` re-runs the install hook; from a script there is nobody to answer."""
    saved = labs.configure(postgres, profile="lakebase", margin_minutes=15)
    result = subprocess.run(
        [sys.executable, LABS_YML["install"]["script"]],
        env=labs.env(),
        cwd=LIB,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"Kept {labs.config_file}" in result.stdout
    assert load_config(labs.config_file) == saved


def test_the_uninstall_hook_with_nothing_installed_is_a_no_op(labs: Labs):
    result = subprocess.run(
        [sys.executable, LABS_YML["uninstall"]["script"]],
        env=labs.env(),
        cwd=LIB,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "not installed" in result.stdout and "nothing to do" in result.stdout
