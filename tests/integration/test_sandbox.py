"""oauth-rotator through databrickslabs/sandbox: a tree laid out like the sandbox with contrib/sandbox/sandbox.patch
applied, its router run as the Databricks CLI runs a labs entrypoint, against the fake workspace, a real PostgreSQL
and real `psql` logins; the real systemd manager writes its unit into the temporary home (a stand-in `systemctl`
answers, as there is no user manager here). And both ways in at once: one config, one service, one set of lines.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from databricks.labs.oauth_rotator.commands.sandbox import PREFIX, SANDBOX_COMMANDS
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.files.config_store import load_config, save_config
from databricks.labs.oauth_rotator.service.systemd import UNIT_NAME, extract_argv
from tests.rigs.postgres import LocalPostgres
from tests.rigs.sandbox import LAYOUT, PATCH, SandboxInstall, apply_patch, install_fake_service_tools, write_layout
from tests.rigs.workspace import DEMO_INSTANCE, FakeWorkspace

ROOT = Path(__file__).resolve().parents[2]
OUR_LABS_YML = yaml.safe_load((ROOT / "labs.yml").read_text(encoding="utf-8"))
USER = "someone@example.com"


class OurLabs:
    """`databricks labs oauth-rotator COMMAND` for the same user, as tests/integration/test_labs_contract.py runs it."""

    def __init__(self, home: Path, bin_dir: Path, login: dict[str, str]) -> None:
        self.home = home
        self.folder = home / ".databricks" / "labs" / "oauth-rotator"
        self.bin_dir = bin_dir
        self.login = login

    def run(self, command: str, **flags: str) -> subprocess.CompletedProcess[str]:
        declared = next(c for c in OUR_LABS_YML["commands"] if c["name"] == command)
        sent = {f["name"]: f["default"] for f in declared.get("flags") or []}
        sent.update(flags)
        payload = json.dumps({"command": command, "flags": {**sent, "log_level": "warn"}, "output_type": ""})
        user = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_", "PG", "XDG_CONFIG"))}
        env = {
            **user,
            "HOME": str(self.home),
            "DATABRICKS_LABS_CONFIG_DIR": str(self.folder / "config"),
            "DATABRICKS_LABS_STATE_DIR": str(self.folder / "state"),
            "DATABRICKS_LABS_CACHE_DIR": str(self.folder / "cache"),
            "DATABRICKS_LABS_LIB_DIR": str(ROOT),
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
            "PATH": f"{self.bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PGDATABASE": "postgres",
            **({} if declared.get("is_unauthenticated") else self.login),
        }
        return subprocess.run(
            [sys.executable, str(ROOT / OUR_LABS_YML["entrypoint"]), payload],
            env=env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )


class User:
    """One user's machine: a home, the fake service tools, a ~/.databrickscfg profile, and both ways in."""

    def __init__(self, root: Path, workspace: FakeWorkspace) -> None:
        self.home = root / "home"
        self.workspace = workspace
        self.pgpass = self.home / ".pgpass"
        bin_dir = root / "bin"
        self.systemctl = install_fake_service_tools(bin_dir)
        self.home.mkdir(parents=True)
        cfg = self.home / ".databrickscfg"
        cfg.write_text(
            f"[lakebase]\nhost = {workspace.host}\nauth_type = oauth-m2m\n"
            f"client_id = {workspace.client_id}\nclient_secret = {workspace.client_secret}\n"
        )
        cfg.chmod(0o600)
        login = {
            "DATABRICKS_HOST": workspace.host,
            "DATABRICKS_AUTH_TYPE": "oauth-m2m",
            "DATABRICKS_CLIENT_ID": workspace.client_id,
            "DATABRICKS_CLIENT_SECRET": workspace.client_secret,
        }
        self.sandbox = SandboxInstall(self.home, bin_dir=bin_dir, login=login)
        self.ours = OurLabs(self.home, bin_dir, login)
        self.config_file = self.ours.folder / "config" / "config.yml"
        self.unit_dir = self.home / ".config" / "systemd" / "user"

    def configure(self, postgres: LocalPostgres) -> RotatorConfig:
        """A saved config without the installer (the fake Lakebase listens on a random port)."""
        config = RotatorConfig(
            targets=[TargetConfig(instance=DEMO_INSTANCE, port=postgres.port, user=USER)],
            profile="lakebase",
            pgpass_file=str(self.pgpass),
        )
        save_config(config, self.config_file)
        return config

    def units(self) -> list[Path]:
        return sorted(self.unit_dir.glob("*")) if self.unit_dir.exists() else []

    def unit_argv(self) -> list[str]:
        (unit,) = self.units()
        return extract_argv(unit.read_text(encoding="utf-8"))

    def our_lines(self) -> list[Any]:
        return [line.entry for line in pgpass.parse(self.pgpass.read_bytes()) if line.entry is not None]


@pytest.fixture
def user(tmp_path: Path, workspace: FakeWorkspace) -> User:
    return User(tmp_path, workspace)


def sandbox_name(command: str) -> str:
    return f"{PREFIX}{command}"


def test_the_patch_applies_cleanly_to_a_tree_laid_out_like_the_sandbox(tmp_path: Path):
    write_layout(tmp_path)
    checked = apply_patch(tmp_path, check=True)
    assert checked.returncode == 0, checked.stderr
    dry_run = subprocess.run(
        ["patch", "-p1", "--dry-run", "--forward", "-i", str(PATCH)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert dry_run.returncode == 0, dry_run.stdout + dry_run.stderr
    assert "fuzz" not in dry_run.stdout, dry_run.stdout  # every context line matches (offsets: a shorter tree)
    assert {path.name for path in tmp_path.iterdir()} == set(LAYOUT)  # checks only: nothing written


def test_the_patch_moves_the_pins_and_adds_the_dependency(tmp_path: Path):
    write_layout(tmp_path)
    assert apply_patch(tmp_path).returncode == 0
    theirs = (tmp_path / "pyproject.toml").read_text(encoding="utf-8")
    ours = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert requirement(LAYOUT["pyproject.toml"], "databricks-sdk") == Requirement("databricks-sdk==0.40.0")
    (pinned,) = requirement(theirs, "databricks-sdk").specifier
    floor = requirement(ours, "databricks-sdk")
    assert floor.specifier.contains(pinned.version), f"{pinned} is outside oauth-rotator's {floor}"
    (blueprint,) = requirement(theirs, "databricks-labs-blueprint").specifier
    assert requirement(ours, "databricks-labs-blueprint").specifier.contains(blueprint.version)
    rotator = requirement(theirs, "databricks-labs-oauth-rotator")
    # The release that ships commands/sandbox.py: the one the changelog is preparing (or the last one made).
    (release, *_) = re.findall(r"^## (\d+\.\d+\.\d+)", (ROOT / "CHANGELOG.md").read_text(), flags=re.MULTILINE)
    assert rotator.specifier.contains(release), f"{rotator} does not take {release}, the release with this adapter"


def requirement(pyproject: str, name: str) -> Requirement:
    """The first quoted requirement on `name` in a pyproject.toml's text (Python 3.10 has no tomllib)."""
    (first, *_) = re.findall(rf'"({re.escape(name)}(?:\[[^\]]*\])?[=~<>!][^"]*)"', pyproject)
    return Requirement(first)


def test_the_sandbox_declares_each_command_as_our_labs_yml_does(tmp_path: Path):
    write_layout(tmp_path)
    assert apply_patch(tmp_path).returncode == 0
    declared = {c["name"]: c for c in yaml.safe_load((tmp_path / "labs.yml").read_text())["commands"]}
    ours = {c["name"]: c for c in OUR_LABS_YML["commands"]}
    assert "ip-access-list-analyzer" in declared  # the sandbox's tools stay
    assert {n for n in declared if n.startswith(PREFIX)} == {sandbox_name(c) for c in SANDBOX_COMMANDS}
    router = (tmp_path / "cli.py").read_text()
    for command in SANDBOX_COMMANDS:
        assert f'"{sandbox_name(command)}": lakebase_oauth("{command}"),' in router
        if command not in ours:
            continue  # `password` is declared by the issue that adds it (18); checked once it is in labs.yml
        theirs, mine = declared[sandbox_name(command)], ours[command]
        assert theirs["description"] == f"Lakebase OAuth: {mine['description']}"
        assert theirs.get("flags") == mine.get("flags"), command
        assert theirs.get("is_unauthenticated", False) == mine.get("is_unauthenticated", False), command
        assert theirs.get("table_template") == mine.get("table_template"), command


def test_configure_rotate_status_and_uninstall_through_the_sandbox(user: User, postgres: LocalPostgres):
    sandbox = user.sandbox
    # The profile chosen at `databricks labs install sandbox` is the installer's default.
    (sandbox.config_dir / "login.json").write_text(json.dumps({"workspace_profile": "lakebase"}))
    configured = sandbox.run(
        sandbox_name("configure"),
        answers=["", "0", "", "", str(user.pgpass), "", "yes"],  # Enter for the profile: the sandbox's login
    )
    assert configured.returncode == 0, configured.stderr
    assert f"Saved {user.config_file}" in configured.stdout
    assert f"Installed {user.unit_dir / UNIT_NAME}" in configured.stdout
    config = load_config(user.config_file)
    assert config.profile == "lakebase" and config.service is True
    assert config.targets == [TargetConfig(instance=DEMO_INSTANCE, user=USER)]
    # oauth-rotator's files are in its own folders, none in the sandbox's.
    assert sorted(p.name for p in sandbox.config_dir.iterdir()) == ["login.json"]
    assert sorted(p.name for p in sandbox.state_dir.iterdir()) == ["venv"]
    argv = user.unit_argv()
    assert argv[0] == str(sandbox.python) and argv[-2:] == ["--config", str(user.config_file)]
    unit = (user.unit_dir / UNIT_NAME).read_text()
    assert f'"DATABRICKS_LABS_CONFIG_DIR={user.ours.folder / "config"}"' in unit
    assert f'"DATABRICKS_LABS_STATE_DIR={user.ours.folder / "state"}"' in unit

    config.targets[0].port = postgres.port  # the one edit a user would not need
    save_config(config, user.config_file)
    rotated = sandbox.run(sandbox_name("rotate"))
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout == f"rotated {DEMO_INSTANCE}\n"
    assert f"Rotated {DEMO_INSTANCE}" in rotated.stderr  # INFO shows despite the CLI's log_level warn
    login = postgres.psql_login(user=USER, passfile=user.pgpass, host="127.0.0.1")
    assert login.returncode == 0, login.stderr

    status = sandbox.run(sandbox_name("status"))
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)  # all of stdout is one JSON value, for the table_template
    assert row["target"] == DEMO_INSTANCE and row["user"] == USER and row["host"] == "127.0.0.1"
    assert row["expires_in"].endswith("min") and row["last_error"] == "-"
    assert row["service"] == "running (pid 4242)"

    removed = sandbox.run(sandbox_name("uninstall"))
    assert removed.returncode == 0, removed.stderr
    assert f"Stopped {UNIT_NAME} and removed {user.unit_dir / UNIT_NAME}" in removed.stdout
    assert user.units() == []
    (row,) = json.loads(sandbox.run(sandbox_name("status")).stdout)
    assert row["service"] == "not installed"
    texts = [configured.stdout, configured.stderr, rotated.stdout, rotated.stderr, status.stdout, removed.stdout]
    assert [s for s in user.workspace.issued_secrets() if any(s in text for text in [*texts, unit])] == []


@pytest.mark.parametrize("first", ["sandbox", "oauth-rotator"])
def test_both_ways_in_end_with_one_service_and_one_set_of_lines(user: User, postgres: LocalPostgres, first: str):
    user.configure(postgres)
    doors = {
        "sandbox": lambda command: user.sandbox.run(sandbox_name(command)),
        "oauth-rotator": user.ours.run,
    }
    pythons = {"sandbox": str(user.sandbox.python), "oauth-rotator": sys.executable}
    second = next(door for door in doors if door != first)

    for door in (first, second):
        installed = doors[door]("install")
        assert installed.returncode == 0, installed.stderr
        rotated = doors[door]("rotate")
        assert rotated.returncode == 0, rotated.stderr
        assert [unit.name for unit in user.units()] == [UNIT_NAME]
        assert user.unit_argv()[0] == pythons[door]  # the last install decides which venv the one service runs
    assert "Updated" in installed.stdout and "restarted" in installed.stdout  # the same definition, replaced

    lines = user.our_lines()
    assert [(e.host, e.database, e.user) for e in lines] == [("127.0.0.1", "*", USER)]
    assert postgres.psql_login(user=USER, passfile=user.pgpass, host="127.0.0.1").returncode == 0
    rows = {door: json.loads(doors[door]("status").stdout) for door in doors}
    for row in (*rows["sandbox"], *rows["oauth-rotator"]):
        del row["expires_in"]  # "60 min" a second before "59 min"; `expires_at` is compared
    assert rows["sandbox"] == rows["oauth-rotator"]
    (row,) = rows["sandbox"]
    assert row["target"] == DEMO_INSTANCE and row["service"] == "running (pid 4242)"


# Every command the sandbox declares, with its flags at their defaults, on a machine with nothing configured: each
# reaches our command (no "unknown command"), and fails as `databricks labs oauth-rotator` does.
EXPECTED = {
    "configure": (1, "standard input is closed"),
    "rotate": (2, "oauth-rotator configure"),
    "install": (2, "oauth-rotator configure"),
    "uninstall": (0, ""),
    "status": (0, "No rotation has run yet"),
    "logs": (0, "No log yet"),
    "doctor": (1, ""),
    "psql": (2, "oauth-rotator configure"),
    "env": (2, "oauth-rotator configure"),
    "password": (2, "oauth-rotator configure"),
}


@pytest.mark.parametrize("command", SANDBOX_COMMANDS)
def test_every_sandbox_command_is_routed_and_fails_as_ours_does(user: User, command: str):
    assert set(EXPECTED) == set(SANDBOX_COMMANDS)
    if command not in {c["name"] for c in OUR_LABS_YML["commands"]}:
        pytest.skip(f"`{command}` comes with the issue that adds it to labs.yml")
    code, message = EXPECTED[command]
    result = user.sandbox.run(sandbox_name(command))
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    for bad in ("unknown command", "unknown flag", "Traceback", "cannot find command"):
        assert bad not in result.stderr
    ours = user.ours.run(command)
    assert (ours.returncode, ours.stdout, ours.stderr) == (result.returncode, result.stdout, result.stderr)
