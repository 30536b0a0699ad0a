"""The error kinds: which exit code ends a command, whether to retry, whether a person must act, and the fix."""

from __future__ import annotations

import pytest

from databricks.labs.oauth_rotator.errors import (
    ConfigError,
    CredentialError,
    FileWriteError,
    LockTimeoutError,
    NeedsPersonError,
    PgpassFormatError,
    RotatorError,
)


@pytest.mark.parametrize(
    ("kind", "exit_code", "retryable", "needs_person"),
    [
        (ConfigError, 2, False, True),
        (PgpassFormatError, 2, False, True),
        (FileWriteError, 1, True, True),
        (LockTimeoutError, 1, True, False),
        (CredentialError, 1, True, False),
        (NeedsPersonError, 1, False, True),
    ],
)
def test_each_kind_says_how_it_ends_a_command_and_who_acts(kind, exit_code, retryable, needs_person) -> None:
    err = kind("something went wrong")
    assert (err.exit_code, err.retryable, err.needs_person) == (exit_code, retryable, needs_person)
    assert isinstance(err, RotatorError)


def test_the_fix_follows_the_message() -> None:
    assert str(ConfigError("profile prod is missing", fix="run `databricks auth login`")) == (
        "profile prod is missing; run `databricks auth login`"
    )
    assert str(CredentialError("HTTP 503")) == "HTTP 503"
    assert CredentialError("HTTP 503").fix is None


def test_errors_refine_the_builtin_kinds_callers_already_catch() -> None:
    with pytest.raises(ValueError, match="bad flag"):
        raise ConfigError("bad flag")
    with pytest.raises(OSError, match="disk full"):
        raise FileWriteError("disk full")
    with pytest.raises(CredentialError):
        raise NeedsPersonError("the login expired")
