"""The one reader of the config file, the one merge of flag values over it, and its writer
(`files/config_store.py`)."""

from __future__ import annotations

from typing import Any

import pytest

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files.config_store import (
    effective_config,
    load_config,
    merge_overrides,
    save_config,
)

HAND_WRITTEN = """\
# my Lakebase databases
pgpass_file: "~/.pgpass"      # quoted
targets:
    -   instance: 'my-instance'
        extra_hosts:
            - ro.example.com
    - host: h.example.com
      port: 5433
margin_minutes: 5
version: 1
"""


def test_any_yaml_a_person_writes_is_read(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(HAND_WRITTEN)
    config = load_config(path)
    assert [t.label for t in config.targets] == ["my-instance", "h.example.com"]
    assert config.targets[0].extra_hosts == ["ro.example.com"] and config.targets[1].port == 5433
    assert config.pgpass_file == "~/.pgpass" and config.margin_minutes == 5


def test_a_saved_config_keeps_falsy_values_and_reads_back_the_same(tmp_path):
    config = RotatorConfig(targets=[TargetConfig(host="h", port=5432)], service=False, margin_minutes=0, notify=False)
    path = save_config(config, tmp_path / "sub" / "config.yml")
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_config(path) == config
    assert "version: 1" in path.read_text()


def test_flags_win_over_the_file_and_a_target_flag_replaces_the_targets():
    raw: dict[str, Any] = {"targets": [{"host": "a"}], "margin_minutes": 5, "profile": "p"}
    merged = merge_overrides(raw, {"margin_minutes": 7, "profile": None, "target": {"host": "b", "port": None}})
    assert merged == {"targets": [{"host": "b"}], "margin_minutes": 7, "profile": "p"}
    assert raw["targets"] == [{"host": "a"}]  # not changed


def test_the_effective_config_is_the_file_then_the_flags(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(HAND_WRITTEN)
    assert effective_config(path, {"interval_minutes": 20}).interval_minutes == 20
    assert effective_config(None, {"target": {"host": "x"}}).targets[0].host == "x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("targets: [", "cannot read config"),
        ("- a\n- b\n", "expected a mapping of keys, got list"),
        ("targets:\n  - host: h\nsurprise: 1\n", "unknown key 'surprise'"),
        ("version: 9\ntargets:\n  - host: h\n", "written by a newer oauth-rotator"),
        ("targets: [{instance: a}]\nmargin: 5\n", "unknown key 'margin'"),
        ("targets: [{instance: a, prot: 5432}]\n", "unknown key 'prot'"),
        ("targets: [{instance: a, port: abc}]\n", "targets[0].port: expected int"),
        ("targets: [{instance: a, port: 70000}]\n", "port number 1-65535"),
        ("targets: [{instance: a}]\nservice: 'yes'\n", "service: expected bool"),
        ("targets: [{instance: a}]\nmargin_minutes: true\n", "margin_minutes: expected int"),
        ("targets: [{instance: a}]\ninterval_minutes: 100000\n", "interval_minutes: expected minutes"),
        ("version: 2\ntargets: [{instance: a}]\n", "newer oauth-rotator"),
        ("targets: []\n", "no target configured"),
        ("targets: [{port: 5432}]\n", "needs an instance, an endpoint or a host"),
        ("targets: [{instance: a, endpoint: projects/p/branches/b/endpoints/e}]\n", "either instance or endpoint"),
        ("targets: [{endpoint: projects/p}]\n", "expected projects/<p>/branches/<b>/endpoints/<e>"),
        ("targets: [{instance: a}, {instance: a}]\n", "also named 'a'"),
        ("targets: [{host: ' spaced '}]\n", "surrounding spaces"),
        ("workspace_url: not-a-url\ntargets: [{instance: a}]\n", "not a workspace URL"),
        ("targets: [{instance: a}\n", "cannot read config"),
        ("- just\n- a list\n", "expected a mapping"),
        ("targets: [{instance: a, extra_hosts: [1]}]\n", "extra_hosts[0]: expected str"),
    ],
)
def test_a_config_it_cannot_use_is_one_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "config.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as failure:
        load_config(path)
    assert message in str(failure.value)
    assert str(failure.value).startswith(str(path)) and "\n" not in str(failure.value)


def test_an_older_version_is_migrated_by_its_hook(tmp_path, monkeypatch):
    """As blueprint's `vN_migrate`: version 1 data goes through `v1_migrate` when this oauth-rotator reads 2."""

    def v1_migrate(raw: dict[str, Any]) -> dict[str, Any]:
        raw["margin_minutes"] = raw.pop("margin", 10)
        raw["version"] = 2
        return raw

    monkeypatch.setattr(RotatorConfig, "__version__", 2)
    monkeypatch.setattr(RotatorConfig, "v1_migrate", staticmethod(v1_migrate), raising=False)
    path = tmp_path / "config.yml"
    path.write_text("version: 1\nmargin: 4\ntargets:\n  - host: h\n")
    assert load_config(path).margin_minutes == 4


def test_an_older_version_without_a_hook_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(RotatorConfig, "__version__", 2)
    path = tmp_path / "config.yml"
    path.write_text("version: 1\ntargets:\n  - host: h\n")
    with pytest.raises(ConfigError, match="no migration from version 1"):
        load_config(path)
