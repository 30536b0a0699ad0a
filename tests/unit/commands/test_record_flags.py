"""The flags several commands share: well formed, each name once per command line, the admin flags present."""

from __future__ import annotations

from databricks.labs.oauth_rotator.commands.command_types import KINDS
from databricks.labs.oauth_rotator.commands.record_flags import (
    PASSWORD_CONNECTION_FLAGS,
    ROTATOR_FLAGS,
    TARGET_FLAGS,
    VERIFY,
    database_flag,
    target_flag,
)


def test_each_flag_is_named_once_and_of_a_known_kind() -> None:
    for flags in (TARGET_FLAGS, ROTATOR_FLAGS, PASSWORD_CONNECTION_FLAGS, (VERIFY,)):
        names = [flag.name for flag in flags]
        assert len(names) == len(set(names)), names
        assert all(flag.kind in KINDS and flag.help for flag in flags)


def test_the_rotator_can_serve_probes_and_an_admin_port_apart() -> None:
    names = {flag.name for flag in ROTATOR_FLAGS}
    assert {"http-port", "quitquitquit", "admin-port"} <= names


def test_target_and_database_are_spelled_alike_everywhere() -> None:
    target, database = target_flag("which one"), database_flag("which database")
    assert (target.name, target.metavar, target.help) == ("target", "NAME", "which one")
    assert (database.name, database.metavar) == ("database", "NAME")
