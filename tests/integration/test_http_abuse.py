"""The sidecar's HTTP endpoints under abuse, with raw sockets against the real scheduler process: nobody stops it
through the probe port, a web page cannot stop it through the admin port, idle and slow clients do not starve the
probes, and a burst of probes fits the listen backlog."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from tests.integration.conftest import UserHome
from tests.rigs.net import call, free_port, listening, wait_for
from tests.rigs.users import throwaway_user
from tests.rigs.workspace import DEMO_INSTANCE

READ_TIMEOUT_SECONDS = 5.0
"""What the server gives a client to send each part of its request (commands/http_server.py)."""


def raw(port: int, request: bytes, *, timeout: float = 10) -> bytes:
    """Send `request` as it is and read the whole answer (the server closes the connection after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def post(port: int, path: str, *headers: str, host: str | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}", *headers, "Content-Length: 0", "", ""]
    return raw(port, "\r\n".join(lines).encode())


@contextmanager
def scheduler(home: UserHome, *flags: str, limit_files: int | None = None) -> Iterator[subprocess.Popen[str]]:
    """The real scheduler with `flags`, optionally under `ulimit -n` (set as it starts, before it listens); killed
    at the end if still running."""
    argv = [sys.executable, "-m", "databricks.labs.oauth_rotator", "--instance", DEMO_INSTANCE, *home.target_flags()]
    daemon = subprocess.Popen([*argv, *flags], env=home.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if limit_files is not None:
        resource.prlimit(daemon.pid, resource.RLIMIT_NOFILE, (limit_files, limit_files))
    try:
        yield daemon
    finally:
        if daemon.poll() is None:
            daemon.kill()
        daemon.communicate(timeout=30)


def started(port: int, daemon: subprocess.Popen[str]) -> None:
    def up() -> bool:
        assert daemon.poll() is None, daemon.communicate()[1]
        return listening(port)

    wait_for(up, 30, "the endpoints")


def test_quitquitquit_is_not_served_on_the_probe_port(home: UserHome):
    port = free_port()
    with scheduler(home, "--http-port", str(port)) as daemon:
        started(port, daemon)
        assert status_of(post(port, "/quitquitquit")) == 404
        time.sleep(1)
        assert daemon.poll() is None, "a POST to the probe port stopped the scheduler"
        assert call(port, "/liveness")[0] == 200


def test_without_quitquitquit_no_admin_port_listens(home: UserHome):
    port, admin = free_port(), free_port()
    result = home.rotator("--instance", DEMO_INSTANCE, *home.target_flags(), "--admin-port", str(admin), timeout=30)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "--quitquitquit" in result.stderr, result.stderr
    with scheduler(home, "--http-port", str(port)) as daemon:
        started(port, daemon)
        assert not listening(admin)


def test_the_admin_port_refuses_a_web_page_and_anything_but_a_post_then_stops_the_scheduler(home: UserHome):
    port, admin = free_port(), free_port()
    with scheduler(home, "--http-port", str(port), "--quitquitquit", "--admin-port", str(admin)) as daemon:
        started(admin, daemon)
        refused = {
            "DNS rebinding (the page's own host name)": post(admin, "/quitquitquit", host=f"rebind.example:{admin}"),
            "a cross-origin simple POST": post(admin, "/quitquitquit", "Origin: http://127.0.0.1:8000"),
            "the null origin of a sandboxed frame": post(admin, "/quitquitquit", "Origin: null"),
            "no Host at all": raw(admin, b"POST /quitquitquit HTTP/1.0\r\nContent-Length: 0\r\n\r\n"),
            "another port in Host": post(admin, "/quitquitquit", host=f"127.0.0.1:{port}"),
        }
        for what, answer in refused.items():
            assert status_of(answer) == 403, f"{what}: {answer!r}"
        get = raw(admin, f"GET /quitquitquit HTTP/1.1\r\nHost: 127.0.0.1:{admin}\r\n\r\n".encode())
        assert status_of(get) == 405 and b"Allow: POST" in get, get
        assert status_of(post(admin, "/metrics")) == 404
        assert status_of(post(port, "/quitquitquit")) == 404, "never on the probe port"
        time.sleep(1)
        assert daemon.poll() is None, "a refused request stopped the scheduler"

        assert status_of(post(admin, "/quitquitquit")) == 200
        out, err = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, err
        assert not listening(admin) and not listening(port)
        assert home.secrets_seen(out, err) == []


def test_another_local_user_cannot_stop_the_scheduler(home: UserHome):
    """The loopback is every local user's: the admin port asks the kernel who opened the connection (Linux)."""
    port, admin = free_port(), free_port()
    with throwaway_user() as neighbour, scheduler(home, "--quitquitquit", "--admin-port", str(admin)) as daemon:
        started(admin, daemon)

        def stop_it() -> None:
            answer = post(admin, "/quitquitquit")
            if status_of(answer) != 403:
                raise AssertionError(answer.decode(errors="replace"))

        assert neighbour.do(stop_it) == ""
        time.sleep(1)
        assert daemon.poll() is None, "another user stopped the scheduler"
        assert status_of(post(admin, "/quitquitquit")) == 200, "the control: its own user (root here) may"
        daemon.communicate(timeout=30)
        assert daemon.returncode == 0
    assert not listening(port)


def test_the_admin_port_listens_on_the_loopback_only(home: UserHome):
    """Even with the probes on every address (as in a pod), the admin port is bound to 127.0.0.1 alone."""
    port, admin = free_port(), free_port()
    outside = _non_loopback_address()
    everywhere = "0.0.0.0"  # noqa: S104  # the probes on every address, as in a pod
    flags = ["--http-address", everywhere, "--http-port", str(port), "--quitquitquit", "--admin-port", str(admin)]
    with scheduler(home, *flags) as daemon:
        started(admin, daemon)
        assert _reachable(outside, port), "the control: the probes answer on that address"
        assert not _reachable(outside, admin)


def _non_loopback_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the interface a route would use
        address = str(probe.getsockname()[0])
    if address.startswith("127."):
        pytest.skip("this machine has no address but the loopback")
    return address


def _reachable(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def test_idle_clients_beyond_the_descriptor_limit_do_not_stop_the_probes(home: UserHome):
    """67 idle connections against `ulimit -n 64`: each is dropped after the read timeout, and /liveness answers."""
    port = free_port()
    with scheduler(home, "--http-port", str(port), limit_files=64) as daemon, ExitStack() as idle:
        started(port, daemon)
        wait_for(lambda: call(port, "/startup")[0] == 200, 60, "the first rotation")
        for _ in range(67):
            sock = idle.enter_context(socket.socket())
            sock.settimeout(5)
            try:
                sock.connect(("127.0.0.1", port))
            except OSError:
                break  # the backlog is full: the server holds every descriptor it may
        began = time.monotonic()
        wait_for(lambda: _answers(port, "/liveness") == 200, 30, "/liveness with idle clients")
        assert time.monotonic() - began < 3 * READ_TIMEOUT_SECONDS
        assert daemon.poll() is None


def _answers(port: int, path: str) -> int:
    try:
        return call(port, path)[0]
    except OSError:
        return 0


def test_a_client_that_trickles_its_request_is_cut_off(home: UserHome):
    port = free_port()
    with scheduler(home, "--http-port", str(port)) as daemon:
        started(port, daemon)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            began = time.monotonic()
            closed = False
            for byte in b"GET /liveness HTTP/1.1\r\nX-Slow: " + b"a" * 60:
                try:
                    sock.sendall(bytes([byte]))
                    if sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":
                        closed = True
                        break
                except BlockingIOError:
                    pass
                except OSError:
                    closed = True
                    break
                time.sleep(READ_TIMEOUT_SECONDS / 2)  # each byte within the read timeout
        assert closed, "the server waited for ever for a request that trickles in"
        assert time.monotonic() - began < 4 * READ_TIMEOUT_SECONDS
        assert call(port, "/liveness")[0] == 200


def test_a_burst_of_probes_fits_the_listen_backlog(home: UserHome):
    """The scheduler stopped (SIGSTOP) while 64 clients connect: the kernel queues them all, and all are answered."""
    port = free_port()
    with scheduler(home, "--http-port", str(port)) as daemon, ExitStack() as clients:
        started(port, daemon)
        os.kill(daemon.pid, signal.SIGSTOP)
        try:
            connected = []
            for _ in range(64):
                sock = clients.enter_context(socket.socket())
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
                connected.append(sock)
            time.sleep(1.5)
            for sock in connected:
                sock.setblocking(True)
                sock.settimeout(20)
                sock.sendall(f"GET /liveness HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        finally:
            os.kill(daemon.pid, signal.SIGCONT)
        answered = [status_of(_read_all(sock)) for sock in connected]
        assert answered == [200] * 64, answered


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except OSError:
        pass
    return b"".join(chunks)


def test_a_target_without_a_name_is_not_labelled_with_its_host(home: UserHome):
    port = free_port()
    flags = ["--pg-host", "127.0.0.1", *home.target_flags(), "--http-port", str(port)]
    daemon = home.start(*flags)
    try:
        wait_for(lambda: listening(port) and call(port, "/startup")[0] == 200, 60, "/startup 200")
        wait_for(lambda: "oauth_rotator_rotations_total" in call(port, "/metrics")[1], 20, "a counted rotation")
        answers = [call(port, path)[1] for path in ("/metrics", "/startup", "/readiness", "/liveness")]
    finally:
        daemon.terminate()
        daemon.communicate(timeout=30)
    assert "127.0.0.1" in home.status_file.read_text(), "the control: the target is keyed by its host"
    for answer in answers:
        assert "127.0.0.1" not in answer, answer
    assert 'target="unnamed"' in answers[0], answers[0]


def test_a_taken_admin_port_is_one_line_and_exit_2_with_nothing_written(home: UserHome):
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        admin = taken.getsockname()[1]
        flags = ["--http-port", str(port), "--quitquitquit", "--admin-port", str(admin)]
        result = home.rotator("--instance", DEMO_INSTANCE, *home.target_flags(), *flags, timeout=30)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--admin-port" in lines[0] and str(admin) in lines[0], lines
    assert not home.pgpass.exists() and home.workspace.issued == []
