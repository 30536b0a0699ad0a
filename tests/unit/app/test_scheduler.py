"""What the scheduler serves over HTTP, from the flags and the config's `http:` block."""

from __future__ import annotations

from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.app.request import RotationRequest
from databricks.labs.oauth_rotator.app.scheduler import endpoints_plan
from databricks.labs.oauth_rotator.config import HttpConfig, RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.rotation.health import DEFAULT_ADMIN_PORT, EndpointsPlan


def config(**http: object) -> RotatorConfig:
    return RotatorConfig(targets=[TargetConfig(instance="i")], http=HttpConfig(**http))  # type: ignore[arg-type]


def request(**flags: object) -> RotationRequest:
    return RotationRequest(Path("config.yml"), **flags)  # type: ignore[arg-type]


def test_nothing_is_served_unless_asked():
    assert endpoints_plan(request(), None) is None
    assert endpoints_plan(request(), config()) is None


def test_the_probes_alone_have_no_admin_port():
    assert endpoints_plan(request(http_port=9091), None) == EndpointsPlan("127.0.0.1", 9091, None)


def test_quitquitquit_opens_the_admin_port_default_or_given_by_flag_or_config():
    assert endpoints_plan(request(quitquitquit=True), None) == EndpointsPlan("127.0.0.1", None, DEFAULT_ADMIN_PORT)
    plan = endpoints_plan(request(http_port=9091, quitquitquit=True, admin_port=9300), None)
    assert plan == EndpointsPlan("127.0.0.1", 9091, 9300)
    everywhere = "0.0.0.0"  # noqa: S104  # the probes on every address, as in a pod
    plan = endpoints_plan(request(), config(port=9091, quitquitquit=True, admin_port=9301, address=everywhere))
    assert plan == EndpointsPlan(everywhere, 9091, 9301)


@pytest.mark.parametrize(
    ("flags", "http", "message"),
    [
        ({"admin_port": 9300}, {}, "--quitquitquit"),
        ({}, {"admin_port": 9300}, "--quitquitquit"),
        ({"http_port": 9300, "quitquitquit": True, "admin_port": 9300}, {}, "probes' port"),
        ({"quitquitquit": True}, {"port": DEFAULT_ADMIN_PORT}, "probes' port"),
    ],
)
def test_an_admin_port_without_quitquitquit_or_on_the_probes_port_is_refused(flags: dict, http: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        endpoints_plan(request(**flags), config(**http))


@pytest.mark.parametrize("raw", [{"admin_port": 70000}, {"admin_port": "9092"}, {"quitquitquit": "yes"}])
def test_a_bad_admin_setting_in_the_config_is_named(raw: dict):
    from databricks.labs.oauth_rotator.config import from_raw

    with pytest.raises(ConfigError, match="http"):
        from_raw({"version": 1, "http": raw, "targets": [{"instance": "i"}]})
