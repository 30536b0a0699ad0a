"""Who owns the other end of a loopback connection, read from the kernel's table (Linux)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.commands.peer import has_table, peer_uid


@pytest.mark.skipif(not has_table(), reason="no /proc/net/tcp here")
def test_the_owner_of_a_real_connection_is_this_process_user():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5) as client:
            accepted, address = server.accept()
            with accepted:
                assert peer_uid(address, server.getsockname()[1]) == os.geteuid()
                assert peer_uid(address, server.getsockname()[1] ^ 1) is None, "another port: not this connection"
            client.close()


def test_a_row_of_the_table_is_read_in_the_hosts_byte_order(tmp_path: Path):
    table = tmp_path / "tcp"
    local = "0100007F" if sys.byteorder == "little" else "7F000001"
    table.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        f"   0: {local}:D431 {local}:2384 01 00000000:00000000 00:00000000 00000000  1234        0 1 1\n"
    )
    assert peer_uid(("127.0.0.1", 0xD431), 0x2384, table=table) == 1234
    assert peer_uid(("127.0.0.1", 0xD432), 0x2384, table=table) is None
    assert peer_uid(("127.0.0.1", 0xD431), 0x2384, table=tmp_path / "none") is None
