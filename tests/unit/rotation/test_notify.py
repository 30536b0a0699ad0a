"""Desktop notifications: each desktop's own tool, and nothing (no error) where there is none."""

import subprocess

from databricks.labs.oauth_rotator.rotation.notify import Notifier


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


def test_a_notification_that_shows_says_so() -> None:
    recorder = Recorder()
    assert Notifier(platform="linux", which=lambda n: f"/usr/bin/{n}", runner=recorder).notify("log in again")
    assert recorder.calls == [
        [
            "/usr/bin/notify-send",
            "--app-name=oauth-rotator",
            "--urgency=critical",
            "Databricks OAuth Rotator",
            "log in again",
        ]
    ]


def test_a_tool_that_hangs_or_cannot_start_is_no_notification_and_no_error() -> None:
    def hangs(argv, **_):
        raise subprocess.TimeoutExpired(argv, 10)

    def cannot_start(argv, **_):
        raise PermissionError(argv[0])

    for runner in (hangs, cannot_start):
        assert Notifier(platform="darwin", which=lambda n: n, runner=runner).notify("x") is False


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
