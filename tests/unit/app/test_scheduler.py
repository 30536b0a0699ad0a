"""The scheduler's start (`app/scheduler.py`): the config read once, through the one reader, and put through the one
preflight before anything runs; a setup that can never work is exit 2 at start, not a worker's failure later."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from databricks.labs.oauth_rotator.app import scheduler
from databricks.labs.oauth_rotator.app.request import RotationRequest
from databricks.labs.oauth_rotator.app.scheduler import endpoints_plan, front_supervisor, run_scheduler
from databricks.labs.oauth_rotator.config import HttpConfig, PgbouncerConfig, RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError, RotatorError
from databricks.labs.oauth_rotator.files import logs
from databricks.labs.oauth_rotator.files.config_store import save_config
from databricks.labs.oauth_rotator.rotation.health import DEFAULT_ADMIN_PORT, EndpointsPlan


@pytest.fixture(name="plain_home")
def fixture_plain_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("PGPASSFILE", raising=False)
    # The scheduler's own logging setup is not under test: keep this process's handlers as they are.
    monkeypatch.setattr(logs, "setup_logging", lambda *args, **kwargs: None)
    return tmp_path


def test_a_config_whose_files_can_never_be_written_stops_the_scheduler_at_start(plain_home: Path):
    config = save_config(
        RotatorConfig(targets=[TargetConfig(host="h")], pgpass_file=str(plain_home / "gone" / ".pgpass")),
        plain_home / "c.yml",
    )
    with pytest.raises(ConfigError, match="pgpass_file: cannot write"):
        scheduler.run_scheduler(RotationRequest(config, {}))
    assert not (plain_home / "state").exists()  # nothing written


def test_the_flags_win_over_the_file_in_the_one_read(plain_home: Path):
    config = save_config(RotatorConfig(targets=[TargetConfig(host="h")], interval_minutes=30), plain_home / "c.yml")
    with pytest.raises(ConfigError, match=r"^interval_minutes: expected minutes"):
        scheduler.run_scheduler(RotationRequest(config, {"interval_minutes": 0}))


def test_a_missing_pgbouncer_is_refused_at_start(plain_home: Path):
    front = PgbouncerConfig(binary=str(plain_home / "no-pgbouncer"))
    config = save_config(RotatorConfig(targets=[TargetConfig(host="h")], pgbouncer=front), plain_home / "c.yml")
    with pytest.raises(ConfigError, match="the pgbouncer program is not installed"):
        scheduler.run_scheduler(RotationRequest(config, {}))


def test_without_a_managed_front_there_is_no_supervisor():
    assert scheduler.front_supervisor(RotatorConfig(targets=[TargetConfig(host="h")])) is None
    unmanaged = PgbouncerConfig(manage=False)
    assert scheduler.front_supervisor(RotatorConfig(targets=[TargetConfig(host="h")], pgbouncer=unmanaged)) is None


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

    def __call__(self, plan: EndpointsPlan, health: object) -> Server:
        assert plan.port is not None
        self.bound.append((plan.address, plan.port))
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
    plain = RotatorConfig(targets=[TargetConfig(host="db.example.com")])
    assert front_supervisor(plain) is None
    unmanaged = PgbouncerConfig(manage=False, dir=str(home.root / "front"))
    assert front_supervisor(RotatorConfig(targets=plain.targets, pgbouncer=unmanaged)) is None


def test_a_config_that_cannot_be_read_stops_the_scheduler_at_start(home: Home) -> None:
    home.config_path.parent.mkdir(parents=True, exist_ok=True)
    home.config_path.write_text("pgbouncer: [unclosed\n")
    home.config_path.chmod(0o600)
    with pytest.raises(ConfigError, match="cannot read config") as raised:  # the one reader, before any cycle
        run_scheduler(RotationRequest(home.config_path))
    assert raised.value.exit_code == 2


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
