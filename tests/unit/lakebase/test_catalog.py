"""The workspace's Lakebase databases as one list, read through the real SDK from the fake workspace."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound

from databricks.labs.oauth_rotator.config import TargetConfig
from databricks.labs.oauth_rotator.lakebase.catalog import (
    POOLED,
    READ_ONLY,
    READ_ONLY_POOLED,
    READ_WRITE,
    LakebaseCatalog,
)
from tests.rigs.workspace import DEMO_ENDPOINT, DEMO_INSTANCE, FakeWorkspace

POOLED_ENDPOINT = "projects/shop/branches/dev/endpoints/pooled"


@pytest.fixture
def catalog(fake_workspace: FakeWorkspace) -> LakebaseCatalog:
    fake_workspace.add_instance("replicated", read_write_dns="rw.example.com", read_only_dns="ro.example.com")
    fake_workspace.add_instance("stopped", read_write_dns="st.example.com", state="STOPPED")
    fake_workspace.add_endpoint(
        POOLED_ENDPOINT,
        host="ep.example.com",
        read_only_host="ep-ro.example.com",
        read_write_pooled_host="ep-pool.example.com",
        read_only_pooled_host="ep-ro-pool.example.com",
        state="IDLE",
    )
    return LakebaseCatalog(WorkspaceClient(config=fake_workspace.sdk_config()))


def test_an_instance_has_its_hosts_by_role_and_its_state(catalog: LakebaseCatalog) -> None:
    found = catalog.instance("replicated")
    assert found.hosts == {READ_WRITE: "rw.example.com", READ_ONLY: "ro.example.com"}
    assert (found.kind, found.host, found.state, found.ready) == ("instance", "rw.example.com", "AVAILABLE", True)
    assert found.target() == TargetConfig(instance="replicated")


def test_a_stopped_instance_is_not_ready(catalog: LakebaseCatalog) -> None:
    assert not catalog.instance("stopped").ready


def test_an_endpoint_has_all_four_roles_and_an_idle_one_is_ready(catalog: LakebaseCatalog) -> None:
    found = catalog.endpoint(POOLED_ENDPOINT)
    assert found.hosts == {
        READ_WRITE: "ep.example.com",
        READ_ONLY: "ep-ro.example.com",
        POOLED: "ep-pool.example.com",
        READ_ONLY_POOLED: "ep-ro-pool.example.com",
    }
    assert found.ready  # an idle endpoint wakes up on connect
    assert found.target() == TargetConfig(endpoint=POOLED_ENDPOINT)
    assert found.description == f"endpoint {POOLED_ENDPOINT}"


def test_listing_walks_every_project_and_branch(catalog: LakebaseCatalog) -> None:
    assert {d.name for d in catalog.instances()} == {DEMO_INSTANCE, "replicated", "stopped"}
    assert {d.name for d in catalog.endpoints()} == {DEMO_ENDPOINT, POOLED_ENDPOINT}


def test_a_database_serves_any_of_its_hosts_whatever_their_case(catalog: LakebaseCatalog) -> None:
    found = catalog.endpoint(POOLED_ENDPOINT)
    assert found.serves("EP-POOL.example.com")
    assert not found.serves("other.example.com")


def test_an_unknown_database_is_the_sdks_error_for_callers_to_sort(catalog: LakebaseCatalog) -> None:
    with pytest.raises(NotFound):
        catalog.instance("gone")
