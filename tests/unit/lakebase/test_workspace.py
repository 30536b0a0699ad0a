"""The workspace client and login: a setup that can never work told apart (exit 2), who we are, which profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.errors import ConfigError, CredentialError, NeedsPersonError
from databricks.labs.oauth_rotator.lakebase.workspace import (
    auth_error,
    auth_type_in_use,
    configuration_problem,
    current_user_name,
    databrickscfg_profiles,
    login_profile,
    pin_profile,
)
from tests.rigs.workspace import FakeWorkspace


def databrickscfg(tmp_path: Path, text: str) -> dict[str, str]:
    (tmp_path / ".databrickscfg").write_text(text)
    return {"HOME": str(tmp_path)}


def test_a_profile_missing_from_databrickscfg_is_a_config_error_naming_the_fix(tmp_path: Path) -> None:
    environ = databrickscfg(tmp_path, "[prod]\nhost = https://h\n")
    assert configuration_problem(profile="prod", host=None, environ=environ) is None
    problem = configuration_problem(profile="dev", host=None, environ=environ)
    assert isinstance(problem, ConfigError)
    assert "databricks auth login --profile dev" in (problem.fix or "")


def test_without_a_profile_a_host_default_profile_or_environment_login_is_needed(tmp_path: Path) -> None:
    empty = databrickscfg(tmp_path, "")
    assert configuration_problem(profile=None, host=None, environ=empty) is not None
    assert configuration_problem(profile=None, host="https://h", environ=empty) is None
    assert configuration_problem(profile=None, host=None, environ={**empty, "DATABRICKS_HOST": "https://h"}) is None
    with_default = databrickscfg(tmp_path, "[DEFAULT]\nhost = https://h\n")
    assert configuration_problem(profile=None, host=None, environ=with_default) is None


def test_an_unparsable_databrickscfg_is_a_config_error(tmp_path: Path) -> None:
    problem = configuration_problem(profile="p", host=None, environ=databrickscfg(tmp_path, "not an ini\n"))
    assert isinstance(problem, ConfigError)
    assert "cannot be parsed" in str(problem)


@pytest.mark.parametrize(
    ("message", "kind", "needs_person"),
    [
        ("refresh token is invalid; run databricks auth login", NeedsPersonError, True),
        ("invalid_client: the secret was revoked", NeedsPersonError, True),
        ("Connection refused", CredentialError, False),
    ],
)
def test_auth_errors_say_what_to_run(message: str, kind: type, needs_person: bool) -> None:
    err = auth_error(ValueError(message + ". Config: host=https://h, please check https://docs"), "prod")
    assert type(err) is kind
    assert err.needs_person is needs_person
    assert "databricks auth login --profile prod" in (err.fix or "")
    assert "Config:" not in str(err)


def test_who_we_are_is_the_workspaces_user_name(fake_workspace: FakeWorkspace) -> None:
    assert current_user_name(WorkspaceClient(config=fake_workspace.sdk_config())) == fake_workspace.user_name


def test_a_workspace_that_fails_to_say_who_we_are_is_retried_later(fake_workspace: FakeWorkspace) -> None:
    fake_workspace.fail_next(10, status=500, path_prefix="/api/2.0/preview/scim/v2/Me")
    ws = WorkspaceClient(config=fake_workspace.sdk_config(retry_timeout_seconds=1))
    with pytest.raises(CredentialError) as failure:
        current_user_name(ws)
    assert failure.value.retryable


def test_a_pinned_profile_drops_the_login_the_cli_exported_and_keeps_the_rest() -> None:
    environ = {"DATABRICKS_HOST": "https://h", "DATABRICKS_TOKEN": "t", "ARM_TENANT_ID": "x", "PATH": "/bin"}
    assert sorted(pin_profile("prod", environ)) == ["ARM_TENANT_ID", "DATABRICKS_HOST", "DATABRICKS_TOKEN"]
    assert environ == {"PATH": "/bin"}


def test_without_a_profile_the_environment_is_the_login() -> None:
    environ = {"DATABRICKS_HOST": "h.cloud.databricks.com", "DATABRICKS_TOKEN": "t"}
    assert pin_profile(None, environ) == []
    assert environ["DATABRICKS_TOKEN"] == "t"
    assert environ["DATABRICKS_HOST"] == "https://h.cloud.databricks.com"


def test_the_login_the_cli_saved_at_install_is_the_profile_and_the_sandboxs_comes_first(tmp_path: Path) -> None:
    environ = {"DATABRICKS_LABS_CONFIG_DIR": str(tmp_path / "config")}
    assert login_profile(environ) is None
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "login.json").write_text(json.dumps({"workspace_profile": " prod "}))
    assert login_profile(environ) == "prod"
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "sandbox" / "login.json").write_text(json.dumps({"workspace_profile": "sandbox"}))
    assert login_profile({**environ, paths.LOGIN_DIR_VARIABLE: str(tmp_path / "sandbox")}) == "sandbox"


def test_the_profiles_offered_are_databrickscfgs_sections(tmp_path: Path) -> None:
    (tmp_path / "cfg").write_text("[DEFAULT]\nhost = https://d\n[prod]\nhost = https://p\n[dev]\nhost = https://x\n")
    assert set(databrickscfg_profiles({"DATABRICKS_CONFIG_FILE": str(tmp_path / "cfg")})) >= {"prod", "dev"}
    assert databrickscfg_profiles({"DATABRICKS_CONFIG_FILE": str(tmp_path / "missing")}) == []


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
