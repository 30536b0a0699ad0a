"""Who runs the front, where it listens, and whether either loopback's port is taken."""

from __future__ import annotations

import os
import socket

import pytest

from databricks.labs.oauth_rotator.config import PgbouncerConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.rotation import front_checks

IPV6 = front_checks.has_ipv6_loopback()


@pytest.mark.parametrize("address", [None, "127.0.0.1", "localhost", "::1"])
def test_a_loopback_front_listens_on_both_loopbacks(address: str | None):
    expected = ["127.0.0.1", "::1"] if IPV6 else ["127.0.0.1"]
    assert front_checks.listen_addresses(PgbouncerConfig(listen_address=address)) == expected


def test_any_other_address_is_the_only_one():
    assert front_checks.listen_addresses(PgbouncerConfig(listen_address="10.1.2.3")) == ["10.1.2.3"]


@pytest.mark.skipif(not IPV6, reason="no IPv6 loopback here")
def test_a_raw_socket_holding_the_ipv6_loopback_port_is_named():
    with socket.socket(socket.AF_INET6) as squatter:
        squatter.bind(("::1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        problem = front_checks.ports_problem(["127.0.0.1", "::1"], port)
    assert problem is not None
    assert f"cannot listen on [::1]:{port}" in str(problem) and "`localhost` may mean either" in str(problem)


def test_free_ports_are_no_problem():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert front_checks.ports_problem(["127.0.0.1"], port) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="root only")
def test_under_root_the_service_user_must_exist_and_not_be_root():
    with pytest.raises(ConfigError, match="refuses to run as root"):
        front_checks.service_user(PgbouncerConfig())
    with pytest.raises(ConfigError, match="is root"):
        front_checks.service_user(PgbouncerConfig(run_as="root"))
    with pytest.raises(ConfigError, match="no OS user named"):
        front_checks.service_user(PgbouncerConfig(run_as="no-such-user-here"))
    user = front_checks.service_user(PgbouncerConfig(run_as="postgres"))
    assert user is not None and user.name == "postgres" and user.uid != 0


def test_a_listener_that_is_not_postgres_is_named():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
    assert front_checks.listener_problem("127.0.0.1", port, timeout=1) is not None
