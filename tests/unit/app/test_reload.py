"""The configuration in force and its reload: what a worker is handed, which lines leave, what the front does."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

from databricks.labs.oauth_rotator.app.reload import ConfigInForce, worker_request
from databricks.labs.oauth_rotator.app.request import RotationRequest
from databricks.labs.oauth_rotator.config import PgbouncerConfig, RotatorConfig, TargetConfig, from_raw
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.files.config_store import effective_source
from databricks.labs.oauth_rotator.files.pgpass_merge import without_lines
from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint
from databricks.labs.oauth_rotator.rotation.front_process import Supervisor
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState

SALES = ("sales.example.com", "5432", "*", "me@example.com")
REPORTS = ("reports.example.com", "5432", "*", "me@example.com")


def line(key: tuple[str, str, str, str], token: str) -> bytes:
    return pgpass.format_entry(pgpass.PgpassEntry(*key, password=token)) + b"\n"


def config(*names: str, front: PgbouncerConfig | None = None, pgpass_file: str = "/p") -> RotatorConfig:
    hosts = {"sales": SALES[0], "reports": REPORTS[0]}
    return RotatorConfig(
        targets=[TargetConfig(name=n, host=hosts[n]) for n in names], pgpass_file=pgpass_file, pgbouncer=front
    )


def test_only_our_line_of_a_retired_key_leaves_every_other_byte_stays():
    data = b"# mine\n" + line(SALES, "someone-elses") + line(SALES, "ours") + line(REPORTS, "ours-too") + b"x:y\n"
    kept = without_lines(data, {SALES: token_fingerprint("ours")})
    assert kept == b"# mine\n" + line(SALES, "someone-elses") + line(REPORTS, "ours-too") + b"x:y\n"
    assert without_lines(data, {}) == data


def test_the_worker_is_handed_the_configuration_in_force_as_data_and_reads_no_file(tmp_path: Path):
    good = config("sales", pgpass_file=str(tmp_path / ".pgpass"))
    request = worker_request(RotationRequest(tmp_path / "config.yml", {"interval_minutes": 5}), good)
    assert request["config"] is None
    assert from_raw(request["overrides"]) == good
    (tmp_path / "config.yml").write_text("broken: [")  # an edit the scheduler refused
    worker = RotationRequest.from_worker(request)  # what the worker reads, as app/rotate.py reads it
    assert worker.config_path is None
    assert effective_source(worker.config_path, worker.overrides) == (good, None)


def test_a_reload_retires_removed_targets_lines_and_hands_workers_the_new_config(tmp_path: Path):
    pgpass_file = tmp_path / ".pgpass"
    pgpass_file.write_bytes(line(SALES, "sales-token") + line(REPORTS, "reports-token") + b"other:1:*:u:p\n")
    pgpass_file.chmod(0o600)
    state = StateStore(tmp_path / "status.json")

    def recorded(status: Status) -> None:
        status.pgpass_file = str(pgpass_file)
        for label, key, token in (("sales", SALES, "sales-token"), ("reports", REPORTS, "reports-token")):
            status.targets[label] = TargetState(name=label, keys=[list(key)], fingerprint=token_fingerprint(token))

    state.update(recorded)
    used: list[RotatorConfig] = []
    new = config("reports", pgpass_file=str(pgpass_file))
    in_force = ConfigInForce(
        config("sales", "reports", pgpass_file=str(pgpass_file)),
        read=lambda: new,
        state=state,
        supervisor_of=lambda _c: None,
        use=used.append,
    )
    assert in_force.reload() is None
    assert pgpass_file.read_bytes() == line(REPORTS, "reports-token") + b"other:1:*:u:p\n"
    assert used == [new] and in_force.config is new


def test_a_config_that_fails_the_checks_is_not_applied(tmp_path: Path):
    running = config("sales")
    used: list[RotatorConfig] = []

    def read() -> RotatorConfig:
        raise ConfigError("config.yml: unknown key 'no_such_setting'")

    in_force = ConfigInForce(
        running, read=read, state=StateStore(tmp_path / "s.json"), supervisor_of=lambda _c: None, use=used.append
    )
    assert in_force.reload() == "config.yml: unknown key 'no_such_setting'"
    assert in_force.config is running and used == []


def test_the_front_starts_stops_restarts_or_adopts_as_the_config_says(tmp_path: Path):
    made: list[Any] = []  # autospec'd supervisors: their calls are asserted

    def supervisor_of(c: RotatorConfig) -> Supervisor | None:
        if c.front is None:
            return None
        made.append(create_autospec(Supervisor, instance=True))
        return made[-1]

    configs = iter(
        [
            config("sales", front=PgbouncerConfig(password="p")),  # added: started
            config("sales", front=PgbouncerConfig(password="q")),  # a setting pgbouncer reloads: adopted
            config("sales", front=PgbouncerConfig(password="q", listen_port=7000)),  # where it listens: restarted
            config("sales"),  # removed: stopped
        ]
    )
    in_force = ConfigInForce(
        config("sales"),
        read=lambda: next(configs),
        state=StateStore(tmp_path / "s.json"),
        supervisor_of=supervisor_of,
        use=lambda _c: None,
    )
    in_force.start_front()
    assert made == [] and in_force.supervisor is None
    in_force.reload()
    made[0].start.assert_called_once_with()
    in_force.reload()
    made[0].adopt.assert_called_once_with(made[1])
    made[0].stop.assert_not_called()
    in_force.reload()
    made[0].stop.assert_called_once_with()
    made[2].start.assert_called_once_with()
    in_force.reload()
    made[2].stop.assert_called_once_with()
    assert in_force.supervisor is None


def test_lines_that_cannot_be_removed_do_not_stop_the_new_configuration(tmp_path: Path):
    state = StateStore(tmp_path / "status.json")

    def recorded(status: Status) -> None:
        status.pgpass_file = str(tmp_path / "gone" / ".pgpass")  # its folder was removed since
        status.targets["sales"] = TargetState(name="sales", keys=[list(SALES)], fingerprint=token_fingerprint("t"))

    state.update(recorded)
    used: list[RotatorConfig] = []
    new = config("reports")
    in_force = ConfigInForce(
        config("sales", "reports"), read=lambda: new, state=state, supervisor_of=lambda _c: None, use=used.append
    )
    assert in_force.reload() is None
    assert used == [new]
