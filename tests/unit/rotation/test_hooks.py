"""The post-rotation hook: no shell, no secret and no login in its environment, bounded in time, logged escaped."""

import logging
import sys
from pathlib import Path

from databricks.labs.oauth_rotator.rotation.hooks import PostRotationHook, hook_environment


def test_the_hook_environment_has_no_secret_but_says_what_was_rotated():
    env = hook_environment(
        {
            "PATH": "/bin",
            "DATABRICKS_CLIENT_SECRET": "s",
            "DATABRICKS_TOKEN": "t",
            "PGPASSWORD": "p",
            "ARM_CLIENT_SECRET": "a",
            "MY_API_KEY": "k",
        },
        ["sales", "hr"],
        Path("/home/ana/.pgpass"),
    )
    assert env == {
        "PATH": "/bin",
        "OAUTH_ROTATOR_TARGETS": "sales hr",
        "OAUTH_ROTATOR_PGPASS_FILE": "/home/ana/.pgpass",
    }


def test_the_hook_runs_without_a_shell_and_its_exit_status_is_logged(tmp_path, caplog):
    out = tmp_path / "out"
    script = f"import os,sys; open({str(out)!r}, 'w').write(os.environ['OAUTH_ROTATOR_TARGETS']); sys.exit(3)"
    hook = PostRotationHook(f'{sys.executable} -c "{script}"', environ={"PATH": "/usr/bin"})
    caplog.set_level(logging.INFO)
    assert hook(["sales"], tmp_path / ".pgpass") == 3
    assert out.read_text() == "sales"
    assert "exited 3" in caplog.text


def test_a_hook_that_hangs_is_stopped_at_its_timeout(tmp_path, caplog):
    hook = PostRotationHook("sleep 30", timeout=0.5, environ={"PATH": "/usr/bin:/bin"})
    assert hook(["x"], tmp_path / ".pgpass") is None
    assert "did not finish within 0.5 s" in caplog.text


def test_a_hook_that_cannot_start_is_a_warning_not_a_crash(tmp_path, caplog):
    assert PostRotationHook("/nonexistent/reload")(["x"], tmp_path / ".pgpass") is None
    assert "could not start" in caplog.text


def test_the_hook_environment_has_no_databricks_login_either():
    """Issue 19: no login variable in any child's environment (the hook needs none to reload a pgbouncer)."""
    env = hook_environment(
        {"PATH": "/bin", "DATABRICKS_HOST": "https://x", "DATABRICKS_CLIENT_ID": "id", "ARM_TENANT_ID": "t"},
        ["sales"],
        Path("/p"),
    )
    assert set(env) == {"PATH", "OAUTH_ROTATOR_TARGETS", "OAUTH_ROTATOR_PGPASS_FILE"}


def test_what_a_failing_hook_printed_is_logged_escaped(tmp_path, caplog):
    script = "import sys; sys.stderr.write('boom \\x1b]0;pwned\\x07 \\x1b[2J'); sys.exit(1)"
    hook = PostRotationHook(f'{sys.executable} -c "{script}"', environ={"PATH": "/usr/bin"})
    caplog.set_level(logging.INFO)
    assert hook(["sales"], tmp_path / ".pgpass") == 1
    assert "boom" in caplog.text and "\x1b" not in caplog.text and "\x07" not in caplog.text
