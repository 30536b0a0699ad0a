"""Issue 19, end to end: another local user against the product run as a user runs it (console scripts, a real
workspace rig, PostgreSQL). The victim is the test process (root in CI), the attacker a throwaway OS user.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files.config_store import save_config
from tests.integration.conftest import USER, UserHome
from tests.rigs.users import OtherUser, sticky_directory
from tests.rigs.workspace import DEMO_INSTANCE

INSTALL_SCRIPT = "from databricks.labs.oauth_rotator.commands.service_scripts import install_main; install_main()"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def under_umask_000(home: UserHome, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", 'umask 000; exec "$@"', "sh", *argv],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=home.root,
    )


def test_under_umask_000_install_and_a_run_create_every_labs_folder_0700(victim: UserHome) -> None:
    flags = ["--instance", DEMO_INSTANCE, "--pg-port", str(victim.postgres.port), "--pgpass-file", str(victim.pgpass)]
    env = {**victim.env, "XDG_RUNTIME_DIR": str(victim.root / "no-runtime")}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    installed = subprocess.run(
        ["sh", "-c", 'umask 000; exec "$@"', "sh", sys.executable, "-c", INSTALL_SCRIPT, *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=victim.root,
    )
    labs = victim.root / ".databricks" / "labs" / "oauth-rotator"
    assert (labs / "config" / "config.yml").exists(), installed.stderr
    rotated = under_umask_000(victim, [sys.executable, "-m", "databricks.labs.oauth_rotator", "--once", *flags])
    assert rotated.returncode == 0, rotated.stderr
    for folder in (victim.root / ".databricks", victim.root / ".databricks" / "labs", labs, labs / "config"):
        assert mode_of(folder) == 0o700, folder
    assert mode_of(labs / "state") == 0o700
    for file in (labs / "config" / "config.yml", labs / "state" / "status.json", victim.pgpass, victim.log_file):
        assert mode_of(file) == 0o600, file
    assert victim.login().returncode == 0


def _plant_hostile_config(attacker: OtherUser, labs: Path, config: RotatorConfig, loot: Path) -> None:
    """What the attacker did to 0.1: swap the victim's config/ for one whose hook runs their command."""
    hostile = dataclasses.replace(config, exec_after=f"/bin/sh -c 'id > {loot}/pwned; cat ~/.pgpass > {loot}/stolen'")
    text = save_config(hostile, loot / "hostile.yml").read_text()
    script = (
        f"set -e; mv {labs}/config {labs}/config.old; mkdir -m 0755 {labs}/config; "
        f'printf %s "$1" > {labs}/config/config.yml'
    )
    planted = attacker.run("sh", "-c", script, "sh", text)
    assert planted.returncode == 0, planted.stderr
    (loot / "hostile.yml").unlink()
    assert "exec_after" in (labs / "config" / "config.yml").read_text()


def test_another_user_cannot_get_a_hook_run_by_replacing_the_config_folder(
    victim: UserHome, attacker: OtherUser, tmp_path: Path
) -> None:
    """0.1 left ~/.databricks... 0777 under umask 000; upgraded, the product refuses the planted config (exit 2)."""
    labs = victim.root / ".databricks" / "labs" / "oauth-rotator"
    config = RotatorConfig(
        targets=[TargetConfig(instance=DEMO_INSTANCE, port=victim.postgres.port)], pgpass_file=str(victim.pgpass)
    )
    config_path = save_config(config, labs / "config" / "config.yml")
    for folder in (victim.root / ".databricks", victim.root / ".databricks" / "labs", labs):
        folder.chmod(0o777)  # as 0.1 created them under umask 000
    loot = tmp_path / "loot"
    loot.mkdir()
    _plant_hostile_config(attacker, labs, config, loot)

    once = victim.rotator("--once", "--config", str(config_path))
    assert once.returncode == 2, once.stderr
    lines = once.stderr.strip().splitlines()
    assert len(lines) == 1, once.stderr
    assert f"unsafe permissions: {victim.root / '.databricks'} is writable by its group and others" in lines[0]
    assert "chmod go-w" in lines[0], lines[0]

    scheduler = victim.start("--config", str(config_path))
    try:
        deadline = time.monotonic() + 8
        while scheduler.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        if scheduler.poll() is None:
            scheduler.send_signal(signal.SIGTERM)
        _, err = scheduler.communicate(timeout=30)
    assert scheduler.returncode == 2, err
    assert "unsafe permissions" in err and "Traceback" not in err
    assert sorted(os.listdir(loot)) == [], "the attacker's hook never ran"
    assert not victim.pgpass.exists(), "no credential was written under a config someone else controls"
    assert not victim.secrets_seen(once.stdout, once.stderr, err)


def test_a_pgpass_held_locked_by_another_process_names_it_and_fails_before_the_deadline(home: UserHome) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\n"
            "from databricks.labs.oauth_rotator.files.writer import FileLock\n"
            "FileLock(Path(sys.argv[1])).acquire()\nprint('locked', flush=True)\ntime.sleep(120)\n",
            str(home.root / ".pgpass.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = home.rotator("--once", "--instance", DEMO_INSTANCE, "--pg-username", USER, *home.target_flags())
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line or "locked" in line]
    assert any(f"`.pgpass` is locked by process {holder.pid}" in line for line in errors), result.stderr
    assert "is the workspace reachable" not in result.stderr
    assert took < 25, f"took {took:.1f} s"
    assert not home.secrets_seen(result.stdout, result.stderr)


def test_a_pgpass_file_linked_by_another_user_to_the_victims_bashrc_is_refused_before_any_credential(
    victim: UserHome, attacker: OtherUser
) -> None:
    """Issue 19's first case: `--pgpass-file /tmp/s/pgpass`, a link another user planted to the victim's ~/.bashrc."""
    bashrc = victim.root / ".bashrc"
    bashrc.write_text("# my shell\n")
    bashrc.chmod(0o644)
    with sticky_directory() as shared:
        planted = shared / "pgpass"
        assert attacker.run("ln", "-s", str(bashrc), str(planted)).returncode == 0
        result = victim.rotator(
            "--once", "--instance", DEMO_INSTANCE, "--pg-username", USER, "--pg-port", str(victim.postgres.port),
            "--pgpass-file", str(planted),
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"the entry on the way to {planted} belongs to uid {attacker.uid}" in result.stderr
    assert bashrc.read_text() == "# my shell\n" and mode_of(bashrc) == 0o644
    assert victim.workspace.issued == [], "refused before a credential was requested"
