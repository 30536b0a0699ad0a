"""The scheduler: refused at start for files others control, its sidecar endpoints bound from the flags or the
config and closed when it ends, its front supervised only when the config manages one. Real worker children."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from databricks.labs.oauth_rotator.app.request import RotationRequest
from databricks.labs.oauth_rotator.app.scheduler import front_supervisor, run_scheduler
from databricks.labs.oauth_rotator.config import HttpConfig, PgbouncerConfig, RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import RotatorError
from databricks.labs.oauth_rotator.files.config_store import save_config


class Home:
    """A user's home with a config naming a profile that `~/.databrickscfg` does not have: unusable (exit 2)."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        root.chmod(0o700)
        (root / ".databrickscfg").write_text("[other]\nhost = https://example.invalid\n")
        for name in ("DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HOME", str(root))
        monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(root / ".databrickscfg"))
        monkeypatch.setenv("DATABRICKS_LABS_CONFIG_DIR", str(root / "config"))
        monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(root / "state"))
        monkeypatch.delenv("DATABRICKS_OAUTH_ROTATOR_ENV_FILE", raising=False)
        self.config_path = root / "config" / "config.yml"

    def configure(self, **fields: Any) -> Path:
        config = RotatorConfig(
            targets=[TargetConfig(host="db.example.com", user="someone@example.com")],
            profile="missing",
            pgpass_file=str(self.root / ".pgpass"),
            log_file=str(self.root / "rotator.log"),
            **fields,
        )
        return save_config(config, self.config_path)


class Server:
    """What `serve_http` returned: closed when the scheduler ends."""

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Endpoints:
    """A `serve_http` that records where it was asked to listen instead of binding."""

    def __init__(self) -> None:
        self.bound: list[tuple[str, int]] = []
        self.server = Server()

    def __call__(self, address: str, port: int, health: object, quit_: Callable[[], None]) -> Server:
        self.bound.append((address, port))
        return self.server


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """The scheduler installs signal handlers and logging for the process: both are put back afterwards."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        (tmp_path / "home").mkdir()
        yield Home(tmp_path / "home", monkeypatch)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        root.handlers[:], root.level = saved


def test_a_config_others_can_write_is_refused_before_any_cycle(home: Home) -> None:
    path = home.configure()
    path.parent.chmod(0o777)
    with pytest.raises(RotatorError) as refused:
        run_scheduler(RotationRequest(path))
    assert refused.value.exit_code == 2
    assert str(path.parent) in str(refused.value)
    assert not (home.root / "state" / "status.json").exists()
    assert not (home.root / ".pgpass").exists()


def test_an_unusable_config_stops_it_with_exit_2_and_closes_the_endpoints_bound_from_flag_and_config(
    home: Home,
) -> None:
    path = home.configure(http=HttpConfig(address="127.0.0.9", port=9000))
    endpoints = Endpoints()
    assert run_scheduler(RotationRequest(path, http_port=9100), serve_http=endpoints) == 2
    assert endpoints.bound == [("127.0.0.9", 9100)]  # the flag's port, the config's address
    assert endpoints.server.closed
    assert not (home.root / ".pgpass").exists()


def test_no_port_no_endpoints(home: Home) -> None:
    endpoints = Endpoints()
    assert run_scheduler(RotationRequest(home.configure()), serve_http=endpoints) == 2
    assert endpoints.bound == []


def test_a_front_is_supervised_only_when_the_config_manages_one(home: Home) -> None:
    assert front_supervisor(RotationRequest(None)) is None
    assert front_supervisor(RotationRequest(home.configure())) is None
    unmanaged = PgbouncerConfig(manage=False, dir=str(home.root / "front"))
    assert front_supervisor(RotationRequest(home.configure(pgbouncer=unmanaged))) is None


def test_a_config_that_cannot_be_read_has_no_front_here(home: Home) -> None:
    home.config_path.parent.mkdir(parents=True, exist_ok=True)
    home.config_path.write_text("pgbouncer: [unclosed\n")
    assert front_supervisor(RotationRequest(home.config_path)) is None  # the first cycle's worker reports it
