import pytest

from databricks.labs.oauth_rotator.commands.flags import parse_invocation
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files.env_file import read_environment_file


def test_the_original_environment_variables_define_the_target():
    invocation = parse_invocation(
        ["--once"], {"DATABRICKS_PG_HOST": "h.example.com", "DATABRICKS_PG_USERNAME": "app", "HOME": "/nowhere"}
    )
    assert invocation.once and invocation.config_path is None
    assert invocation.overrides["target"] == {"host": "h.example.com", "user": "app"}


def test_the_worker_request_carries_names_and_paths_never_secrets():
    env = {"DATABRICKS_CLIENT_SECRET": "s3cr3t", "HOME": "/nowhere"}
    request = parse_invocation(["--instance", "db", "--profile", "p"], env).to_worker()
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
        "from databricks.labs.oauth_rotator.commands import rotator_script\n"
        "from databricks.labs.oauth_rotator.rotation import daemon, state, schedule\n"
        "from databricks.labs.oauth_rotator.files import logs, pgpass, writer\n"
        "from databricks.labs.oauth_rotator.service import base\n"
        "print(sorted(m for m in sys.modules if m.startswith(('databricks.sdk', 'databricks.labs.blueprint'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--instance", "a", "--interval", "0"], {}, "--interval: expected minutes between 1 and 1440, got 0.0"),
        (["--instance", "a", "--interval", "abc"], {}, "argument --interval: expected minutes, got 'abc'"),
        (["--instance", "a", "--pg-port", "65536"], {}, "--pg-port: expected a port number 1-65535, got 65536"),
        (["--instance", "a", "--pg-database", "dbname=x"], {}, "--pg-database: expected a database name"),
        (["--pg-host", "a b "], {}, "--pg-host: must be non-empty"),
        ([], {"DATABRICKS_PG_HOST": " h"}, "DATABRICKS_PG_HOST: must be non-empty"),
        (["--instance", "a"], {"DATABRICKS_PG_USERNAME": "me\n"}, "DATABRICKS_PG_USERNAME: must be non-empty"),
        (["--instance", "a", "--pg-username", "me\n"], {}, "--pg-username: must be non-empty"),
        (["--instance", "a", "--pgpass-file", ""], {}, "--pgpass-file: not a path: ''"),
        (["--instance", "a", "--log-file", "/nonexistent/log"], {}, "--log-file: cannot write /nonexistent/log"),
    ],
)
def test_a_bad_flag_or_variable_is_named_as_the_user_typed_it(argv, environ, message):
    with pytest.raises(ConfigError) as failure:
        parse_invocation(argv, {"HOME": "/nowhere", **environ})
    assert str(failure.value).startswith(message) and failure.value.exit_code == 2
