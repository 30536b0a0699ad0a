"""`quick.password_flags` reads a command line as argparse would, or leaves it to argparse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.commands import flags, quick
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


def test_the_flags_are_the_parsers():
    declared = {a.option_strings[0] for a in flags.build_password_parser()._actions if a.option_strings}
    assert declared - {"-h"} == set(quick.PASSWORD_FLAGS)
