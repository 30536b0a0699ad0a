"""sd_notify(3) against a real datagram socket standing in for systemd's."""

import os
import socket
import time

import pytest

from databricks.labs.oauth_rotator.rotation.sd_notify import MAX_STATUS, SystemdNotifier


@pytest.fixture
def systemd_socket(tmp_path):
    """A path socket as systemd binds it (`/run/user/UID/systemd/notify`), read with a timeout."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield str(path), sock
    sock.close()


def received(sock) -> list[str]:
    messages = []
    sock.settimeout(0.2)
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except TimeoutError:
        return messages


def test_the_states_reach_systemd_in_order_one_datagram_each(systemd_socket):
    path, sock = systemd_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    notifier.ready("next refresh in 50 min")
    notifier.status("sales: permission denied")
    notifier.reloading()
    notifier.ready()
    notifier.stopping()
    messages = received(sock)
    assert messages[0] == "READY=1\nSTATUS=next refresh in 50 min"
    assert messages[1] == "STATUS=sales: permission denied"
    reloading, usec = messages[2].split("\n")
    assert reloading == "RELOADING=1"
    # CLOCK_MONOTONIC in microseconds, as Type=notify-reload requires: within a minute of ours.
    assert abs(int(usec.removeprefix("MONOTONIC_USEC=")) - time.monotonic_ns() // 1000) < 60_000_000
    assert messages[3:] == ["READY=1", "STOPPING=1"]


def test_an_abstract_socket_is_written_with_a_leading_at_sign():
    name = f"oauth-rotator-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(2)
        SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(4096) == b"READY=1"


def test_a_status_is_one_escaped_short_line(systemd_socket):
    path, sock = systemd_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    notifier.status("bad \x1b[31mhost\x1b[0m\nREADY=1")  # a second line must not become a second assignment
    notifier.status("x" * 1000)
    first, second = received(sock)
    assert first == "STATUS=bad \\x1b[31mhost\\x1b[0m"
    assert len(second) == len("STATUS=") + MAX_STATUS and second.endswith("...")


@pytest.mark.parametrize("value", ["", "relative/notify", "vsock:2:1234", "@"])
def test_without_a_socket_it_is_quiet(value):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": value} if value else {})
    assert not notifier.enabled
    notifier.ready("nothing to send to")  # no error, nothing sent


def test_a_socket_that_went_away_does_not_stop_the_caller(tmp_path):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.enabled
    notifier.ready()
    notifier.stopping()
