"""Who is on the other end of a loopback TCP connection: the user that owns the client's socket, on Linux.

The admin port listens on the loopback, which every local user reaches; the kernel knows which user opened the
client's socket, and says so in `/proc/net/tcp`. Elsewhere (macOS, Windows) there is no such table, and the answer
is None: the loopback and the request checks are then all there is (docs/security.md).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

TCP_TABLE = Path("/proc/net/tcp")


def peer_uid(client: tuple[str, int], server_port: int, *, table: Path = TCP_TABLE) -> int | None:
    """The uid that owns the client end (`client` address and port) of an IPv4 connection to `server_port`; None
    when this system has no table, or the connection is not in it (gone already)."""
    try:
        rows = table.read_text(encoding="ascii").splitlines()[1:]
    except OSError:
        return None
    local = f"{_hex_address(client[0])}:{client[1]:04X}"
    remote_port = f":{server_port:04X}"
    for row in rows:
        fields = row.split()
        # sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
        if len(fields) > 7 and fields[1] == local and fields[2].endswith(remote_port):
            return int(fields[7])
    return None


def has_table(table: Path = TCP_TABLE) -> bool:
    """Whether this system says who owns a socket (Linux)."""
    return table.is_file()


def _hex_address(address: str) -> str:
    """An IPv4 address as the kernel prints it: the 32-bit value in the host's byte order, in hex."""
    return f"{int.from_bytes(socket.inet_aton(address), sys.byteorder):08X}"
