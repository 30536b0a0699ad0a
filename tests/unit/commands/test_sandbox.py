"""The sandbox's entry point: `run(command, **flags)` as databrickslabs/sandbox's router calls it, in-process.

`run` moves `DATABRICKS_LABS_*_DIR` to oauth-rotator's folders in `os.environ`; every test sets those variables
through monkeypatch first, so they are put back afterwards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.commands import record, sandbox
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState


@pytest.fixture
def sandbox_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The environment `databricks labs sandbox ...` gives the router: the sandbox's labs folders."""
    folder = tmp_path / ".databricks" / "labs" / "sandbox"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DATABRICKS_LABS_CONFIG_DIR", str(folder / "config"))
    monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(folder / "state"))
    monkeypatch.delenv(paths.LOGIN_DIR_VARIABLE, raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    level = logging.getLogger("databricks").level
    yield tmp_path
    logging.getLogger("databricks").setLevel(level)


def write_target(state_dir: Path, name: str) -> None:
    def change(status: Status) -> None:
        status.targets[name] = TargetState(name=name, user="someone@example.com", hosts=["127.0.0.1"])

    StateStore(state_dir / "status.json").update(change)


@pytest.mark.parametrize(
    ("command", "flags", "message"),
    [
        ("frobnicate", {}, "unknown command 'frobnicate'"),
        ("rotate", {"bogus": "x"}, "rotate: unknown flag --bogus"),
        ("rotate", {"verify": "yes please"}, "--verify expects true or false"),
        ("env", {"with_password": "maybe"}, "--with-password expects true or false"),  # the router's `_` for `-`
        ("logs", {"lines": "0"}, "--lines expects a number"),
        ("status", {"log_level": "loud"}, "unknown log level 'loud'"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(sandbox_home, capsys, command, flags, message):
    with pytest.raises(SystemExit) as exited:
        sandbox.run(command, **flags)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("oauth-rotator: error: ") and message in err and len(err.splitlines()) == 1


def test_status_reads_oauth_rotators_own_folders_not_the_sandboxs(sandbox_home, capsys):
    write_target(sandbox_home / ".databricks" / "labs" / "oauth-rotator" / "state", "ours")
    write_target(sandbox_home / ".databricks" / "labs" / "sandbox" / "state", "not-ours")
    sandbox.run("status")  # success returns (no SystemExit): the router ignores what its tools return
    (row,) = json.loads(capsys.readouterr().out)
    assert row["target"] == "ours" and row["service"] == "not installed"


def test_a_failing_command_exits_with_its_code_and_names_what_to_run(sandbox_home, capsys):
    with pytest.raises(SystemExit) as exited:
        sandbox.run("install")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    config = sandbox_home / ".databricks" / "labs" / "oauth-rotator" / "config" / "config.yml"
    fix = "run `databricks labs oauth-rotator configure`"
    assert err == f"oauth-rotator install: error: {config}: no such config file; {fix}\n"


def test_psqls_flag_named_command_is_a_flag_not_the_command(sandbox_home, capsys):
    with pytest.raises(SystemExit) as exited:
        sandbox.run("psql", target="", database="", command="select 1")
    assert exited.value.code == 2  # no config yet: psql was reached with its flags
    assert "oauth-rotator psql: error: " in capsys.readouterr().err


def test_the_folders_move_for_this_process_and_the_login_stays_findable(sandbox_home):
    given = sandbox_home / ".databricks" / "labs" / "sandbox" / "config"
    environ = {"HOME": str(sandbox_home), "DATABRICKS_LABS_CONFIG_DIR": str(given)}
    sandbox.use_own_folders(environ)
    ours = sandbox_home / ".databricks" / "labs" / "oauth-rotator"
    assert environ == {
        "HOME": str(sandbox_home),
        "DATABRICKS_LABS_CONFIG_DIR": str(ours / "config"),
        "DATABRICKS_LABS_STATE_DIR": str(ours / "state"),
        paths.LOGIN_DIR_VARIABLE: str(given),
    }
    sandbox.use_own_folders(environ)  # a second time changes nothing (the sandbox's login is not forgotten)
    assert environ[paths.LOGIN_DIR_VARIABLE] == str(given)


def test_a_log_level_passed_on_is_honoured_as_the_router_would(sandbox_home, capsys):
    sandbox.run("status", log_level="debug")
    assert logging.getLogger("databricks").getEffectiveLevel() == logging.DEBUG
    assert "DEBUG" not in capsys.readouterr().out  # stdout stays one JSON value


def test_the_sandbox_commands_are_the_records():
    labs = {command.name for command in record.offered_by(record.LABS)}
    assert set(sandbox.SANDBOX_COMMANDS) <= labs
    assert {"run", "restart"}.isdisjoint(sandbox.SANDBOX_COMMANDS)


@pytest.mark.parametrize("command", ["run", "restart"])
def test_a_command_the_sandbox_does_not_offer_is_refused(sandbox_home, capsys, command):
    with pytest.raises(SystemExit) as exited:
        sandbox.run(command)
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith(f"oauth-rotator: error: unknown command '{command}'")


def test_a_failure_reaches_stderr_escaped_and_redacted(sandbox_home, capsys, monkeypatch):
    """A secret-shaped value and an escape sequence in a command's error: neither reaches stderr as it was."""
    from databricks.labs.oauth_rotator.commands import labs_commands
    from databricks.labs.oauth_rotator.errors import CredentialError

    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"

    def leaky(verify: bool = False) -> int:
        raise CredentialError(f"refused \x1b]0;pwned\x07 with {token}")

    monkeypatch.setattr(labs_commands, "rotate", leaky)
    with pytest.raises(SystemExit) as exited:
        sandbox.run("rotate")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err == "oauth-rotator rotate: error: refused \\x1b]0;pwned\\x07 with <redacted>\n"
