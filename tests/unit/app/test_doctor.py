"""`doctor` against the fake workspace (the real SDK), real files, a recording command runner and the mock service."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator.app.doctor import (
    FAIL,
    OK,
    WARN,
    Doctor,
    Finding,
    print_findings,
)
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.files.config_store import save_config
from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState
from databricks.labs.oauth_rotator.service import MockServiceManager, ServiceSpec
from tests.rigs.workspace import DEMO_ENDPOINT, DEMO_INSTANCE, FakeWorkspace
from tests.unit.service.conftest import RecordingRunner

USER = "someone@example.com"
NOW = 1_767_225_600.0


class Machine:
    """One user's machine: a saved config, a status file, a .pgpass, the OS tools and the service."""

    def __init__(self, root: Path, workspace: FakeWorkspace) -> None:
        self.root = root
        self.workspace = workspace
        self.config_path = root / "config" / "config.yml"
        self.pgpass = root / ".pgpass"
        self.state = StateStore(root / "state" / "status.json")
        self.environ: dict[str, str] = {"HOME": str(root), "USER": "someone"}
        self.runner = (
            RecordingRunner().on("psql", stdout="psql (PostgreSQL) 16.4\n").on("loginctl", stdout="Linger=yes\n")
        )
        self.manager = MockServiceManager(running=True)
        self.manager.install(
            ServiceSpec.create(self.config_path, profile="prod", home=root, cli_path="", source_environ={})
        )
        self.platform = "linux"
        self.sdk_overrides: dict[str, Any] = {}

    def configure(self, *targets: TargetConfig, profile: str | None = "prod") -> RotatorConfig:
        config = RotatorConfig(targets=list(targets), profile=profile, pgpass_file=str(self.pgpass))
        save_config(config, self.config_path)
        return config

    def rotated(self, name: str, host: str, *, expires_at: float = NOW + 2400, **fields: Any) -> pgpass.PgpassEntry:
        entry = pgpass.PgpassEntry(host, "5432", "*", USER, "token-" + name)
        raw = {"name": name, "user": USER, "hosts": [host], "keys": [list(entry.key)], "expires_at": expires_at}

        def change(status: Status) -> None:
            status.pgpass_file = str(self.pgpass)
            status.targets[name] = TargetState.from_dict({**raw, **fields})

        self.state.update(change)
        return entry

    def write_pgpass(self, data: bytes, mode: int = 0o600) -> None:
        self.pgpass.write_bytes(data)
        self.pgpass.chmod(mode)

    def doctor(self, *, deadline: float = 20.0) -> list[Finding]:
        def client(_config: RotatorConfig) -> WorkspaceClient:
            return WorkspaceClient(config=self.workspace.sdk_config(**self.sdk_overrides))

        return Doctor(
            self.config_path,
            workspace_client_factory=client,
            manager_factory=lambda: self.manager,
            state=self.state,
            environ=self.environ,
            runner=self.runner,
            platform=self.platform,
            now=lambda: NOW,
            deadline=deadline,
        ).run()


@pytest.fixture
def machine(tmp_path: Path, fake_workspace: FakeWorkspace) -> Machine:
    return Machine(tmp_path, fake_workspace)


def levels(findings: list[Finding]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for finding in findings:
        found.setdefault(finding.check, []).append(finding.level)
    return found


def only(findings: list[Finding], check: str, level: str) -> Finding:
    matching = [f for f in findings if f.check == check and f.level == level]
    assert len(matching) == 1, findings
    return matching[0]


def healthy(machine: Machine) -> None:
    machine.configure(TargetConfig(instance=DEMO_INSTANCE), TargetConfig(endpoint=DEMO_ENDPOINT))
    a = machine.rotated(DEMO_INSTANCE, "127.0.0.1")
    b = machine.rotated(DEMO_ENDPOINT, "127.0.0.2")
    machine.write_pgpass(pgpass.merge(b"localhost:5432:*:me:mine\n", [a, b]))


def test_a_healthy_machine_is_all_ok(machine):
    healthy(machine)
    findings = machine.doctor()
    assert {f.level for f in findings} == {OK}, [f.render() for f in findings]
    assert only(findings, "login", OK).message.startswith(f"authenticated as {USER}")
    assert only(findings, "login", OK).message.endswith("(auth type oauth-m2m)"), "which auth the SDK picked"
    assert f"instance {DEMO_INSTANCE} is AVAILABLE" in only(findings, f"target {DEMO_INSTANCE}", OK).message
    out = io.StringIO()
    assert print_findings(findings, out) == 0
    assert out.getvalue().splitlines()[-1] == f"0 failed, 0 warning(s), {len(findings)} ok"


def test_no_config_fails_and_says_to_configure(machine):
    findings = machine.doctor()
    config = only(findings, "config", FAIL)
    assert config.fix == "run `databricks labs oauth-rotator configure`"
    assert "login" not in levels(findings)
    assert print_findings(findings, io.StringIO()) == 1


def test_a_login_that_does_not_work_fails_with_the_fix(machine):
    healthy(machine)
    machine.workspace.revoke_client(machine.workspace.client_id)
    login = only(machine.doctor(), "login", FAIL)
    assert login.fix and "databricks auth login" in login.fix


def test_a_hanging_workspace_fails_within_the_deadline(machine):
    healthy(machine)
    machine.workspace.delay_seconds = 5
    machine.workspace.delay_path_prefix = "/api/2.0/preview/scim"
    assert "did not finish within 1 s" in only(machine.doctor(deadline=1), "login", FAIL).message


def test_the_targets_are_checked_at_once_within_the_one_deadline(machine):
    machine.workspace.add_instance("first")
    machine.workspace.add_instance("second")
    machine.configure(TargetConfig(instance="first"), TargetConfig(instance="second"))
    machine.workspace.hang_next(100, path_prefix="/api/2.0/database/instances/")
    started = time.monotonic()
    findings = machine.doctor(deadline=2)
    assert time.monotonic() - started < 4  # one after the other, or a deadline each, would take 4 s at least
    assert only(findings, "login", OK)
    for name in ("first", "second"):
        assert f"target {name} did not finish within" in only(findings, f"target {name}", FAIL).message


def test_a_network_failure_on_a_target_is_a_finding(machine):
    machine.configure(TargetConfig(instance=DEMO_INSTANCE))
    machine.sdk_overrides = {"retry_timeout_seconds": 1}
    machine.workspace.reset_next(100, path_prefix="/api/2.0/database/instances/")
    target = only(machine.doctor(), f"target {DEMO_INSTANCE}", FAIL)
    assert target.message.startswith("TimeoutError: "), target


def test_a_target_that_is_gone_or_stopped_is_reported(machine):
    machine.workspace.add_instance("paused", state="STOPPED")
    machine.configure(TargetConfig(instance="gone"), TargetConfig(instance="paused"))
    findings = machine.doctor()
    gone = only(findings, "target gone", FAIL)
    assert (
        gone.message.startswith("instance gone: ")
        and "does not exist" in gone.message
        and gone.fix
        and "check the target name" in gone.fix
    )
    assert "is STOPPED" in only(findings, "target paused", WARN).message


def test_a_bare_host_is_resolved_or_flagged(machine):
    machine.configure(TargetConfig(host="127.0.0.2"), TargetConfig(host="elsewhere.example.com"))
    findings = machine.doctor()
    assert f"served by endpoint {DEMO_ENDPOINT}" in only(findings, "target 127.0.0.2", OK).message
    flagged = only(findings, "target elsewhere.example.com", WARN)
    assert "workspace token" in flagged.message and flagged.fix and "instance" in flagged.fix


def test_a_pgpass_others_can_read_fails(machine):
    healthy(machine)
    machine.pgpass.chmod(0o644)
    failed = only(machine.doctor(), ".pgpass", FAIL)
    assert "0644" in failed.message and failed.fix == f"chmod 600 {machine.pgpass}"


def test_a_missing_pgpass_is_a_warning(machine):
    machine.configure(TargetConfig(instance=DEMO_INSTANCE))
    assert "does not exist yet" in only(machine.doctor(), ".pgpass", WARN).message


def test_a_line_that_shadows_ours_is_named(machine):
    machine.configure(TargetConfig(instance=DEMO_INSTANCE))
    ours = machine.rotated(DEMO_INSTANCE, "127.0.0.1")
    machine.write_pgpass(b"# mine\n*:*:*:*:old-password\n" + pgpass.format_entry(ours) + b"\n")
    shadow = only(machine.doctor(), "shadowing", WARN)
    assert "line 2 matches first" in shadow.message and shadow.fix and "delete line 2" in shadow.fix


def test_a_shadowed_line_is_reported_once_as_shadowed_not_also_as_missing(machine):
    machine.configure(TargetConfig(instance=DEMO_INSTANCE))
    ours = machine.rotated(DEMO_INSTANCE, "127.0.0.1", fingerprint=token_fingerprint(f"token-{DEMO_INSTANCE}"))
    machine.write_pgpass(b"# mine\n127.0.0.1:5432:*:*:my-own-password\n" + pgpass.format_entry(ours) + b"\n")
    findings = machine.doctor()
    shadow = only(findings, "shadowing", WARN)
    assert "line 2 matches first" in shadow.message
    about_ours = [f for f in findings if f.check == f"credential {DEMO_INSTANCE}"]
    assert all(f.level == OK for f in about_ours), [f.render() for f in about_ours]


def test_a_target_with_one_line_shadowed_and_one_deleted_gets_one_finding_for_each(machine):
    machine.configure(TargetConfig(instance=DEMO_INSTANCE, extra_hosts=["ro.example.com"]))
    token = f"token-{DEMO_INSTANCE}"
    ours = pgpass.PgpassEntry("127.0.0.1", "5432", "*", USER, token)
    gone = pgpass.PgpassEntry("ro.example.com", "5432", "*", USER, token)
    machine.rotated(
        DEMO_INSTANCE,
        "127.0.0.1",
        keys=[list(ours.key), list(gone.key)],
        fingerprint=token_fingerprint(token),
    )
    machine.write_pgpass(b"*:*:*:*:my-own-password\n" + pgpass.format_entry(ours) + b"\n")
    findings = machine.doctor()
    assert "line 1 matches first for 127.0.0.1" in only(findings, "shadowing", WARN).message
    assert "missing" in only(findings, f"credential {DEMO_INSTANCE}", WARN).message


def test_a_deleted_line_is_reported(machine):
    machine.configure(TargetConfig(instance=DEMO_INSTANCE))
    machine.rotated(DEMO_INSTANCE, "127.0.0.1", fingerprint="0123456789abcdef")
    machine.write_pgpass(b"localhost:5432:*:me:mine\n")
    assert "missing" in only(machine.doctor(), f"credential {DEMO_INSTANCE}", WARN).message


def test_an_expired_credential_and_a_login_to_fix_fail(machine):
    machine.configure(TargetConfig(instance=DEMO_INSTANCE), TargetConfig(endpoint=DEMO_ENDPOINT))
    a = machine.rotated(DEMO_INSTANCE, "127.0.0.1", expires_at=NOW - 300)
    b = machine.rotated(
        DEMO_ENDPOINT, "127.0.0.2", last_error="login expired", needs_person=True, fix="run `databricks auth login`"
    )
    machine.write_pgpass(pgpass.merge(b"", [a, b]))
    findings = machine.doctor()
    assert "expired 5 min ago" in only(findings, f"credential {DEMO_INSTANCE}", FAIL).message
    assert only(findings, f"credential {DEMO_ENDPOINT}", FAIL).fix == "run `databricks auth login`"


def test_pgpassword_and_a_different_pgpassfile_are_warnings(machine):
    healthy(machine)
    machine.environ.update(PGPASSWORD="x", PGPASSFILE=str(machine.root / "other"))
    findings = machine.doctor()
    assert only(findings, "PGPASSWORD", WARN).fix == "unset PGPASSWORD"
    assert str(machine.pgpass) in only(findings, "PGPASSFILE", WARN).message


def test_an_old_libpq_fails_and_a_missing_psql_warns(machine):
    healthy(machine)
    machine.runner.on("psql", stdout="psql (PostgreSQL) 12.3\n")
    assert "320 bytes" in only(machine.doctor(), "libpq", FAIL).message
    machine.runner.on("psql", returncode=127, stderr="not found")
    assert only(machine.doctor(), "libpq", WARN)


def test_a_service_that_is_not_installed_or_not_running(machine):
    healthy(machine)
    machine.manager.uninstall()
    assert only(machine.doctor(), "service", WARN).fix == "run `databricks labs oauth-rotator install`"
    machine.manager.install(ServiceSpec.create(machine.config_path, profile="prod", home=machine.root, cli_path=""))
    machine.manager.running = False  # it exited
    assert "not running" in only(machine.doctor(), "service", FAIL).message


def test_linger_off_is_advised_on_linux_only(machine):
    healthy(machine)
    machine.runner.on("loginctl", stdout="Linger=no\n")
    assert only(machine.doctor(), "linger", WARN).fix == "on a headless host, run `loginctl enable-linger someone`"
    machine.platform = "darwin"
    assert "linger" not in levels(machine.doctor())
    assert ["loginctl", "show-user", "someone", "--property=Linger"] in machine.runner.calls


def test_a_service_without_a_profile_is_a_warning(machine):
    healthy(machine)
    machine.configure(TargetConfig(instance=DEMO_INSTANCE), profile=None)
    assert "DEFAULT profile" in only(machine.doctor(), "service", WARN).message


# ---- permissions: the StrictModes rule (issue 19) -----------------------------------------------------------------


def test_permissions_are_ok_on_a_healthy_machine(machine):
    healthy(machine)
    assert "only you" in only(machine.doctor(), "permissions", OK).message


def test_a_config_folder_others_can_write_fails_with_its_fix(machine):
    healthy(machine)
    machine.config_path.parent.chmod(0o777)
    findings = machine.doctor()
    permissions = only(findings, "permissions", FAIL)
    assert permissions.message.startswith(f"config: {machine.config_path.parent} is writable by its group and others")
    assert permissions.fix is not None and f"chmod go-w {machine.config_path.parent}" in permissions.fix
    assert "DATABRICKS_OAUTH_ROTATOR_ALLOW_SHARED_DIR=1" in permissions.fix
    assert only(findings, "config", FAIL)  # and the config is not read


def test_an_unsafe_status_folder_and_a_group_writable_config_are_each_reported(machine):
    healthy(machine)
    machine.config_path.chmod(0o664)
    machine.state.path.parent.chmod(0o775)
    failures = [f for f in machine.doctor() if f.check == "permissions"]
    assert [f.level for f in failures] == [FAIL, FAIL], failures
    assert f"{machine.config_path} is writable by its group" in failures[0].message
    assert failures[0].fix == f"chmod go-w {machine.config_path}"
    assert failures[1].message.startswith(f"status: {machine.state.path.parent} is writable by its group")


def test_a_pgpass_symlink_of_another_user_is_reported(machine):
    from tests.rigs.users import sticky_directory, throwaway_user

    healthy(machine)
    with throwaway_user() as attacker, sticky_directory() as shared:
        link = shared / "pgpass"
        assert attacker.run("ln", "-s", str(machine.pgpass), str(link)).returncode == 0
        config = RotatorConfig(targets=[TargetConfig(instance=DEMO_INSTANCE)], profile="prod", pgpass_file=str(link))
        save_config(config, machine.config_path)
        finding = next(f for f in machine.doctor() if f.check == "permissions" and f.level == FAIL)
    assert finding.message.startswith(".pgpass: in the shared directory") and f"uid {attacker.uid}" in finding.message


def test_a_pooled_target_is_warned_about_before_its_lines_fail(machine: Machine):
    machine.configure(TargetConfig(name="sales", endpoint=DEMO_ENDPOINT, pooled=True))
    warning = only(machine.doctor(), "pooled sales", WARN)
    assert "Connection pooling requires native Postgres password authentication" in warning.message
