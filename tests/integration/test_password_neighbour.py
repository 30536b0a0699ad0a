"""`password` against another local user (issues 22 and 23 (8)): it refuses a config, and a password file, that fail
the trust rules exactly as `--once` does (exit 2, the same one line naming the path and the fix, nothing on stdout,
nothing minted), whether it answers from the cache or reads the config in full. The victim is the test process
(root in CI), the attacker a throwaway OS user."""

from __future__ import annotations

import json
from pathlib import Path

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files.config_store import save_config
from tests.integration.conftest import UserHome
from tests.rigs.users import OtherUser, sticky_directory
from tests.rigs.workspace import DEMO_INSTANCE


def saved_config(victim: UserHome, folder: Path, pgpass_file: Path) -> Path:
    target = TargetConfig(name="sales", instance=DEMO_INSTANCE, port=victim.postgres.port)
    return save_config(RotatorConfig(targets=[target], pgpass_file=str(pgpass_file)), folder / "config.yml")


def refused_alike(victim: UserHome, config: Path, *fragments: str) -> None:
    """`password` and `--once` exit 2 with the same one line, which says what and how to fix it; nothing printed on
    stdout, nothing minted."""
    issued = len(victim.workspace.issued)
    password = victim.rotator("password", "--config", str(config))
    once = victim.rotator("--once", "--config", str(config))
    for result in (password, once):
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert "unsafe permissions" in line and "Traceback" not in line
        for fragment in fragments:
            assert fragment in line, line
    assert password.stderr == once.stderr
    assert len(victim.workspace.issued) == issued, "refused before a credential was requested"


def test_a_config_in_a_folder_others_can_write_is_refused_from_the_cache_too(victim: UserHome) -> None:
    folder = victim.root / "cfg"
    folder.mkdir(mode=0o700)
    config = saved_config(victim, folder, victim.pgpass)
    minted = victim.rotator("password", "--config", str(config))
    assert minted.returncode == 0, minted.stderr  # read in full, checked, remembered
    assert (victim.root / ".databricks" / "labs" / "oauth-rotator" / "state" / "config.json").exists()
    folder.chmod(0o777)  # from now on anyone can swap the config; the cache still matches its bytes
    refused_alike(victim, config, f"{folder} is writable by its group and others", f"chmod go-w {folder}")


def test_a_config_of_another_user_naming_their_password_file_is_refused(victim: UserHome, attacker: OtherUser) -> None:
    """0.2's fast path read it and printed the attacker's bytes from the attacker's password file."""
    with sticky_directory() as shared:
        bait = shared / "pgpass"
        their_config = shared / "config.yml"
        text = f"targets:\n  - name: sales\n    host: 127.0.0.1\npgpass_file: {bait}\n"
        planted = attacker.run("sh", "-c", f'printf %s "$1" > {their_config}; echo "x:5432:*:u:t" > {bait}', "sh", text)
        assert planted.returncode == 0, planted.stderr
        refused_alike(
            victim, their_config, f"on the way to {their_config} belongs to uid {attacker.uid}", "mkdir -m 700"
        )


def test_a_password_file_others_could_replace_is_refused_from_the_cache_too(victim: UserHome) -> None:
    folder = victim.root / "pgpass-folder"
    folder.mkdir(mode=0o700)
    config_folder = victim.root / "cfg"
    config_folder.mkdir(mode=0o700)
    config = saved_config(victim, config_folder, folder / "pgpass")
    minted = victim.rotator("password", "--config", str(config))
    assert minted.returncode == 0, minted.stderr
    assert victim.rotator("password", "--config", str(config)).stdout == minted.stdout  # from the file, cached
    folder.chmod(0o777)
    refused_alike(victim, config, f"{folder} is writable by its group and others")


def test_a_password_file_planted_by_another_user_in_a_shared_folder_is_refused(
    victim: UserHome, attacker: OtherUser
) -> None:
    """With a fresh credential recorded in status.json for the line the attacker wrote, nothing of theirs is
    printed: the file fails the trust rule before it is read."""
    config_folder = victim.root / "cfg"
    config_folder.mkdir(mode=0o700)
    with sticky_directory() as shared:
        planted = shared / "pgpass"
        assert attacker.run("sh", "-c", f"echo '127.0.0.1:5432:*:u:theirs' > {planted}").returncode == 0
        config = saved_config(victim, config_folder, planted)
        refused_alike(victim, config, f"{planted} belongs to uid {attacker.uid}")
    status = victim.root / ".databricks" / "labs" / "oauth-rotator" / "state" / "status.json"
    assert not status.exists() or "theirs" not in json.dumps(json.loads(status.read_text()))
