import logging
import subprocess
import sys
from pathlib import Path

from databricks.labs.oauth_rotator.rotation.hooks import PostRotationHook, hook_environment
from databricks.labs.oauth_rotator.rotation.notify import Notifier


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


class Recorder:
    def __init__(self, returncode: int = 0):
        self.calls: list[list[str]] = []
        self.returncode = returncode

    def __call__(self, argv, **_):
        self.calls.append(list(argv))
        return subprocess.CompletedProcess(argv, self.returncode, "", "")


def test_each_desktop_gets_its_own_notification_tool():
    def which(name):
        return f"/usr/bin/{name}"

    linux = Notifier(platform="linux", which=which, runner=Recorder()).command("T", 'it\'s "broken"')
    mac = Notifier(platform="darwin", which=which, runner=Recorder()).command("T", 'say "hi"')
    windows = Notifier(platform="win32", which=which, runner=Recorder()).command("T", "it's")
    assert linux == ["/usr/bin/notify-send", "--app-name=oauth-rotator", "--urgency=critical", "T", 'it\'s "broken"']
    assert mac is not None and mac[:2] == ["/usr/bin/osascript", "-e"] and '\\"hi\\"' in mac[2]
    assert windows is not None and windows[0] == "/usr/bin/powershell" and "'it''s'" in windows[-1]


def test_without_a_tool_there_is_no_notification_and_no_error():
    recorder = Recorder()
    assert Notifier(platform="linux", which=lambda _: None, runner=recorder).notify("x") is False
    assert recorder.calls == []
    failing = Recorder(returncode=1)
    assert Notifier(platform="linux", which=lambda n: n, runner=failing).notify("x") is False
    assert len(failing.calls) == 1


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


def test_a_windows_toast_uses_a_registered_app_id_and_opens_no_console():
    """An unregistered AppUserModelID's toast is never shown, and PowerShell is a console program (issue #24)."""
    seen: list[dict] = []

    def runner(argv, **kwargs):
        seen.append(kwargs)
        return subprocess.CompletedProcess(argv, 0, "", "")

    assert Notifier(platform="win32", which=lambda n: f"C:\\{n}.exe", runner=runner).notify("log in again") is True
    assert seen[0]["creationflags"] == 0x08000000  # CREATE_NO_WINDOW
    script = Notifier(platform="win32", which=lambda n: n).command("T", "m")
    assert script is not None and "{1AC14E77-02E7-4E5D-B744-2EB1AE5198B7}\\WindowsPowerShell" in script[-1]
    assert "CreateToastNotifier('Databricks OAuth Rotator')" not in script[-1]
    Notifier(platform="linux", which=lambda n: n, runner=runner).notify("x")
    assert "creationflags" not in seen[1]
