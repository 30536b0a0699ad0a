"""`doctor` says what Lakebase refuses or ignores: pooled hosts for OAuth roles, a ttl the SDK cannot send."""

from __future__ import annotations

from databricks.labs.oauth_rotator.app.doctor_findings import OK, WARN
from databricks.labs.oauth_rotator.app.doctor_lakebase import POOLER_REFUSES, check_lakebase
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig

ENDPOINT = "projects/p/branches/b/endpoints/e"


def generate_with_ttl(endpoint: str, *, claims: object = None, ttl: object = None) -> None:
    """The shape of `w.postgres.generate_database_credential` from databricks-sdk 0.120.0."""


def generate_without_ttl(endpoint: str, *, claims: object = None) -> None:
    """Its shape before 0.120.0."""


def test_pooled_hosts_with_an_oauth_credential_are_a_warning_pointing_to_the_front():
    config = RotatorConfig(targets=[TargetConfig(name="sales", endpoint=ENDPOINT, pooled=True), TargetConfig(host="h")])
    (finding,) = check_lakebase(config, generate=generate_with_ttl)
    assert (finding.level, finding.check) == (WARN, "pooled sales")
    assert POOLER_REFUSES in finding.message
    assert "pgbouncer:" in (finding.fix or "")


def test_no_ttl_no_pooled_hosts_nothing_to_say():
    assert check_lakebase(RotatorConfig(targets=[TargetConfig(endpoint=ENDPOINT)]), generate=generate_without_ttl) == []


def test_a_ttl_the_sdk_cannot_send_is_a_warning_and_instances_have_none():
    targets = [TargetConfig(endpoint=ENDPOINT), TargetConfig(name="legacy", instance="inst")]
    config = RotatorConfig(targets=targets, credential_ttl_minutes=15)
    lacking = check_lakebase(config, generate=generate_without_ttl)
    assert [f.level for f in lacking] == [WARN, OK]
    assert "cannot ask for it" in lacking[0].message and "0.120.0" in (lacking[0].fix or "")
    assert lacking[1].message == "Provisioned instances have no ttl: legacy get the API's one-hour credentials"
    sent = check_lakebase(config, generate=generate_with_ttl)
    assert sent[0].level == OK and sent[0].message == "endpoints' credentials are asked for 15 minutes"


def test_the_installed_sdk_takes_ttl():
    config = RotatorConfig(targets=[TargetConfig(endpoint=ENDPOINT)], credential_ttl_minutes=5)
    assert [f.level for f in check_lakebase(config)] == [OK]
