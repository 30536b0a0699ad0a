import stat

import pytest

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig, from_raw, to_raw
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files.config_store import effective_config, load_config, save_config

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


# ---- one set of checks, every entry point ------------------------------------------------------------------------


SAME_INPUT_EVERYWHERE = [
    # (flags, Python API keyword arguments, config file lines: top level and in `targets[0]`), the problem
    pytest.param(
        (["--interval", "0.5"], {"rotation_interval": 0.5}, ("interval_minutes: 0.5", "")),
        "expected minutes between 1 and 1440, got 0.5",
        id="interval-too-short",
    ),
    pytest.param(
        (["--interval", "1440.5"], {"rotation_interval": 1440.5}, ("interval_minutes: 1440.5", "")),
        "expected minutes between 1 and 1440, got 1440.5",
        id="interval-too-long",
    ),
    pytest.param(
        (["--pg-port", "70000"], {"pg_port": 70000}, ("", "port: 70000")),
        "expected a port number 1-65535, got 70000",
        id="port",
    ),
    pytest.param(
        (["--pg-database", "host=evil"], {"pg_database": "host=evil"}, ("", "database: host=evil")),
        "expected a database name, got a connection string: 'host=evil'",
        id="database-conninfo",
    ),
    pytest.param(
        (["--pg-username", " me "], {"pg_username": " me "}, ("", "user: ' me '")),
        "must be non-empty, without surrounding spaces, line breaks or NUL: ' me '",
        id="user-spaces",
    ),
    pytest.param(
        (["--workspace-url", "ftp://x"], {"workspace_url": "ftp://x"}, ("workspace_url: ftp://x", "")),
        "not a workspace URL: 'ftp://x' (expected https://<workspace host>)",
        id="url",
    ),
    pytest.param(
        (
            ["--pgpass-file", "{root}/nope/.pgpass"],
            {"pgpass_file": "{root}/nope/.pgpass"},
            ("pgpass_file: {root}/nope/.pgpass", ""),
        ),
        "cannot write {root}/nope/.pgpass: directory {root}/nope does not exist",
        id="pgpass-missing-dir",
    ),
    pytest.param(
        (["--log-file", "{root}"], {"log_file": "{root}"}, ("log_file: {root}", "")),
        "{root} is a directory, not a file",
        id="log-a-directory",
    ),
]


def _first_part(err: ConfigError) -> str:
    return str(err).split("; ")[0]  # without the fix


@pytest.mark.parametrize(("doors", "problem"), SAME_INPUT_EVERYWHERE)
def test_every_entry_point_refuses_the_same_input_in_the_same_words(tmp_path, monkeypatch, doors, problem):
    """The console, the Python API and a config file (as labs `rotate` and the worker read it) share one set of
    checks; each names the setting as its user spelled it."""
    from databricks.labs.oauth_rotator.commands.api import DatabricksOAuthRotator
    from databricks.labs.oauth_rotator.commands.flags import parse_invocation
    from databricks.labs.oauth_rotator.config_checks import check_paths

    flags, arguments, lines = doors
    root = str(tmp_path)
    environ = {"HOME": root, "DATABRICKS_LABS_STATE_DIR": f"{root}/state"}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PGPASSFILE", raising=False)
    problem = problem.replace("{root}", root)

    flags = [f.replace("{root}", root) for f in flags]
    with pytest.raises(ConfigError) as console:
        parse_invocation(["--once", "--instance", "a", *flags], environ)
    assert _first_part(console.value) == f"{flags[0]}: {problem}"

    arguments = {k: v.replace("{root}", root) if isinstance(v, str) else v for k, v in arguments.items()}
    with pytest.raises(ConfigError) as api:
        DatabricksOAuthRotator(instance="a", **arguments)
    assert _first_part(api.value) == f"{next(iter(arguments))}: {problem}"

    top, in_target = (line.replace("{root}", root) for line in lines)
    path = tmp_path / "config.yml"
    path.write_text(f"{top}\ntargets:\n  - instance: a\n    {in_target}\n")
    with pytest.raises(ConfigError) as from_file:
        check_paths(load_config(path), environ=environ)
    key = top.split(":")[0] if top else f"targets[0].{in_target.split(':')[0]}"
    assert _first_part(from_file.value) in {f"{path}: {key}: {problem}", f"{key}: {problem}"}

    for err in (console.value, api.value, from_file.value):
        assert err.exit_code == 2 and "\n" not in str(err)


# ---- names that reach .pgpass, logs and terminals (issue 19) ------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"host": "*"}, "wildcard"),
        ({"instance": "db", "user": "*"}, "wildcard"),
        ({"instance": "db", "user": "a*@example.com"}, "wildcard"),
        ({"instance": "db", "extra_hosts": ["*"]}, "wildcard"),
        ({"instance": "db\x1b]0;pwned\x07"}, "control characters"),
        ({"name": "x\x1b[2J", "instance": "db"}, "control characters"),
        ({"instance": "db", "database": "sales\x1b[31m"}, "control characters"),
        ({"host": "db.example.com\u202e"}, "control characters"),
    ],
)
def test_a_wildcard_or_control_character_in_a_name_is_refused(target, message):
    with pytest.raises(ConfigError, match=message) as raised:
        from_raw({"targets": [target]})
    assert "\x1b" not in str(raised.value)


def test_a_star_database_is_still_every_database():
    assert from_raw({"targets": [{"instance": "db", "database": "*"}]}).targets[0].effective_database == "*"


@pytest.mark.parametrize("minutes", [4, 60.5, 0, -5])
def test_a_credential_ttl_outside_what_the_api_takes_is_refused(minutes):
    with pytest.raises(ConfigError) as failure:
        from_raw({"version": 1, "targets": [{"host": "h"}], "credential_ttl_minutes": minutes})
    assert "credential_ttl_minutes: expected minutes between 5 and 60" in str(failure.value)


def test_a_credential_ttl_is_asked_for_in_whole_seconds():
    config = from_raw({"version": 1, "targets": [{"host": "h"}], "credential_ttl_minutes": 7.5})
    assert config.credential_ttl_seconds == 450
    assert RotatorConfig(targets=[TargetConfig(host="h")]).credential_ttl_seconds is None
    with pytest.raises(ConfigError, match=r"credential_ttl_minutes: expected int, got .15.$"):
        from_raw({"version": 1, "targets": [{"host": "h"}], "credential_ttl_minutes": "15"})
