"""The parsed config kept for the fast commands (`files/config_cache.py`): used only for the same file with the same
bytes, and only when the cache passes the config's trust rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.files.config_cache import cached_settings, remember
from databricks.labs.oauth_rotator.files.config_store import read_config

CONFIG = """# written by hand
targets:
  - host: "h.example.com"   # quoted
    name: 'sales'
margin_minutes: 5
"""


def setup(tmp_path: Path) -> tuple[str, dict[str, str]]:
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    return str(config), {"HOME": str(tmp_path), "DATABRICKS_LABS_STATE_DIR": str(tmp_path / "state")}


def test_what_the_full_reader_read_is_answered_from_the_cache(tmp_path):
    config, environ = setup(tmp_path)
    assert cached_settings(config, environ) is None
    remember(read_config(Path(config)), environ)
    assert cached_settings(config, environ) == {
        "targets": [{"host": "h.example.com", "name": "sales"}],
        "margin_minutes": 5,
    }
    assert os.stat(tmp_path / "state" / "config.json").st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "edit",
    [
        lambda path: path.write_text(CONFIG.replace("margin_minutes: 5", "margin_minutes: 6")),  # same size
        lambda path: path.write_text(CONFIG + "\n"),
        lambda path: os.utime(path, ns=(1, 1)),
    ],
)
def test_any_edit_of_the_config_is_a_miss(tmp_path, edit):
    config, environ = setup(tmp_path)
    remember(read_config(Path(config)), environ)
    edit(Path(config))
    assert cached_settings(config, environ) is None


def test_a_cache_for_another_file_or_of_another_format_is_a_miss(tmp_path):
    config, environ = setup(tmp_path)
    remember(read_config(Path(config)), environ)
    other = tmp_path / "other.yml"
    other.write_text(CONFIG)
    assert cached_settings(str(other), environ) is None
    cache = tmp_path / "state" / "config.json"
    cache.write_text(cache.read_text().replace('"format": 1', '"format": 0'))
    assert cached_settings(config, environ) is None


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX ownership")
def test_a_cache_others_could_write_is_not_trusted(tmp_path):
    config, environ = setup(tmp_path)
    remember(read_config(Path(config)), environ)
    (tmp_path / "state" / "config.json").chmod(0o666)
    assert cached_settings(config, environ) is None
    (tmp_path / "state" / "config.json").chmod(0o600)
    (tmp_path / "state").chmod(0o777)
    assert cached_settings(config, environ) is None


def test_a_cache_that_cannot_be_written_costs_nothing_but_a_miss(tmp_path):
    config, environ = setup(tmp_path)
    (tmp_path / "state").write_text("a file where the folder should be")
    remember(read_config(Path(config)), environ)
    assert cached_settings(config, environ) is None


def test_the_same_file_read_again_is_not_written_again(tmp_path):
    config, environ = setup(tmp_path)
    remember(read_config(Path(config)), environ)
    cache = tmp_path / "state" / "config.json"
    before = os.stat(cache)
    remember(read_config(Path(config)), environ)
    after = os.stat(cache)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_a_cache_written_by_another_oauth_rotator_is_a_miss(tmp_path):
    config, environ = setup(tmp_path)
    remember(read_config(Path(config)), environ)
    cache = tmp_path / "state" / "config.json"
    cache.write_text(cache.read_text().replace('"rotator": "', '"rotator": "0.0.0-'))
    assert cached_settings(config, environ) is None
