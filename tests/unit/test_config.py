import stat

import pytest

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig, from_raw, to_raw
from databricks.labs.oauth_rotator.config_store import effective_config, load_config, save_config
from databricks.labs.oauth_rotator.errors import ConfigError

ENDPOINT = "projects/p/branches/b/endpoints/e"


def test_a_saved_config_loads_back_equal_including_falsy_values(tmp_path):
    config = RotatorConfig(
        targets=[
            TargetConfig(name="sales", instance="sales-db", port=5432, database="*", extra_hosts=["ro.example.com"]),
            TargetConfig(endpoint=ENDPOINT, user="app-id"),
        ],
        profile="DEFAULT",
        margin_minutes=0,
        interval_minutes=30,
        service=False,
    )
    path = save_config(config, tmp_path / "config" / "config.yml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "service: false" in text and "margin_minutes: 0" in text and "version: 1" in text
    assert load_config(path) == config


@pytest.mark.parametrize(
    ("content", "message"),
    [
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
        ("targets: [{instance: a, endpoint: " + ENDPOINT + "}]\n", "either instance or endpoint"),
        ("targets: [{endpoint: projects/p}]\n", "expected projects/<p>/branches/<b>/endpoints/<e>"),
        ("targets: [{instance: a}, {instance: a}]\n", "also named 'a'"),
        ("targets: [{host: ' spaced '}]\n", "surrounding spaces"),
        ("workspace_url: not-a-url\ntargets: [{instance: a}]\n", "not a workspace URL"),
        ("targets: [{instance: a}\n", "cannot read config"),
        ("- just\n- a list\n", "expected a mapping"),
        ("targets: [{instance: a, extra_hosts: [1]}]\n", "extra_hosts[0]: expected str"),
    ],
)
def test_a_bad_config_file_is_one_clear_error_naming_the_problem(tmp_path, content, message):
    path = tmp_path / "config.yml"
    path.write_text(content)
    with pytest.raises(ConfigError) as failure:
        load_config(path)
    assert message in str(failure.value)
    assert str(path) in str(failure.value)
    assert "\n" not in str(failure.value)


def test_a_missing_config_file_says_how_to_create_one(tmp_path):
    with pytest.raises(ConfigError, match="configure"):
        load_config(tmp_path / "nope.yml")


def test_flags_override_the_file_and_a_target_flag_replaces_its_targets(tmp_path):
    path = save_config(RotatorConfig(targets=[TargetConfig(instance="a")], profile="P"), tmp_path / "config.yml")
    merged = effective_config(path, {"profile": "Q", "target": {"host": "h.example.com", "port": 6543}})
    assert merged.profile == "Q"
    assert merged.targets == [TargetConfig(host="h.example.com", port=6543)]


def test_raw_round_trip_keeps_every_set_value():
    config = RotatorConfig(targets=[TargetConfig(instance="a", port=1)], service=False, margin_minutes=0)
    assert from_raw(to_raw(config)) == config
