"""A rotator with no secret at all: workload identity federation through the real SDK (`file-oidc`), as in a pod
that mounts a projected service-account token (deploy/kubernetes/deployment-workload-identity.yaml)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.files import pgpass
from tests.integration.conftest import UserHome, without
from tests.rigs.workspace import DEMO_INSTANCE

APP_ID = "8d3c0a2e-0000-4000-8000-0000000000aa"
"""The service principal's application id: its Postgres role."""
ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"
SUBJECT = "system:serviceaccount:apps:my-app"
AUDIENCE = "databricks"


@pytest.fixture
def pod(home: UserHome) -> UserHome:
    """The pod's environment: the workspace, the principal's client id, the token file, and no secret."""
    home.workspace.federate(APP_ID, issuer=ISSUER, subject=SUBJECT, audience=AUDIENCE)
    token_file = home.root / "token"
    write_subject_token(home, token_file, expires_in=600)
    home.env = without(home.env, ["DATABRICKS_CLIENT_SECRET"])
    home.env.update(
        DATABRICKS_CLIENT_ID=APP_ID,
        DATABRICKS_AUTH_TYPE="file-oidc",
        DATABRICKS_OIDC_TOKEN_FILEPATH=str(token_file),
    )
    return home


def write_subject_token(home: UserHome, path: Path, *, expires_in: float, subject: str = SUBJECT) -> None:
    """What the kubelet does for a projected service-account token: a fresh JWT in the file."""
    path.write_text(
        home.workspace.subject_token(issuer=ISSUER, subject=subject, audience=AUDIENCE, expires_in=expires_in)
    )


def line_token(home: UserHome) -> str | None:
    return pgpass.lookup(home.pgpass.read_bytes(), "127.0.0.1", str(home.postgres.port), "postgres", APP_ID)


def test_a_rotation_with_only_a_token_file_logs_in_as_the_service_principal(pod: UserHome):
    assert not any("SECRET" in name for name in pod.env)
    result = pod.rotator("--once", "--instance", DEMO_INSTANCE, *pod.target_flags())
    assert result.returncode == 0, result.stderr
    assert pod.workspace.calls["token exchange"] >= 1, "the SDK exchanged the subject token"
    assert pod.login(user=APP_ID).returncode == 0
    status = json.loads(pod.status_file.read_text())["targets"][DEMO_INSTANCE]
    assert status["user"] == APP_ID
    assert pod.secrets_seen(result.stdout, result.stderr) == []


@pytest.mark.parametrize(
    ("what", "expires_in", "subject"),
    [("expired", -60, SUBJECT), ("for another service account", 600, "system:serviceaccount:apps:other")],
)
def test_a_subject_token_the_workspace_refuses_is_one_line_exit_1_and_the_old_line_kept(
    pod: UserHome, what: str, expires_in: float, subject: str
):
    pod.workspace.ttl_seconds = 4  # due again after 2 s (half its life)
    first = pod.rotator("--once", "--instance", DEMO_INSTANCE, *pod.target_flags())
    assert first.returncode == 0, first.stderr
    written = line_token(pod)
    assert written
    write_subject_token(pod, Path(pod.env["DATABRICKS_OIDC_TOKEN_FILEPATH"]), expires_in=expires_in, subject=subject)
    time.sleep(2.5)
    issued = len(pod.workspace.issued)
    result = pod.rotator("--once", "--instance", DEMO_INSTANCE, *pod.target_flags())
    assert result.returncode == 1, f"{what}: {result.stderr}"
    # One ERROR line says it all (the cycle also logs that it notified the user, at WARNING).
    lines = [line for line in result.stderr.splitlines() if " - ERROR - " in line]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "subject token" in lines[0] and "federation policy" in lines[0], lines[0]
    assert "secret" not in result.stderr.lower(), result.stderr
    assert len(pod.workspace.issued) == issued, "no credential without a login"
    assert line_token(pod) == written, "the old line is kept"
    assert pod.secrets_seen(result.stdout, result.stderr) == []


def test_a_missing_token_file_is_one_line_and_exit_1_or_2_with_nothing_written(pod: UserHome):
    Path(pod.env["DATABRICKS_OIDC_TOKEN_FILEPATH"]).unlink()
    result = pod.rotator("--once", "--instance", DEMO_INSTANCE, *pod.target_flags())
    assert result.returncode in {1, 2}, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not pod.pgpass.exists()


def test_a_profile_with_a_token_file_and_no_secret_rotates_as_the_service_does(pod: UserHome):
    """The background service runs with a profile name only: a ~/.databrickscfg profile of `file-oidc` does."""
    token_file = pod.env.pop("DATABRICKS_OIDC_TOKEN_FILEPATH")
    for name in ("DATABRICKS_CLIENT_ID", "DATABRICKS_AUTH_TYPE", "DATABRICKS_HOST"):
        pod.env.pop(name)
    (pod.root / ".databrickscfg").write_text(
        f"[pod]\nhost = {pod.workspace.host}\nclient_id = {APP_ID}\nauth_type = file-oidc\n"
        f"oidc_token_filepath = {token_file}\n"
    )
    result = pod.rotator("--once", "--profile", "pod", "--instance", DEMO_INSTANCE, *pod.target_flags())
    assert result.returncode == 0, result.stderr
    assert pod.login(user=APP_ID).returncode == 0
