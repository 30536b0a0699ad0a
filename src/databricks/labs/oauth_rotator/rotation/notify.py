"""Desktop notifications for the moments a person must act: an expired login, a missing permission, a
credential about to expire while refreshes keep failing. Stdlib only; each tool is used only if present.

Windows: a toast shows only for an application id (AppUserModelID) registered with a Start-menu shortcut
(Microsoft's "Send a local toast notification from a desktop app"); ours is not, so the toast is sent under
Windows PowerShell's own registered id, as the BurntToast module does. PowerShell is a console program: started
from the windowless scheduler it would flash a console, so it is started with CREATE_NO_WINDOW.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

TITLE = "Databricks OAuth Rotator"
POWERSHELL_APP_ID = "{1AC14E77-02E7-4E5D-B744-2EB1AE5198B7}\\WindowsPowerShell\\v1.0\\powershell.exe"
"""Windows PowerShell's AppUserModelID, registered by Windows itself, so its toasts are shown."""
CREATE_NO_WINDOW = 0x08000000  # subprocess.CREATE_NO_WINDOW, which exists only on Windows

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def _applescript(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _powershell(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _windows_toast(title: str, message: str) -> str:
    return (
        "[Windows.UI.Notifications.ToastNotificationManager, Windows.UI.Notifications, ContentType=WindowsRuntime]"
        " | Out-Null; "
        "$t = [Windows.UI.Notifications.ToastNotificationManager]::GetTemplateContent("
        "[Windows.UI.Notifications.ToastTemplateType]::ToastText02); "
        f"$t.GetElementsByTagName('text').Item(0).InnerText = {_powershell(title)}; "
        f"$t.GetElementsByTagName('text').Item(1).InnerText = {_powershell(message)}; "
        f"[Windows.UI.Notifications.ToastNotificationManager]::CreateToastNotifier({_powershell(POWERSHELL_APP_ID)})"
        ".Show([Windows.UI.Notifications.ToastNotification]::new($t))"
    )


class Notifier:
    """Shows a notification with the desktop's own tool: notify-send, osascript, or a PowerShell toast."""

    def __init__(
        self,
        *,
        platform: str = sys.platform,
        which: Callable[[str], str | None] = shutil.which,
        runner: Runner = subprocess.run,
    ) -> None:
        self._platform = platform
        self._which = which
        self._runner = runner

    def command(self, title: str, message: str) -> Sequence[str] | None:
        """The argv that shows the notification here, or None when this desktop has no way to."""
        if self._platform == "darwin":
            tool = self._which("osascript")
            script = f"display notification {_applescript(message)} with title {_applescript(title)}"
            return [tool, "-e", script] if tool else None
        if self._platform == "win32":
            tool = self._which("powershell")
            return [tool, "-NoProfile", "-NonInteractive", "-Command", _windows_toast(title, message)] if tool else None
        tool = self._which("notify-send")
        return [tool, "--app-name=oauth-rotator", "--urgency=critical", title, message] if tool else None

    def notify(self, message: str, *, title: str = TITLE) -> bool:
        """Show `message`; returns whether a notification tool ran successfully. Never raises."""
        argv = self.command(title, message)
        if argv is None:
            logger.debug("No desktop notification tool available")
            return False
        extra = {"creationflags": CREATE_NO_WINDOW} if self._platform == "win32" else {}
        try:
            result = self._runner(
                argv, capture_output=True, text=True, timeout=10, check=False, stdin=subprocess.DEVNULL, **extra
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            logger.debug(f"Desktop notification failed: {err}")
            return False
        return result.returncode == 0
