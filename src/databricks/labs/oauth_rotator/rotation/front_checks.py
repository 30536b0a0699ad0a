"""What the pgbouncer front needs, checked before anything is written: who runs it, where it listens, and whether
something else holds its port on either loopback.

The front owns both loopbacks. On a dual-stack machine `localhost` resolves to `::1` first: a front on 127.0.0.1
alone would leave `[::1]:port` to any local user, who would then receive the local password of every client that
connects to `localhost` (#23 finding 7). So a loopback front listens on `127.0.0.1` and `::1` (when the machine
has IPv6), and refuses to start while either is taken.

Stdlib and our plain modules only (the scheduler imports this).
"""

from __future__ import annotations

import os
import socket
import sys

from databricks.labs.oauth_rotator.config import PgbouncerConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.rotation.front_folder import ServiceUser

LOOPBACKS = ("127.0.0.1", "::1")
SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
"""The first message a PostgreSQL client may send; any PostgreSQL server (pgbouncer too) answers one byte."""


def service_user(front: PgbouncerConfig) -> ServiceUser | None:
    """Under root, the OS user pgbouncer runs as: pgbouncer refuses to run as root. None otherwise."""
    if sys.platform == "win32" or os.geteuid() != 0:
        return None
    import pwd

    name = front.run_as
    if not name:
        raise ConfigError(
            "pgbouncer.run_as: pgbouncer refuses to run as root", fix="set pgbouncer.run_as to an unprivileged OS user"
        )
    try:
        entry = pwd.getpwnam(name)
    except KeyError as err:
        raise ConfigError(f"pgbouncer.run_as: no OS user named {name!r}") from err
    if entry.pw_uid == 0:
        raise ConfigError(f"pgbouncer.run_as: {name} is root", fix="name an unprivileged OS user")
    return ServiceUser(name, entry.pw_uid, entry.pw_gid)


def listen_addresses(front: PgbouncerConfig) -> list[str]:
    """Where the front listens: both loopbacks for a loopback address (the IPv6 one when the machine has it), else
    the one address configured."""
    address = front.effective_listen_address
    if address not in {*LOOPBACKS, "localhost"}:
        return [address]
    return [a for a in LOOPBACKS if a == "127.0.0.1" or has_ipv6_loopback()]


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def port_problem(address: str, port: int) -> str | None:
    """Why nothing could listen on `address:port` now (taken, not an address of ours), or None."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as pgbouncer sets it: TIME_WAIT is no conflict
        if family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            probe.bind((address, port))
        except OSError as err:
            return err.strerror or str(err)
    return None


def ports_problem(addresses: list[str], port: int) -> ConfigError | None:
    """The first of `addresses` whose port is taken, as the one-line error to show, or None."""
    for address in addresses:
        problem = port_problem(address, port)
        if problem:
            shown = f"[{address}]" if ":" in address else address
            also = " (the front listens on both loopbacks: `localhost` may mean either)" if len(addresses) > 1 else ""
            return ConfigError(
                f"pgbouncer.listen_port: cannot listen on {shown}:{port}: {problem}{also}",
                fix="set pgbouncer.listen_port to a free port, or stop what listens there",
            )
    return None


def listener_problem(address: str, port: int, timeout: float = 3.0) -> str | None:
    """Why the listener does not answer like a PostgreSQL server, or None: an SSLRequest must get `N` or `S` back."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            conn.sendall(SSL_REQUEST)
            answer = conn.recv(1)
    except OSError as err:
        return err.strerror or type(err).__name__
    return None if answer in {b"N", b"S"} else f"unexpected answer {answer!r} to an SSLRequest"
