"""The command record: each command declared once, and every entry point reads it."""

from __future__ import annotations

import inspect

import pytest

from databricks.labs.oauth_rotator.commands import labs_runner, quick, record, rotator_script
from databricks.labs.oauth_rotator.errors import ConfigError

CALLS: list[dict[str, object]] = []


def demo_exec(target: str | None = None, env_password: bool = False, tail: list[str] | None = None) -> int:
    """A console sub-command's handler, as `exec` will have one: its flags and the tail after `--`."""
    CALLS.append({"target": target, "env_password": env_password, "tail": tail})
    return 7


@pytest.mark.parametrize("command", record.COMMANDS, ids=lambda c: c.name)
def test_every_handler_exists_and_takes_the_flags_of_its_entry_points(command):
    parameters = set(inspect.signature(labs_runner.handler(command)).parameters)
    for entry_point in set(command.offered) - {record.CONSOLE}:
        assert {flag.parameter for flag in command.flags_for(entry_point)} <= parameters, entry_point
    if not command.needs_workspace:
        assert "debug" in parameters  # the light path hands it over without importing logging


def test_names_and_console_words_are_unique():
    names = [command.name for command in record.COMMANDS]
    assert len(names) == len(set(names))
    consoles = [command.console for command in record.COMMANDS if command.console]
    assert len(consoles) == len(set(consoles))
    assert record.console_words(quick.PROG) == ("password", "wait", "shutdown", "exec")
    assert record.console_command("databricks-oauth-status").name == "status"
    with pytest.raises(KeyError):
        record.console_command(quick.PROG, "frobnicate")


def test_a_boolean_says_its_strings_to_labs_only():
    purge = record.command_named("uninstall").flags[0]
    assert purge.labs_description.endswith(" (true or false)") and not purge.help.endswith(")")


def test_a_console_sub_command_with_its_own_flags_and_a_tail_is_one_record_entry(monkeypatch, capsys):
    """What `exec [--target NAME] [--env-password] -- COMMAND [ARG...]` needs: one entry, one handler."""
    entry = record.Command(
        "demo-exec",
        "Run a command with a fresh credential",
        flags=(
            record.Flag("target", "the configured database", metavar="NAME"),
            record.Flag("env-password", "PGPASSWORD in its environment", kind=record.BOOLEAN, default="false"),
        ),
        offered=(record.CONSOLE,),
        handler=f"{__name__}:demo_exec",
        console=(quick.PROG, "demo-exec"),
        tail="COMMAND [ARG...]",
    )
    monkeypatch.setattr(record, "COMMANDS", (*record.COMMANDS, entry))
    CALLS.clear()
    with pytest.raises(SystemExit) as exited:
        rotator_script.rotator_main(
            ["demo-exec", "--target", "sales", "--env-password", "--", "psql", "-c", "select 1"]
        )
    assert exited.value.code == 7
    assert CALLS == [{"target": "sales", "env_password": True, "tail": ["psql", "-c", "select 1"]}]
    with pytest.raises(SystemExit) as exited:
        rotator_script.rotator_main(["demo-exec", "--help"])
    assert exited.value.code == 0
    assert "COMMAND [ARG...]" in capsys.readouterr().out


def test_an_unknown_console_word_is_bad_usage(capsys):
    with pytest.raises(SystemExit) as exited:
        rotator_script.rotator_main(["frobnicate"])
    assert exited.value.code == 2
    words = ", ".join(record.console_words(quick.PROG))
    assert capsys.readouterr().err == (
        f"databricks-oauth-rotator: error: unknown command 'frobnicate' (commands: {words}; or flags: --help)\n"
    )
    with pytest.raises(ConfigError):
        rotator_script._sub_command("frobnicate", [])  # pylint: disable=protected-access
