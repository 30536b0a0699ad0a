"""Beyond .pgpass: pg_service.conf entries, the post-rotation hook and needs-a-person notifications, for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator.app.rotate import build_cycle
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.files.config_store import save_config
from databricks.labs.oauth_rotator.rotation.notify import Notifier
from databricks.labs.oauth_rotator.rotation.schedule import SystemClock
from databricks.labs.oauth_rotator.rotation.state import StateStore
from tests.integration.conftest import USER, UserHome
from tests.rigs.workspace import DEMO_INSTANCE


def psql_service(home: UserHome, service: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in home.env.items() if not k.startswith("PG")} | {
        "PGSERVICEFILE": str(home.root / ".pg_service.conf"),
        "PGPASSFILE": str(home.pgpass),
    }
    return subprocess.run(
        ["psql", "-w", "-X", "-A", "-t", "-c", "select current_user", f"service={service}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_psql_service_logs_in_for_the_read_write_and_the_read_only_host(home: UserHome):
    read_only_host = home.postgres.hosts[2]
    home.workspace.add_instance(DEMO_INSTANCE, read_write_dns="127.0.0.1", read_only_dns=read_only_host)
    (home.root / ".pg_service.conf").write_text("# mine\n[local]\nhost=localhost\n")
    config = save_config(
        RotatorConfig(
            targets=[
                TargetConfig(
                    name="sales", instance=DEMO_INSTANCE, port=home.postgres.port, database="postgres", read_only=True
                )
            ],
            pgpass_file=str(home.pgpass),
            pg_service=True,
        ),
        home.root / "config.yml",
    )
    result = home.rotator("--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    services = (home.root / ".pg_service.conf").read_text()
    assert services.startswith("# mine\n[local]\nhost=localhost\n")
    assert "[sales]" in services and "[sales-ro]" in services and "sslmode=require" in services
    assert not [s for s in home.workspace.issued_secrets() if s in services], "never a password in pg_service.conf"
    for service in ("sales", "sales-ro"):
        login = psql_service(home, service)
        assert login.returncode == 0, login.stderr
        assert login.stdout.strip() == USER


def test_the_hook_runs_once_per_changed_write_and_never_sees_the_token(home: UserHome):
    record = home.root / "hook.jsonl"
    script = home.root / "hook.py"
    script.write_text(
        "import json, os, sys\n"
        f"with open({str(record)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'argv': sys.argv, 'env': dict(os.environ)}) + '\\n')\n"
    )
    flags = ["--instance", DEMO_INSTANCE, *home.target_flags(), "--exec-after", f"{sys.executable} {script} reload"]
    assert home.rotator("--once", *flags).returncode == 0
    assert home.rotator("--once", *flags).returncode == 0
    runs = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(runs) == 2
    assert runs[0]["argv"][1:] == ["reload"]
    assert runs[0]["env"]["OAUTH_ROTATOR_TARGETS"] == DEMO_INSTANCE
    assert "DATABRICKS_CLIENT_SECRET" not in runs[0]["env"]
    assert not [s for s in home.workspace.issued_secrets() if s in record.read_text()]
    assert "Post-rotation hook" in home.log_file.read_text()


def test_no_hook_on_a_cycle_that_rotated_nothing_and_a_hanging_hook_is_stopped(home: UserHome):
    marker = home.root / "ran"
    config = RotatorConfig(
        targets=[TargetConfig(instance=DEMO_INSTANCE, port=home.postgres.port)],
        pgpass_file=str(home.pgpass),
        exec_after=f"{sys.executable} -c \"import time; open({str(marker)!r}, 'a').write('x'); time.sleep(30)\"",
        exec_after_timeout=1,
    )
    cycle = build_cycle(
        config,
        workspace_client=WorkspaceClient(config=home.workspace.sdk_config()),
        state=StateStore(home.root / "status.json"),
    )
    assert cycle.run().rotated == [DEMO_INSTANCE]
    assert cycle.run().rotated == []
    assert marker.read_text() == "x", "the hook ran once: after the write, not after the quiet cycle"
    assert home.login().returncode == 0


class RecordingRunner:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv, **_):
        self.calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, "", "")


def test_a_revoked_secret_notifies_once_and_again_after_it_recurs(home: UserHome, tmp_path: Path):
    runner = RecordingRunner()
    notifier = Notifier(platform="linux", which=lambda name: f"/usr/bin/{name}", runner=runner)
    config = RotatorConfig(
        targets=[TargetConfig(instance=DEMO_INSTANCE, port=home.postgres.port)], pgpass_file=str(home.pgpass)
    )

    def cycle():
        return build_cycle(
            config,
            workspace_client=lambda: WorkspaceClient(config=home.workspace.sdk_config(retry_timeout_seconds=5)),
            state=StateStore(tmp_path / "status.json"),
            clock=SystemClock(),
            notifier=notifier,
        ).run(force=True)

    home.workspace.revoke_client(home.workspace.client_id)
    for _ in range(3):
        assert cycle().exit_code == 1
    assert len(runner.calls) == 1
    assert runner.calls[0][0] == "/usr/bin/notify-send" and "a person must act" in runner.calls[0][-1]
    status = StateStore(tmp_path / "status.json").load().targets[DEMO_INSTANCE]
    assert status.needs_person and status.fix and "client" in status.fix
    home.workspace.add_client(home.workspace.client_id, home.workspace.client_secret, user_name=USER)
    assert cycle().exit_code == 0
    home.workspace.revoke_client(home.workspace.client_id)
    cycle()
    assert len(runner.calls) == 2
    assert not os.environ.get("PGPASSWORD")
