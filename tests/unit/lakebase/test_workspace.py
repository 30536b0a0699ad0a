"""The workspace client's auth as a person sees it: which auth the SDK picked, and what a refused login says to
check (a federated login has no secret to check). The real SDK against the fake workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator.errors import NeedsPersonError
from databricks.labs.oauth_rotator.lakebase.workspace import auth_error, auth_type_in_use, current_user_name
from tests.rigs.workspace import FakeWorkspace

APP_ID = "8d3c0a2e-0000-4000-8000-0000000000bb"
ISSUER = "https://kubernetes.example/cluster"
SUBJECT = "system:serviceaccount:apps:my-app"


def federated_client(workspace: FakeWorkspace, token_file: Path, *, expires_in: float) -> WorkspaceClient:
    workspace.federate(APP_ID, issuer=ISSUER, subject=SUBJECT, audience="databricks")
    token_file.write_text(
        workspace.subject_token(issuer=ISSUER, subject=SUBJECT, audience="databricks", expires_in=expires_in)
    )
    config = workspace.sdk_config(
        auth_type="file-oidc", client_id=APP_ID, client_secret=None, oidc_token_filepath=str(token_file)
    )
    return WorkspaceClient(config=config)


def test_the_auth_type_the_sdk_picked(workspace: FakeWorkspace, tmp_path: Path):
    assert auth_type_in_use(WorkspaceClient(config=workspace.sdk_config())) == "oauth-m2m"
    ws = federated_client(workspace, tmp_path / "token", expires_in=600)
    assert auth_type_in_use(ws) == "file-oidc"
    assert current_user_name(ws) == APP_ID, "the token exchange logged in as the service principal"


def test_an_expired_subject_token_names_the_token_and_the_policy_not_a_secret(workspace: FakeWorkspace, tmp_path):
    ws = federated_client(workspace, tmp_path / "token", expires_in=-60)
    with pytest.raises(NeedsPersonError) as caught:
        current_user_name(ws)
    assert "subject token has expired" in str(caught.value)
    assert caught.value.fix is not None and "federation policy" in caught.value.fix
    assert "secret" not in f"{caught.value} {caught.value.fix}"


def test_a_refused_m2m_login_still_says_to_check_the_secret(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DATABRICKS_AUTH_TYPE", raising=False)
    error = auth_error(ValueError("invalid_client: Client authentication failed"), None)
    assert error.fix is not None and "client id and secret" in error.fix
    monkeypatch.setenv("DATABRICKS_AUTH_TYPE", "file-oidc")
    error = auth_error(ValueError("invalid_grant: the subject token has expired"), None)
    assert error.fix is not None and "DATABRICKS_OIDC_TOKEN_FILEPATH" in error.fix
