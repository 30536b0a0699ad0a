"""Faults no retry can fix: a revoked client secret, an expired CLI login, a deleted instance.

The daemon must say so once, clearly, in the log and in `status` (with the fix to apply), keep the `.pgpass` line
it has (never write anything in its place), keep running, and retry slowly rather than hammer the workspace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import without
from tests.reliability.conftest import Figures, Home
from tests.reliability.rig import load_status, log_lines, wait_for
from tests.rigs.workspace import DEMO_INSTANCE

pytestmark = pytest.mark.timeout(300)  # scenarios wait for real cycles on a shared, loaded machine
GROUP = "Auth faults needing a person"
WINDOW_SECONDS = 15
"""How long the daemon is watched after it reported the fault, counting its requests."""
CLI_ERROR = (
    "Error: A new access token could not be retrieved because the refresh token is invalid. If using the CLI, "
    "run the following command to reauthenticate: $ databricks auth login --profile {profile}"
)


def fake_databricks_cli(home: Home, token: str) -> Path:
    """A `databricks` CLI on PATH whose `auth token` prints `token` until `bin/expired` exists, then fails the way
    the real CLI does when the refresh token has expired. Every call is counted in `bin/calls`."""
    bin_dir = home.root / "bin"
    bin_dir.mkdir(exist_ok=True)
    cli = bin_dir / "databricks"
    cli.write_text(
        f"""#!{sys.executable}
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
with open(os.path.join(here, "calls"), "a") as calls:
    calls.write(" ".join(args) + "\\n")
if args[:1] == ["version"]:
    print(json.dumps({{"Version": "0.299.0", "Major": 0, "Minor": 299, "Patch": 0}}))
elif args[:2] == ["auth", "token"]:
    if os.path.exists(os.path.join(here, "expired")):
        profile = args[args.index("--profile") + 1] if "--profile" in args else "DEFAULT"
        print({CLI_ERROR!r}.format(profile=profile), file=sys.stderr)
        sys.exit(1)
    print(json.dumps({{"access_token": "{token}", "token_type": "Bearer", "expiry": "2099-01-01T00:00:00Z"}}))
else:
    sys.exit(1)
"""
    )
    cli.chmod(0o755)
    return bin_dir


def cli_token_calls(home: Home) -> int:
    calls = home.root / "bin" / "calls"
    return sum(1 for line in calls.read_text().splitlines() if line.startswith("auth token")) if calls.exists() else 0


def _u2m(home: Home) -> list[str]:
    token = "u2m-" + os.urandom(16).hex()
    home.workspace.add_pat(token)
    bin_dir = fake_databricks_cli(home, token)
    (home.root / ".databrickscfg").write_text(f"[u2m]\nhost = {home.workspace.host}\nauth_type = databricks-cli\n")
    env = without(home.env, ["DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"])
    home.env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"}
    return ["--profile", "u2m"]


@dataclass(frozen=True)
class AuthFault:
    scenario: str
    injected: str
    inject: Callable[[Home], None]
    fix: str
    """What the fix shown to the user must name."""
    doctor: str
    """What `doctor` must say."""
    setup: Callable[[Home], list[str]] = lambda home: []


FAULTS = [
    AuthFault(
        "auth/revoked-client-secret",
        "the service principal's OAuth secret is revoked (token endpoint: 401 `invalid_client`)",
        inject=lambda home: home.workspace.revoke_client(home.workspace.client_id),
        fix="client id and secret",
        doctor="FAIL",
    ),
    AuthFault(
        "auth/expired-cli-login",
        "`databricks auth token` exits 1: the U2M refresh token is invalid",
        inject=lambda home: (home.root / "bin" / "expired").touch(),
        fix="databricks auth login --profile u2m",
        doctor="databricks auth login --profile u2m",
        setup=_u2m,
    ),
    AuthFault(
        "auth/deleted-instance",
        "the Lakebase instance is deleted (404 on every call for it)",
        inject=lambda home: home.workspace.remove_instance(DEMO_INSTANCE),
        fix="still exists",
        doctor="FAIL",
    ),
]


def _requests(home: Home) -> int:
    return home.api_calls() + cli_token_calls(home)


def _labs_doctor(home: Home, args: list[str]) -> subprocess.CompletedProcess[str]:
    """`databricks labs oauth-rotator doctor` for the same setup, saved as the user's config."""
    profile = f"profile: {args[1]}\n" if args[:1] == ["--profile"] else ""
    config = home.root / "config" / "config.yml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(
        f"version: 1\n{profile}pgpass_file: {home.pgpass}\n"
        f"targets:\n  - instance: {DEMO_INSTANCE}\n    port: {home.postgres.port}\n"
    )
    config.chmod(0o600)
    return home.labs(json.dumps({"command": "doctor", "flags": {}, "output_type": ""}), timeout=90)


def _labs_status(home: Home) -> list[dict[str, str]]:
    result = home.labs(json.dumps({"command": "status", "flags": {}, "output_type": ""}))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


@pytest.mark.parametrize("fault", FAULTS, ids=[f.scenario.split("/")[1] for f in FAULTS])
def test_a_fault_only_a_person_can_fix_is_reported_once_and_not_hammered(home: Home, figures: Figures, fault):
    home.workspace.ttl_seconds = 12  # due 6 s after each rotation
    home.write_user_lines()
    args = fault.setup(home)
    daemon = home.daemon(*args, "--instance", DEMO_INSTANCE, *home.target_flags())
    with home.watch() as watch:
        home.wait_first_rotation()
        written = home.pgpass.read_bytes()
        fault.inject(home)
        injected_at = time.monotonic()
        noticed = wait_for(lambda: load_status(home).get("needs_person") is True, timeout=60)
        assert noticed is not None, f"status never said a person must act: {load_status(home)}"
        reported_after = time.monotonic() - injected_at
        requests_before = _requests(home)
        time.sleep(WINDOW_SECONDS)
        requests_in_window = _requests(home) - requests_before
        still_running = daemon.alive()
        unchanged = home.pgpass.read_bytes() == written
        writes = len(watch.writes)
    status = load_status(home)
    errors = [line for line in log_lines(home) if " - ERROR - " in line and "Rotation of" in line]
    notices = [line for line in log_lines(home) if "Notifying the user" in line]
    labs_rows = _labs_status(home)
    doctor = _labs_doctor(home, args)
    # The user checks by hand: an interactive run fails the same way and says what to do, once more.
    by_hand = home.rotator("--once", *args, "--instance", DEMO_INSTANCE, *home.target_flags())
    code = daemon.terminate()
    figures.record(
        fault.scenario,
        group=GROUP,
        injected=fault.injected,
        goal="the daemon reports it once (log, status and `labs status`, with the fix) and keeps running; no "
        f"request in the {WINDOW_SECONDS} s after the report; `.pgpass` untouched; `doctor` fails naming it; a "
        "run by hand says it again",
        measured=f"reported after {reported_after:.1f} s; the daemon logged {len(errors)} ERROR line(s) and "
        f"{len(notices)} notification(s); {requests_in_window} requests in the {WINDOW_SECONDS} s window; "
        f"daemon {'running' if still_running else 'DEAD'}; `.pgpass` {'unchanged' if unchanged else 'CHANGED'}; "
        f"fix: {status.get('fix')!r}; `doctor` exit {doctor.returncode}",
        reported_after_seconds=reported_after,
        error_lines=len(errors),
        notifications=len(notices),
        requests_in_window=requests_in_window,
        fix=status.get("fix"),
    )
    assert still_running and code == 0, daemon.stderr()[-2000:]
    assert unchanged and writes == 1 and watch.anomalies == [], watch.anomalies
    assert requests_in_window == 0, "the daemon kept asking while a person had to act"
    assert status["needs_person"] is True and fault.fix in (status.get("fix") or ""), status
    assert any(fault.fix in row.get("last_error", "") for row in labs_rows), labs_rows
    assert doctor.returncode == 1 and fault.doctor in doctor.stdout, doctor.stdout + doctor.stderr
    assert len(errors) == 1, errors
    assert len(notices) == 1, notices
    assert by_hand.returncode == 1 and "Traceback" not in by_hand.stderr
    assert fault.fix in by_hand.stderr, "a run by hand says why, even though the daemon already reported it"
