"""What systemd is told, in order, through a real datagram socket standing in for it."""

from __future__ import annotations

import socket
from pathlib import Path

from databricks.labs.oauth_rotator.rotation.daemon import CycleResult
from databricks.labs.oauth_rotator.rotation.readiness import SystemdReadiness
from databricks.labs.oauth_rotator.rotation.sd_notify import SystemdNotifier
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState

AT = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def received(sock: socket.socket) -> list[str]:
    sock.settimeout(0.2)
    messages = []
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except TimeoutError:
        return messages


def test_ready_once_after_the_first_cycle_then_status_then_reload_and_stop(tmp_path: Path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        readiness = SystemdReadiness(SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify")}))
        readiness.cycle_ended(CycleResult(0), AT)
        readiness.cycle_ended(CycleResult(0), AT + 60)
        readiness.reloading()
        readiness.cycle_ended(CycleResult(0), AT + 120)
        readiness.reloading()
        readiness.reload_refused("no_such_setting: unknown key")
        readiness.stopping()
        messages = received(sock)
    assert messages[0] == "READY=1\nSTATUS=next refresh at 00:00:00 UTC"
    assert messages[1] == "STATUS=next refresh at 00:01:00 UTC"
    assert messages[2].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert messages[3] == "READY=1\nSTATUS=next refresh at 00:02:00 UTC"
    assert messages[4].startswith("RELOADING=1\n")
    assert (
        messages[5] == "READY=1\nSTATUS=configuration not reloaded, the running one stays: no_such_setting: unknown key"
    )
    assert messages[6:] == ["STOPPING=1"]


def test_a_failed_first_cycle_is_ready_too_with_its_error(tmp_path: Path):
    """A start never hangs on a workspace that does not answer: ready, and the status says why nothing rotated."""
    state = StateStore(tmp_path / "status.json")

    def failing(status: Status) -> None:
        status.targets["sales"] = TargetState(name="sales", last_error="the workspace did not answer", failures=1)

    state.update(failing)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        readiness = SystemdReadiness(SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify")}), state)
        readiness.cycle_ended(CycleResult(1), AT + 30)
        messages = received(sock)
    assert messages == ["READY=1\nSTATUS=last error: sales: the workspace did not answer; next attempt at 00:00:30 UTC"]
