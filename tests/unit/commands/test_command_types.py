"""The shape of the command record: a Flag and a Command, and what each says to an entry point."""

from __future__ import annotations

import pytest

from databricks.labs.oauth_rotator.commands.command_types import BOOLEAN, CONSOLE, LABS, SANDBOX, Command, Flag


def test_a_command_offers_each_entry_point_its_own_flags():
    command = Command(
        "demo",
        "help",
        flags=(
            Flag("name", "whose", metavar="NAME"),
            Flag("dry-run", "do nothing", kind=BOOLEAN, default="false", offered=(CONSOLE,)),
        ),
        offered=(LABS, CONSOLE),
        console=("demo-script", ""),
    )
    assert [flag.name for flag in command.flags_for(CONSOLE)] == ["name", "dry-run"]
    assert command.defaults_for(LABS) == {"name": ""}
    assert command.flags_for(SANDBOX) == command.flags_for(LABS)  # the flag says; the command says where it runs
    assert command.flags[1].parameter == "dry_run"
    assert command.flags[1].labs_description == "do nothing (true or false)"
    assert command.flags[0].labs_description == "whose"


def test_a_record_that_contradicts_itself_is_refused():
    with pytest.raises(ValueError, match="console command names its script"):
        Command("x", "help", offered=(CONSOLE,))
    with pytest.raises(ValueError, match="console command names its script"):
        Command("x", "help", offered=(LABS,), console=("script", ""))
    with pytest.raises(ValueError, match="unknown kind"):
        Flag("x", "help", kind="float")
