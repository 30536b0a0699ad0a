"""Where oauth-rotator's files are, and how a process the CLI started for the sandbox finds them."""

from __future__ import annotations

import json
from pathlib import Path

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.lakebase.workspace import login_profile


def test_own_labs_folders_are_oauth_rotators_whoever_started_us(tmp_path: Path):
    ours = tmp_path / ".databricks" / "labs" / "oauth-rotator"
    sandbox = tmp_path / ".databricks" / "labs" / "sandbox" / "config"
    moved = paths.own_labs_folders({"HOME": str(tmp_path), "DATABRICKS_LABS_CONFIG_DIR": str(sandbox)})
    assert moved == {
        "DATABRICKS_LABS_CONFIG_DIR": str(ours / "config"),
        "DATABRICKS_LABS_STATE_DIR": str(ours / "state"),
        paths.LOGIN_DIR_VARIABLE: str(sandbox),
    }
    assert paths.default_config_file(moved) == ours / "config" / "config.yml"
    assert paths.status_file(moved) == ours / "state" / "status.json"
    # Started as ourselves (or with no CLI at all), there is no other login to remember.
    assert paths.LOGIN_DIR_VARIABLE not in paths.own_labs_folders({"HOME": str(tmp_path)})
    same = {"HOME": str(tmp_path), "DATABRICKS_LABS_CONFIG_DIR": str(ours / "config")}
    assert paths.LOGIN_DIR_VARIABLE not in paths.own_labs_folders(same)


def test_the_sandboxs_login_names_the_default_profile_before_ours(tmp_path: Path):
    sandbox, ours = tmp_path / "sandbox", tmp_path / "ours"
    for folder, profile in ((sandbox, "from-sandbox"), (ours, "from-ours")):
        folder.mkdir()
        (folder / "login.json").write_text(json.dumps({"workspace_profile": profile}))
    environ = {"DATABRICKS_LABS_CONFIG_DIR": str(ours)}
    assert login_profile(environ) == "from-ours"
    assert login_profile({**environ, paths.LOGIN_DIR_VARIABLE: str(sandbox)}) == "from-sandbox"
    (sandbox / "login.json").write_text("{}")  # the sandbox installed with the environment's login: ours decides
    assert login_profile({**environ, paths.LOGIN_DIR_VARIABLE: str(sandbox)}) == "from-ours"


def test_libpqs_windows_folder_is_one_we_create(tmp_path):
    """libpq reads %APPDATA%\\postgresql\\pgpass.conf but never creates the folder (issue #24, item 4)."""
    from databricks.labs.oauth_rotator.paths import creatable_folder, libpq_windows_folder

    environ = {"APPDATA": str(tmp_path)}
    folder = libpq_windows_folder(environ, platform="win32")
    assert folder == tmp_path / "postgresql"
    assert creatable_folder(tmp_path / "postgresql", environ, platform="win32")
    assert not creatable_folder(tmp_path / "other", environ, platform="win32")
    assert not creatable_folder(
        tmp_path / "missing" / "postgresql", {"APPDATA": str(tmp_path / "missing")}, platform="win32"
    )
    assert libpq_windows_folder(environ, platform="linux") is None
