import pytest

from databricks.labs.oauth_rotator.console import parse_invocation, read_environment_file
from databricks.labs.oauth_rotator.errors import ConfigError


def test_the_original_environment_variables_define_the_target():
    invocation = parse_invocation(
        ["--once"], {"DATABRICKS_PG_HOST": "h.example.com", "DATABRICKS_PG_USERNAME": "app", "HOME": "/nowhere"}
    )
    assert invocation.once and invocation.config_path is None
    assert invocation.overrides["target"] == {"host": "h.example.com", "user": "app"}


def test_the_worker_request_carries_names_and_paths_never_secrets():
    env = {"DATABRICKS_CLIENT_SECRET": "s3cr3t", "HOME": "/nowhere"}
    request = parse_invocation(["--instance", "db", "--profile", "p"], env).request()
    assert "s3cr3t" not in repr(request)
    assert request["overrides"] == {"profile": "p", "target": {"instance": "db"}}


def test_the_saved_config_is_used_when_no_target_is_given(tmp_path):
    config = tmp_path / "config" / "config.yml"
    config.parent.mkdir()
    config.write_text("targets: [{instance: a}]\n")
    invocation = parse_invocation([], {"DATABRICKS_LABS_CONFIG_DIR": str(config.parent), "HOME": str(tmp_path)})
    assert invocation.config_path == config


def test_an_environment_file_is_read_only_when_private(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# M2M\nDATABRICKS_CLIENT_ID=abc\nDATABRICKS_CLIENT_SECRET='x=y'\n\n")
    env_file.chmod(0o600)
    assert read_environment_file(env_file) == {"DATABRICKS_CLIENT_ID": "abc", "DATABRICKS_CLIENT_SECRET": "x=y"}
    env_file.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        read_environment_file(env_file)
    env_file.chmod(0o600)
    env_file.write_text("not a pair\n")
    with pytest.raises(ConfigError, match=":1: expected KEY=value"):
        read_environment_file(env_file)


def test_the_long_lived_scheduler_never_imports_the_sdk():
    """The daemon lives for weeks: the SDK (about 80 MB) is loaded by each cycle's short-lived worker instead."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "import databricks.labs.oauth_rotator.__main__\n"
        "from databricks.labs.oauth_rotator import console, daemon, state, schedule, logs, files, pgpass\n"
        "from databricks.labs.oauth_rotator.service import base\n"
        "print(sorted(m for m in sys.modules if m.startswith(('databricks.sdk', 'databricks.labs.blueprint'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_environment_file_variable_is_spelled_the_same_everywhere():
    from databricks.labs.oauth_rotator import console, paths

    assert console.ENV_FILE_VARIABLE == paths.ENV_FILE_VARIABLE
