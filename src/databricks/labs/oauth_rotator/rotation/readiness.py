"""What the scheduler tells systemd (`Type=notify`): ready after the first cycle, a status line after each, and the
reloads and the stop.

`READY=1` goes once the first cycle has ended, success or failure: a start never hangs on a workspace that does not
answer (the failure is on the status line, in the log and in `status`). After a reload, `READY=1` again, since
`RELOADING=1` told systemd the service was not ready until then. Stdlib and our plain modules only.
"""

from __future__ import annotations

import time

from databricks.labs.oauth_rotator.rotation.daemon import CycleResult
from databricks.labs.oauth_rotator.rotation.sd_notify import SystemdNotifier
from databricks.labs.oauth_rotator.rotation.state import StateStore


class SystemdReadiness:
    """The daemon's `Readiness` for systemd: `SystemdNotifier` messages in the order systemd expects them."""

    def __init__(self, notifier: SystemdNotifier, state: StateStore | None = None) -> None:
        self._notifier = notifier
        self._state = state
        self._ready_pending = True
        """Until the first cycle has ended, and between `RELOADING=1` and the end of the reload."""

    def cycle_ended(self, result: CycleResult, next_at: float) -> None:
        line = self.status_line(result, next_at)
        if self._ready_pending:
            self._ready_pending = False
            self._notifier.ready(line)
        else:
            self._notifier.status(line)

    def reloading(self) -> None:
        self._ready_pending = True
        self._notifier.reloading()

    def reload_refused(self, reason: str) -> None:
        self._ready_pending = False
        self._notifier.ready(f"configuration not reloaded, the running one stays: {reason}")

    def stopping(self) -> None:
        self._notifier.stopping()

    def status_line(self, result: CycleResult, next_at: float) -> str:
        """`next refresh at 14:30:00 UTC`, or the last error and when the next attempt is."""
        when = time.strftime("%H:%M:%S UTC", time.gmtime(next_at))
        if result.exit_code == 0:
            return f"next refresh at {when}"
        return f"last error: {self._last_error() or result.detail or 'the cycle failed'}; next attempt at {when}"

    def _last_error(self) -> str | None:
        if self._state is None:
            return None
        for label, target in sorted(self._state.load().targets.items()):
            if target.failures and target.last_error:
                return f"{label}: {target.last_error}"
        return None
