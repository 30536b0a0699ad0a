"""Secrets never leave memory and `.pgpass`.

The scan itself runs when the session ends (`secrets_collector` in conftest.py): every token and client secret any
fake workspace of the session issued is searched for in every file the product wrote under each test's home (logs,
`status.json`, daemon output, rotated logs), every captured stdout and stderr, every `ps auxww` sample taken while a
daemon ran, and the service definitions rendered here. This module adds the service definitions of a user whose
login is in the environment (the case where a careless installer would copy the secret into the unit file).
"""

from __future__ import annotations

from databricks.labs.oauth_rotator.app.service import service_spec
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files.config_store import save_config
from databricks.labs.oauth_rotator.service import (
    LaunchdServiceManager,
    SystemdServiceManager,
    WindowsServiceManager,
)
from tests.reliability.conftest import Home
from tests.reliability.rig import SecretsCollector
from tests.rigs.workspace import DEMO_INSTANCE


def test_service_definitions_for_a_user_logged_in_through_the_environment_hold_no_secret(
    home: Home, secrets_collector: SecretsCollector
):
    pat = "dapi" + "0123456789abcdef" * 2
    home.workspace.add_pat(pat)
    environ = {**home.env, "DATABRICKS_TOKEN": pat, "PGPASSFILE": str(home.pgpass)}
    config_path = home.root / "config" / "config.yml"
    for profile in (None, "lakebase"):
        config = RotatorConfig(targets=[TargetConfig(instance=DEMO_INSTANCE)], profile=profile)
        save_config(config, config_path)
        spec = service_spec(config, config_path, environ)
        rendered = {
            "systemd unit": SystemdServiceManager(home=home.root).render(spec).decode(),
            "launchd plist": LaunchdServiceManager(home=home.root, uid=501).render(spec).decode(),
            "task XML": WindowsServiceManager(home=home.root, user="CORP\\someone", environ={}, exists=lambda _: True)
            .render(spec)
            .decode("utf-16"),
        }
        for what, text in rendered.items():
            secrets_collector.add_output(text)
            for secret in (home.workspace.client_secret, pat):
                assert secret not in text, f"{what} holds a secret"
            assert str(config_path) in text, f"{what} does not run the saved config"
