"""`password` picks its target from what the client knows: `--host/--port/--user`, or pgAdmin's variables (server
mode), or pgAdmin's desktop command line with its placeholders substituted; no match or two is exit 2."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.files.config_store import save_config
from tests.integration.conftest import USER, UserHome
from tests.rigs.workspace import DEMO_INSTANCE

BOT = "bot-app-id"


def line_of(home: UserHome, user: str) -> str | None:
    """The password on the `.pgpass` line for `user` (both targets mint as the fake workspace's one identity, and
    the test server keeps one password per role: which line was printed is what tells the targets apart)."""
    return pgpass.lookup(home.pgpass.read_bytes(), "127.0.0.1", str(home.postgres.port), "postgres", user)


def configure_two(home: UserHome, *, rotate: bool = True) -> Path:
    """Two targets on the same host and port: the user's own login, and a service principal's role; rotated once,
    as the service does when it is installed (a target's hosts are known from then on)."""
    path = home.root / "config" / "config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    port = home.postgres.port
    targets = [
        TargetConfig(name="sales", instance=DEMO_INSTANCE, port=port),
        TargetConfig(name="sales-bot", host="127.0.0.1", port=port, user=BOT),
    ]
    save_config(RotatorConfig(targets=targets, pgpass_file=str(home.pgpass)), path)
    if rotate:
        rotated = home.rotator("--once", "--config", str(path))
        assert rotated.returncode == 0, rotated.stderr
    return path


def test_host_port_and_user_pick_the_target_whose_line_is_printed(home: UserHome):
    configure_two(home)
    port = str(home.postgres.port)
    result = home.rotator("password", "--host", "127.0.0.1", "--port", port, "--user", USER)
    assert result.returncode == 0, result.stderr
    assert result.stdout.removesuffix("\n") == line_of(home, USER) != line_of(home, BOT)
    bot = home.rotator("password", "--host", "127.0.0.1", "--user", BOT)
    assert bot.stdout.removesuffix("\n") == line_of(home, BOT)
    again = home.rotator("password", "--host=127.0.0.1", f"--port={port}", f"--user={USER}", "--database=postgres")
    assert (again.returncode, again.stdout) == (0, result.stdout)  # from the file now


def test_pgadmins_server_mode_variables_pick_the_target(home: UserHome):
    configure_two(home)
    pgadmin = {
        "PGADMIN_PASSEXEC_HOST": "127.0.0.1",
        "PGADMIN_PASSEXEC_PORT": str(home.postgres.port),
        "PGADMIN_PASSEXEC_USERNAME": USER,
        "PGADMIN_PASSEXEC_DATABASE": "postgres",
        "PGADMIN_PASSEXEC_PGADMIN_USER": "admin@example.com",
    }
    result = home.rotator("password", env=pgadmin)
    assert result.returncode == 0, result.stderr
    assert result.stdout.removesuffix("\n") == line_of(home, USER) != line_of(home, BOT)


def test_pgadmins_desktop_command_line_with_its_placeholders_substituted(home: UserHome):
    """pgAdmin desktop runs the command through a shell, `%USERNAME%` replaced by the role quoted as an identifier
    (`"someone@example.com"`), the others as they are."""
    configure_two(home)
    command = (
        f"{shlex.quote(sys.executable)} -m databricks.labs.oauth_rotator password "
        "--host %HOSTNAME% --port %PORT% --user %USERNAME%"
    )
    substituted = (
        command.replace("%HOSTNAME%", "127.0.0.1")
        .replace("%PORT%", str(home.postgres.port))
        .replace("%USERNAME%", f'"{USER}"')
    )
    result = home.rotator("password", "--target", "sales")
    desktop = subprocess.run(  # noqa: S602  # as pgAdmin desktop runs it: through a shell
        substituted, shell=True, env=home.env, capture_output=True, text=True, timeout=60, check=False, cwd=home.root
    )
    assert desktop.returncode == 0, desktop.stderr
    assert desktop.stdout == result.stdout


def test_two_targets_on_one_host_without_the_user_is_exit_2_naming_both(home: UserHome):
    configure_two(home)
    issued = len(home.workspace.issued)
    result = home.rotator("password", "--host", "127.0.0.1")
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "matches 2 targets: sales (" in result.stderr and f"sales-bot ({BOT}@127.0.0.1:" in result.stderr
    assert len(home.workspace.issued) == issued  # nothing asked for


def test_a_host_no_target_serves_is_exit_2_naming_the_candidates(home: UserHome):
    configure_two(home, rotate=False)
    result = home.rotator("password", env={"PGADMIN_PASSEXEC_HOST": "db.elsewhere.example.com"})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(
        "databricks-oauth-rotator: error: no configured target serves host db.elsewhere.example.com "
        "(PGADMIN_PASSEXEC_HOST); configured: sales (not rotated yet); sales-bot ("
    )
    assert len(result.stderr.splitlines()) == 1
    assert home.workspace.issued == []
