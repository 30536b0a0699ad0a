"""What each service definition would start, started for real: it rotates, psql logs in, SIGTERM stops it cleanly.

There is no systemd user manager, launchd or Task Scheduler here, so the command line is taken back out of the
generated unit, plist and task XML (with each format's own quoting) and run as a subprocess with the
environment the definition sets. The home path has a space, a `%` and a non-ASCII letter on purpose.
"""

from __future__ import annotations

import os
import plistlib
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files.config_store import save_config
from databricks.labs.oauth_rotator.service import launchd, systemd, windows
from databricks.labs.oauth_rotator.service.base import ServiceSpec
from tests.rigs.postgres import LocalPostgres
from tests.rigs.workspace import DEMO_INSTANCE, FakeWorkspace

USER = "someone@example.com"


def _systemd(spec: ServiceSpec) -> list[str]:
    return systemd.extract_argv(systemd.render_unit(spec))


def _launchd(spec: ServiceSpec) -> list[str]:
    rendered = launchd.render_plist(spec)
    assert plistlib.loads(rendered)["EnvironmentVariables"]["HOME"] == str(spec.home)
    return launchd.extract_argv(rendered)


def _windows(spec: ServiceSpec) -> list[str]:
    return windows.extract_argv(windows.render_task_xml(spec, user="ANA\\ana"))


@pytest.mark.parametrize("definition", [_systemd, _launchd, _windows], ids=["systemd", "launchd", "windows"])
def test_the_command_in_each_service_definition_rotates_and_stops_cleanly(
    tmp_path: Path, workspace: FakeWorkspace, postgres: LocalPostgres, definition: Callable[[ServiceSpec], list[str]]
):
    home = tmp_path / "ana maria" / "100%" / "ñ"
    home.mkdir(parents=True)
    (home / ".databrickscfg").write_text(
        f"[lakebase]\nhost = {workspace.host}\n"
        f"client_id = {workspace.client_id}\nclient_secret = {workspace.client_secret}\n"
    )
    pgpass_file = home / ".pgpass"
    config_path = save_config(
        RotatorConfig(
            targets=[TargetConfig(instance=DEMO_INSTANCE, port=postgres.port)],
            profile="lakebase",
            pgpass_file=str(pgpass_file),
        ),
        home / ".databricks" / "labs" / "oauth-rotator" / "config" / "config.yml",
    )
    spec = ServiceSpec.create(config_path, profile="lakebase", home=home, cli_path="", source_environ={})
    argv = definition(spec)
    assert argv[-2:] == ["--config", str(config_path)]
    rendered = systemd.render_unit(spec) + launchd.render_plist(spec).decode() + windows.render_task_xml(spec)
    assert not [s for s in workspace.issued_secrets() if s in rendered], "no secret in any definition"

    env = {**spec.service_environment, "PATH": os.environ["PATH"]}
    daemon = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
    try:
        deadline = time.monotonic() + 30
        while not pgpass_file.exists() and time.monotonic() < deadline:
            assert daemon.poll() is None, daemon.communicate()[1]
            time.sleep(0.1)
        assert postgres.psql_login(user=USER, passfile=pgpass_file).returncode == 0
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert "scheduler stopped" in err
    assert not [s for s in workspace.issued_secrets() if s in out + err]
