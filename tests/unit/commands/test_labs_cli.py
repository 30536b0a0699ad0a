"""The labs entrypoint (payload, routing, exit codes), the status and logs commands, and the service console scripts."""

from __future__ import annotations

import inspect
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.app.status import (
    COLUMNS,
    collect_status,
    configured_log_file,
    expires_in,
    render_table,
    service_state,
    status_rows,
)
from databricks.labs.oauth_rotator.commands import labs_cli, labs_runner, record
from databricks.labs.oauth_rotator.commands.service_scripts import (
    install_command,
    restart_command,
    status_command,
    uninstall_command,
)
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.files.config_store import load_config, save_config
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState
from databricks.labs.oauth_rotator.service import MockServiceManager, ServiceError, ServiceStatus

ROOT = Path(__file__).resolve().parents[3]
ENTRYPOINT = ROOT / "src" / "databricks" / "labs" / "oauth_rotator" / "commands" / "labs_cli.py"
NOW = 1_767_225_600.0
HEAVY = ("databricks.sdk", "databricks.labs.blueprint")


def payload(command: str, log_level: str = "warn", **flags: str) -> str:
    return json.dumps({"command": command, "flags": {**flags, "log_level": log_level}, "output_type": ""})


def labs_env(home: Path) -> dict[str, str]:
    """The environment `databricks labs` gives the entrypoint (no auth: these tests need no workspace)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_", "PG", "XDG_CONFIG"))}
    return {
        **keep,
        "HOME": str(home),
        "DATABRICKS_LABS_CONFIG_DIR": str(home / "config"),
        "DATABRICKS_LABS_STATE_DIR": str(home / "state"),
        "DATABRICKS_LABS_CACHE_DIR": str(home / "cache"),
        "DATABRICKS_LABS_LIB_DIR": str(ROOT),
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
    }


def entrypoint(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python <lib>/src/.../cli.py '<payload>'` from another directory, as the Databricks CLI runs it."""
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT), *args],
        env=labs_env(home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_status(home: Path) -> None:
    def change(status: Status) -> None:
        status.pgpass_file = str(home / ".pgpass")
        status.targets["sales"] = TargetState(
            name="sales",
            user="someone@example.com",
            hosts=["sales.database.example.com", "ro.database.example.com"],
            expires_at=NOW + 47 * 60,
            last_success=NOW - 13 * 60,
        )
        status.targets["reports"] = TargetState(
            name="reports",
            user="someone@example.com",
            hosts=["reports.database.example.com"],
            expires_at=NOW - 3 * 60,
            last_success=NOW - 63 * 60,
            last_error="the Databricks login has expired:\trefresh token is invalid",
            needs_person=True,
            fix="run `databricks auth login --profile prod`",
            failures=4,
        )

    StateStore(home / "state" / "status.json").update(change)


# ---- the payload ---------------------------------------------------------------------------------------------


def test_a_payload_is_read_with_defaults_for_the_flags_left_empty():
    parsed = labs_cli.parse_payload([payload("uninstall", purge="")])
    assert parsed == labs_cli.Payload("uninstall", {"purge": "false"}, "warn")
    expected = labs_cli.Payload("logs", {"lines": "7"}, "debug")
    assert labs_cli.parse_payload([payload("logs", "debug", lines="7")]) == expected
    assert labs_cli.parse_payload(['{"command": "rotate"}']).flags == {"verify": "false"}  # log_level defaults to warn
    assert labs_cli.parse_payload([payload("rotate", verify="TRUE")]).flags == {"verify": "true"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "expected one argument"),
        (["{not json"], "not JSON"),
        (["[1, 2]"], "must be a JSON object"),
        (['{"flags": {}}'], 'no "command"'),
        ([payload("frobnicate")], "unknown command 'frobnicate'"),
        (['{"command": "status", "flags": []}'], "object of strings"),
        (['{"command": "logs", "flags": {"lines": 5}}'], "object of strings"),
        ([payload("status", bogus="x")], "unknown flag --bogus"),
        ([payload("rotate", verify="yes please")], "--verify expects true or false"),
        ([payload("logs", lines="0")], "--lines expects a number"),
        ([payload("logs", lines="many")], "--lines expects a number"),
        ([payload("status", log_level="loud")], "unknown log level"),
    ],
)
def test_a_bad_payload_is_refused_with_its_reason(args, message):
    with pytest.raises(labs_runner.PayloadError, match=message.replace("[", r"\[")):
        labs_cli.parse_payload(args)


@pytest.mark.parametrize(
    "arg", ["{not json", '{"command": "frobnicate", "flags": {}}', '{"command": "logs", "flags": 3}']
)
def test_a_bad_payload_exits_2_with_one_line_and_no_traceback(tmp_path, arg):
    result = entrypoint(tmp_path, arg)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("oauth-rotator: error: ")


# ---- routing through blueprint's App ---------------------------------------------------------------------------


def test_every_command_is_registered_under_its_labs_name_with_its_flags():
    registered = labs_cli.build_app()._mapping  # pylint: disable=protected-access
    assert list(registered) == [command.name for command in record.offered_by(record.LABS)]
    for name, command in registered.items():
        assert command.is_unauthenticated  # blueprint must never build a WorkspaceClient from the environment
        assert command.description.strip()
        flags = {flag.parameter for flag in record.command_named(name).flags_for(record.LABS)}
        assert set(inspect.signature(command.fn).parameters) - {"debug"} == flags


def test_flags_reach_the_commands_with_their_types():
    registered = labs_cli.build_app()._mapping  # pylint: disable=protected-access
    assert registered["rotate"].get_argument_type("verify") == "bool"
    assert registered["uninstall"].get_argument_type("purge") == "bool"
    assert registered["logs"].get_argument_type("lines") == "int"


def test_rotate_without_a_config_says_to_configure_and_exits_2(tmp_path):
    result = entrypoint(tmp_path, payload("rotate", verify="false"))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "databricks labs oauth-rotator configure" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".databricks_oauth_rotator.log").exists()


def test_uninstall_when_nothing_is_installed_is_a_no_op(tmp_path):
    result = entrypoint(tmp_path, payload("uninstall", purge="false"))
    assert result.returncode == 0, result.stderr
    assert "not installed" in result.stdout and "nothing to do" in result.stdout


def test_restart_when_nothing_is_installed_fails(tmp_path):
    result = entrypoint(tmp_path, payload("restart"))
    assert result.returncode == 1
    assert "not installed" in result.stderr and "oauth-rotator install" in result.stderr


# ---- status ------------------------------------------------------------------------------------------------


def test_status_rows_humanise_expiry_and_carry_the_fix(tmp_path):
    write_status(tmp_path)
    rows = status_rows(StateStore(tmp_path / "state" / "status.json").load(), "running (pid 42)", NOW)
    assert [r["target"] for r in rows] == ["reports", "sales"]
    reports, sales = rows
    assert set(sales) == {*COLUMNS, "expires_at"}
    assert sales["expires_in"] == "47 min"
    assert sales["host"] == "sales.database.example.com, ro.database.example.com"
    assert sales["last_error"] == "-"
    assert sales["service"] == "running (pid 42)"
    assert reports["expires_in"] == "expired 3 min ago"
    assert reports["last_error"] == (
        "the Databricks login has expired: refresh token is invalid; "
        "run `databricks auth login --profile prod` (4 attempts)"
    )


def test_expiry_reads_as_people_say_it():
    assert expires_in(None, NOW) == "-"
    assert expires_in(NOW + 90, NOW) == "90 s"
    assert expires_in(NOW + 3 * 3600 + 300, NOW) == "3 h 5 min"
    assert expires_in(NOW - 45, NOW) == "expired 45 s ago"


def test_status_never_shows_a_secret_an_api_echoed():
    status = Status(targets={"x": TargetState(name="x", last_error="bad request: password=hunter2 Bearer abc.def")})
    row = status_rows(status, "unknown", NOW)[0]
    assert "hunter2" not in row["last_error"] and "abc.def" not in row["last_error"]


def test_status_prints_one_json_value_on_stdout(tmp_path):
    write_status(tmp_path)
    result = entrypoint(tmp_path, payload("status"))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)  # the whole of stdout, as the CLI parses it for table_template
    assert [r["target"] for r in rows] == ["reports", "sales"]
    assert all(set(COLUMNS) <= set(r) and all(isinstance(v, str) for v in r.values()) for r in rows)
    assert rows[0]["service"] == "not installed"


def test_status_with_no_status_file_is_an_empty_list_and_a_hint(tmp_path):
    result = entrypoint(tmp_path, payload("status"))
    assert result.returncode == 0
    assert json.loads(result.stdout) == []
    assert "oauth-rotator rotate" in result.stderr


@pytest.mark.parametrize("command", [payload("status"), payload("logs", lines="5"), payload("status", "debug")])
def test_status_and_logs_never_import_the_sdk_or_blueprint(tmp_path, command):
    write_status(tmp_path)
    dump = tmp_path / "modules.json"
    probe = (
        "import atexit, json, runpy, sys\n"
        f"atexit.register(lambda: open({str(dump)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        f"sys.argv = [{str(ENTRYPOINT)!r}, {command!r}]\n"
        f"runpy.run_path({str(ENTRYPOINT)!r}, run_name='__main__')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=labs_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(dump.read_text())
    assert "databricks.labs.oauth_rotator.app.status" in loaded  # the probe saw the command run
    assert [m for m in loaded if m.startswith(HEAVY)] == []


def test_the_service_state_comes_from_the_manager(tmp_path):
    assert service_state(lambda: MockServiceManager(running=True, spec=None)) == "not installed"

    class Installed(MockServiceManager):
        @property
        def definition_path(self) -> Path:
            path = tmp_path / "databricks-oauth-rotator.service"
            path.touch()
            return path

    class Stopped(Installed):
        def status(self) -> ServiceStatus:
            return ServiceStatus(installed=True, running=False, last_exit_code=2)

    assert service_state(Stopped) == "stopped (exit 2)"

    class Unreachable(Installed):
        def status(self) -> ServiceStatus:
            raise ServiceError("Failed to connect to bus")

    assert service_state(Unreachable) == "unknown"

    class NeverAsked(MockServiceManager):
        def status(self) -> ServiceStatus:
            raise AssertionError("no definition on disk: status answers without asking systemctl")

    assert service_state(NeverAsked) == "not installed"


def test_the_status_script_prints_a_table(tmp_path):
    write_status(tmp_path)
    env = {"DATABRICKS_LABS_STATE_DIR": str(tmp_path / "state")}
    out, err = io.StringIO(), io.StringIO()
    assert status_command([], environ=env, manager_factory=MockServiceManager, out=out, err=err) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == [
        "TARGET",
        "HOST",
        "USER",
        "EXPIRES",
        "IN",
        "LAST",
        "ROTATION",
        "LAST",
        "ERROR",
        "SERVICE",
    ]
    assert lines[1].startswith("reports ") and lines[2].startswith("sales ")
    assert "run `databricks auth login --profile prod`" in lines[1]
    out = io.StringIO()
    status_command(["--json"], environ=env, manager_factory=MockServiceManager, out=out, err=err)
    assert [r["target"] for r in json.loads(out.getvalue())] == ["reports", "sales"]
    assert render_table([]).split() == [
        "TARGET",
        "HOST",
        "USER",
        "EXPIRES",
        "IN",
        "LAST",
        "ROTATION",
        "LAST",
        "ERROR",
        "SERVICE",
    ]
    assert collect_status(environ={"DATABRICKS_LABS_STATE_DIR": str(tmp_path / "none")}, err=io.StringIO()) == []


# ---- logs --------------------------------------------------------------------------------------------------


def test_logs_prints_the_last_lines_of_the_configured_log(tmp_path):
    log = tmp_path / "rotator.log"
    log.write_text("".join(f"2026-01-01 00:00:{i:02d} - INFO - line {i}\n" for i in range(60)))
    save_config(
        RotatorConfig(targets=[TargetConfig(instance="x")], log_file=str(log)), tmp_path / "config" / "config.yml"
    )
    assert configured_log_file(tmp_path / "config" / "config.yml") == log
    result = entrypoint(tmp_path, payload("logs", lines="3"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"2026-01-01 00:00:{i} - INFO - line {i}" for i in (57, 58, 59)]


def test_logs_without_a_log_is_a_hint(tmp_path):
    result = entrypoint(tmp_path, payload("logs", lines=""))
    assert result.returncode == 0
    assert result.stdout == ""
    assert "No log yet" in result.stderr and str(tmp_path / ".databricks_oauth_rotator.log") in result.stderr


def test_a_broken_config_falls_back_to_the_default_log(tmp_path):
    (tmp_path / "config.yml").write_text("log_file: [unclosed\n")
    assert (
        configured_log_file(tmp_path / "config.yml", {"HOME": str(tmp_path)})
        == tmp_path / ".databricks_oauth_rotator.log"
    )


# ---- the service console scripts ---------------------------------------------------------------------------


def test_install_script_writes_the_config_from_flags_and_installs_idempotently(tmp_path):
    env = {"HOME": str(tmp_path), "DATABRICKS_LABS_CONFIG_DIR": str(tmp_path / "config")}
    manager = MockServiceManager()
    argv = ["--profile", "prod", "--instance", "sales", "--pgpass-file", str(tmp_path / ".pgpass")]
    out = io.StringIO()
    assert install_command(argv, environ=env, manager_factory=lambda: manager, out=out) == 0
    config = load_config(tmp_path / "config" / "config.yml")
    assert config.profile == "prod" and config.service is True
    assert config.targets == [TargetConfig(instance="sales")]
    assert manager.spec is not None and manager.spec.profile == "prod"
    assert manager.spec.config_path == tmp_path / "config" / "config.yml"
    assert install_command(argv, environ=env, manager_factory=lambda: manager, out=out) == 0
    assert manager.calls == ["install", "install"]
    assert "Updated" in out.getvalue()
    assert load_config(tmp_path / "config" / "config.yml") == config


def test_install_script_without_a_target_is_bad_usage(tmp_path):
    env = {"HOME": str(tmp_path), "DATABRICKS_LABS_CONFIG_DIR": str(tmp_path / "config")}
    with pytest.raises(ConfigError, match="no target"):
        install_command([], environ=env, manager_factory=MockServiceManager, out=io.StringIO())


def test_restart_script_restarts_only_an_installed_service(tmp_path):
    with pytest.raises(ServiceError, match="not installed"):
        restart_command([], manager_factory=MockServiceManager, out=io.StringIO())
    manager = MockServiceManager()
    manager.install(_spec(tmp_path))
    out = io.StringIO()
    assert restart_command([], manager_factory=lambda: manager, out=out) == 0
    assert manager.calls[-1] == "restart" and "Restarted" in out.getvalue()


def test_uninstall_script_purges_only_our_pgpass_lines(tmp_path):
    theirs = b"# my databases\nlocalhost:5432:*:me:mine\n"
    ours = pgpass.PgpassEntry("sales.database.example.com", "5432", "*", "someone@example.com", "tok:en")
    (tmp_path / ".pgpass").write_bytes(pgpass.merge(theirs, [ours]))
    (tmp_path / ".pgpass").chmod(0o600)

    def change(status: Status) -> None:
        status.pgpass_file = str(tmp_path / ".pgpass")
        status.targets["sales"] = TargetState(name="sales", keys=[list(ours.key)])

    StateStore(tmp_path / "state" / "status.json").update(change)
    manager = MockServiceManager()
    manager.install(_spec(tmp_path))
    env = {"DATABRICKS_LABS_STATE_DIR": str(tmp_path / "state")}
    out = io.StringIO()
    assert uninstall_command(["--purge"], environ=env, manager_factory=lambda: manager, out=out) == 0
    assert manager.spec is None
    assert (tmp_path / ".pgpass").read_bytes() == theirs
    assert "Removed 1 line(s)" in out.getvalue()
    assert not (tmp_path / "state" / "status.json").exists()


def test_uninstall_script_keeps_the_lines_unless_asked(tmp_path):
    out = io.StringIO()
    env = {"DATABRICKS_LABS_STATE_DIR": str(tmp_path / "state")}
    assert uninstall_command([], environ=env, manager_factory=MockServiceManager, out=out) == 0
    assert "not installed" in out.getvalue() and "`--purge` removes them" in out.getvalue()


def _spec(home: Path):
    from databricks.labs.oauth_rotator.service import ServiceSpec

    return ServiceSpec.create(home / "config.yml", profile="prod", home=home, cli_path="", source_environ={})
