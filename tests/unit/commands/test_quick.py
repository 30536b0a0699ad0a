"""`quick.password_flags` reads a command line as argparse would, or leaves it to argparse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.commands import flags, quick, record
from databricks.labs.oauth_rotator.errors import ConfigError

WORDS = st.sampled_from(
    [
        *("--target", "--config", "--target=a", "--config=c.yml", "--target=", "sales", "-x", "--", "--targ", "-5"),
        *("a b", "--tar=x", "-h", "--help", "--verbose", "", "--target=-t", "=", "--config=a=b"),
    ]
)


@given(st.lists(WORDS, max_size=5))
def test_the_usual_forms_read_as_argparse_reads_them(argv):
    fast = quick.password_flags(argv)
    if fast is None:
        return
    assert fast == flags.parse_password_flags(argv)


@pytest.mark.parametrize(
    "argv",
    [[], ["--target", "sales"], ["--target=sales"], ["--config", "c.yml", "--target", "a"], ["--target="]],
)
def test_the_usual_forms_need_no_argparse(argv):
    assert quick.password_flags(argv) == flags.parse_password_flags(argv)


@pytest.mark.parametrize("argv", [["--target"], ["--bogus"], ["--target", "a", "--target", "b"], ["x"]])
def test_anything_else_goes_to_argparse(argv):
    assert quick.password_flags(argv) is None
    if argv != ["--target", "a", "--target", "b"]:
        with pytest.raises(ConfigError):
            flags.parse_password_flags(argv)


def test_a_flag_added_to_the_record_is_read_without_argparse(monkeypatch):
    """`password`'s console flags come from the command record, for the quick reader and argparse alike."""
    command = record.console_command(quick.PROG, quick.PASSWORD)
    extra = record.Flag("role", "a role", metavar="NAME", offered=(record.CONSOLE,))
    monkeypatch.setattr(command, "flags", (*command.flags, extra))
    unset = {name: None for name in ("target", "config", "host", "port", "user", "database")}
    assert quick.password_flags(["--role=r", "--target", "t"]) == {**unset, "target": "t", "role": "r"}
    assert flags.parse_password_flags(["--role", "r"]) == {**unset, "role": "r"}
    assert quick.password_flags(["--host", "h", "--port=5433"]) == {**unset, "host": "h", "port": "5433", "role": None}
