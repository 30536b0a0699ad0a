"""The one list of what is secret: names, value shapes, the CLI's login variables, and redaction."""

from __future__ import annotations

import pytest

from databricks.labs.oauth_rotator.secrets import (
    is_login_variable,
    is_secret_name,
    looks_secret,
    redact,
    without_secrets,
)

JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzb21lb25lIn0.c2lnbmF0dXJl"
PAT = "dapi" + "0123456789abcdef" * 2


@pytest.mark.parametrize("name", ["PGPASSWORD", "DATABRICKS_TOKEN", "databricks_client_secret", "MY_API_KEY"])
def test_names_that_hold_a_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "PATH",
        "HOME",
        "DATABRICKS_CONFIG_PROFILE",
        "PGHOST",
        "DATABRICKS_OIDC_TOKEN_FILEPATH",  # where the workload identity's token is, not the token
        "DATABRICKS_TOKEN_AUDIENCE",
        "DATABRICKS_OIDC_TOKEN_ENV",
    ],
)
def test_names_that_do_not(name: str) -> None:
    assert not is_secret_name(name)


def test_tokens_are_recognised_by_their_shape() -> None:
    assert looks_secret(f"password is {JWT}")
    assert looks_secret(PAT)
    assert not looks_secret("eyJ-but-not-a-jwt")
    assert not looks_secret("dapi-short")


def test_the_cli_login_variables_and_every_arm_variable_are_logins() -> None:
    assert is_login_variable("DATABRICKS_HOST")
    assert is_login_variable("ARM_TENANT_ID")
    assert not is_login_variable("DATABRICKS_CONFIG_PROFILE")  # names a login, holds none


def test_a_childs_environment_keeps_neither_secrets_nor_logins() -> None:
    environ = {"PATH": "/bin", "PGPASSWORD": "x", "DATABRICKS_HOST": "https://h", "ARM_CLIENT_ID": "a", "LANG": "C"}
    assert without_secrets(environ) == {"PATH": "/bin", "LANG": "C"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"got {JWT} back", "got <redacted> back"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer <redacted>"),
        ("password=hunter2&user=me", "password=<redacted>&user=me"),
        ('{"secret": "s3cr3t"}', '{"secret": "<redacted>"}'),
        (f"token {PAT}", f"token {'<redacted>'}"),
        ("nothing to hide", "nothing to hide"),
    ],
)
def test_redact_replaces_every_kind_of_secret(text: str, expected: str) -> None:
    assert redact(text) == expected
