"""Installing, restarting and uninstalling the service, against the in-memory service manager and real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.app.request import RotationRequest
from databricks.labs.oauth_rotator.app.service import (
    LINES_STAY,
    NO_PROFILE_NOTICE,
    install_service,
    restart_service,
    save_and_install,
    uninstall_service,
)
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.files.config_store import load_config
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState
from databricks.labs.oauth_rotator.service import MockServiceManager, ServiceError

OURS = pgpass.PgpassEntry("db.example.com", "5432", "*", "someone@example.com", "token-ours")
FOREIGN = b"# mine\nlocalhost:5432:*:me:my-own-password\n"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tmp_path.chmod(0o700)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DATABRICKS_LABS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("PGPASSFILE", raising=False)
    return tmp_path


def environ_of(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "DATABRICKS_LABS_STATE_DIR": str(home / "state")}


def rotated(home: Path) -> None:
    """What a rotation leaves: our line among the user's, and status.json recording its key."""
    (home / ".pgpass").write_bytes(pgpass.merge(FOREIGN, [OURS]))
    (home / ".pgpass").chmod(0o600)

    def change(status: Status) -> None:
        status.pgpass_file = str(home / ".pgpass")
        status.targets["sales"] = TargetState(name="sales", keys=[list(OURS.key)])

    StateStore(home / "state" / "status.json").update(change)


def test_installing_without_a_profile_says_how_the_service_will_log_in(home: Path) -> None:
    manager = MockServiceManager()
    config = RotatorConfig(targets=[TargetConfig(host="h")])
    message = install_service(config, home / "config.yml", manager=manager, environ={"DATABRICKS_TOKEN": "dapi-x"})
    assert message.endswith(NO_PROFILE_NOTICE)
    assert manager.spec is not None
    assert manager.spec.config_path == home / "config.yml"
    assert "dapi-x" not in manager.render(manager.spec).decode()
    pinned = RotatorConfig(targets=[TargetConfig(host="h")], profile="prod")
    assert NO_PROFILE_NOTICE not in install_service(pinned, home / "config.yml", manager=manager)


def test_restarting_a_service_that_is_not_installed_says_to_install_it() -> None:
    with pytest.raises(ServiceError) as refused:
        restart_service(MockServiceManager())
    assert refused.value.fix == "run `databricks labs oauth-rotator install`"


def test_restarting_an_installed_service_restarts_it(home: Path) -> None:
    manager = MockServiceManager()
    install_service(RotatorConfig(targets=[TargetConfig(host="h")], profile="p"), home / "c.yml", manager=manager)
    manager.running = False
    assert restart_service(manager) == "Restarted the background service."
    assert manager.running
    assert manager.calls[-1] == "restart"


def test_uninstalling_leaves_our_lines_unless_purged(home: Path) -> None:
    rotated(home)
    message = uninstall_service(MockServiceManager(), purge=False, environ=environ_of(home))
    assert LINES_STAY in message
    assert "`--purge true` removes them" in message
    assert pgpass.lookup((home / ".pgpass").read_bytes(), *OURS.key) == "token-ours"


def test_purging_removes_only_our_lines_and_the_status_file(home: Path) -> None:
    rotated(home)
    message = uninstall_service(MockServiceManager(), purge=True, environ=environ_of(home))
    assert f"Removed 1 line(s) of oauth-rotator's from {home / '.pgpass'}" in message
    assert (home / ".pgpass").read_bytes() == FOREIGN
    assert not (home / "state" / "status.json").exists()


def test_purging_with_nothing_recorded_removes_nothing(home: Path) -> None:
    (home / ".pgpass").write_bytes(FOREIGN)
    message = uninstall_service(MockServiceManager(), purge=True, environ=environ_of(home))
    assert "nothing to remove" in message
    assert (home / ".pgpass").read_bytes() == FOREIGN


def test_save_and_install_saves_the_flags_as_a_config_with_the_service_on(home: Path) -> None:
    manager = MockServiceManager()
    overrides = {"profile": "prod", "target": {"host": "db.example.com"}, "pgpass_file": str(home / ".pgpass")}
    path, message = save_and_install(
        RotationRequest(None, overrides), environ={"DATABRICKS_LABS_CONFIG_DIR": str(home / "config")}, manager=manager
    )
    assert path == home / "config" / "config.yml"
    saved = load_config(path)
    assert saved.service is True
    assert [t.host for t in saved.targets] == ["db.example.com"]
    assert manager.spec is not None
    assert manager.spec.config_path == path
    assert message.startswith("Installed and started")
