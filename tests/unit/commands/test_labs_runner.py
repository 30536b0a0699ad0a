"""Running a record's command as the Databricks CLI asks: flags checked against the record, typed for the handler,
and every failure one escaped, redacted line and a non-zero exit (blueprint's App alone would exit 0)."""

from __future__ import annotations

import pytest

from databricks.labs.oauth_rotator.commands import labs_runner, record
from databricks.labs.oauth_rotator.errors import ConfigError, CredentialError, NeedsPersonError

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
"""A JWT's shape (every Lakebase credential has it); not a real token."""


def test_flags_are_checked_against_the_record_and_defaults_filled_in():
    env = record.command_named("env")
    values = labs_runner.check_flags(env, record.LABS, {"with-password": "TRUE", "target": " "})
    assert values == {"target": "", "database": "", "with-password": "true"}
    assert labs_runner.typed_arguments(env, values) == {"with_password": True}
    logs = record.command_named("logs")
    assert labs_runner.typed_arguments(logs, labs_runner.check_flags(logs, record.LABS, {})) == {"lines": 50}


@pytest.mark.parametrize(
    ("name", "flags", "message"),
    [
        ("rotate", {"once": "true"}, "rotate: unknown flag --once"),  # a console flag of another command
        ("password", {"config": "/x"}, "password: unknown flag --config"),  # offered on the console only
        ("uninstall", {"purge": "yes"}, "--purge expects true or false"),
        ("logs", {"lines": "-1"}, "--lines expects a number"),
    ],
)
def test_a_flag_the_entry_point_does_not_offer_or_a_bad_value_is_bad_usage(name, flags, message):
    with pytest.raises(labs_runner.PayloadError, match=message) as raised:
        labs_runner.check_flags(record.command_named(name), record.LABS, flags)
    assert raised.value.exit_code == 2


def test_a_command_not_offered_by_the_entry_point_is_unknown():
    assert labs_runner.offered("run", record.LABS).name == "run"
    with pytest.raises(labs_runner.PayloadError, match="unknown command 'run'"):
        labs_runner.offered("run", record.SANDBOX)


def test_a_secret_and_an_escape_sequence_in_an_error_reach_stderr_neither_raw_nor_unredacted(capsys):
    def leaky() -> int:
        raise CredentialError(f"the workspace said \x1b[2J\x1b]8;;http://x\x07 Bearer {TOKEN}\r\nnext line")

    with pytest.raises(SystemExit) as exited:
        labs_runner.exits(leaky, "rotate")()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert TOKEN not in err and "\x1b" not in err and "\x07" not in err
    shown = "the workspace said \\x1b[2J\\x1b]8;;http://x\\x07 Bearer <redacted> next line"
    assert err == f"oauth-rotator rotate: error: {shown}\n"


def test_a_command_error_is_one_line_and_its_exit_code(capsys):
    def failing() -> int:
        raise ConfigError("no such config file", fix="run `databricks labs oauth-rotator configure`")

    with pytest.raises(SystemExit) as exited:
        labs_runner.exits(failing, "rotate")()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == "oauth-rotator rotate: error: no such config file; run `databricks labs oauth-rotator configure`\n"


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (NeedsPersonError("login expired"), 1),
        (ValueError("bug"), 1),
        (KeyboardInterrupt(), 130),
        (EOFError(), 1),
        (1, 1),
    ],
)
def test_no_failure_becomes_exit_0(outcome, code, capsys):
    def command() -> int:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    with pytest.raises(SystemExit) as exited:
        labs_runner.exits(command, "rotate")()
    assert exited.value.code == code
    assert "Traceback" not in capsys.readouterr().err


def test_success_returns_normally():
    assert labs_runner.exits(lambda: 0, "status")() is None
