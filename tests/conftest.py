"""Shared fixtures: a real PostgreSQL per session (per xdist worker) and a fake workspace per test.

* ``postgres`` (session): a started ``LocalPostgres`` (SSL only, SCRAM; listens on 127.0.0.1-3 on Linux).
* ``fake_workspace``: a started ``FakeWorkspace`` (user ``someone@example.com``, client ``fake-client-id`` with a
  random secret, 3600 s TTLs) holding ``DEMO_INSTANCE`` (``read_write_dns`` 127.0.0.1) and ``DEMO_ENDPOINT``
  (host 127.0.0.2 on Linux). No PostgreSQL: for tests of the HTTP side only.
* ``workspace``: the same workspace, with every credential it issues set as the password of the role named after
  the credential's user in ``postgres`` (``VALID UNTIL`` its expiry). Its teardown drops every role again.
* ``sdk_config``: an OAuth M2M ``databricks.sdk.config.Config`` for ``workspace`` (5 s HTTP timeout, 10 s retry
  budget); it brings up ``postgres``. Without PostgreSQL use ``fake_workspace.sdk_config()``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from databricks.sdk.config import Config

from tests.rigs.postgres import LocalPostgres
from tests.rigs.workspace import DEMO_ENDPOINT, DEMO_INSTANCE, FakeWorkspace


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    with LocalPostgres() as server:
        yield server


@pytest.fixture
def fake_workspace() -> Iterator[FakeWorkspace]:
    with FakeWorkspace() as ws:
        ws.add_instance(DEMO_INSTANCE, read_write_dns="127.0.0.1")
        ws.add_endpoint(DEMO_ENDPOINT, host="127.0.0.2")
        yield ws


@pytest.fixture
def workspace(fake_workspace: FakeWorkspace, postgres: LocalPostgres) -> Iterator[FakeWorkspace]:
    fake_workspace.add_endpoint(DEMO_ENDPOINT, host=postgres.hosts[1 % len(postgres.hosts)])
    fake_workspace.on_credential = postgres.set_password
    yield fake_workspace
    fake_workspace.on_credential = None
    postgres.reset()


@pytest.fixture
def sdk_config(workspace: FakeWorkspace) -> Config:
    return workspace.sdk_config(http_timeout_seconds=5, retry_timeout_seconds=10)


@pytest.fixture
def umask_000() -> Iterator[None]:
    """Run with umask 000, the worst case for file modes (each xdist worker is its own process)."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)
