"""`text.printable`: text from outside is shown with its control characters escaped, never obeyed (issue 19)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.text import has_control_characters, one_line, printable


def test_terminal_sequences_are_escaped():
    assert printable("a\x1b]0;pwned\x07b") == "a\\x1b]0;pwned\\x07b"
    assert printable("x\x1b[2J\x9b31m") == "x\\x1b[2J\\x9b31m"
    assert printable("over\rwrite\n\t") == "over\\rwrite\\n\\t"
    assert printable("evil\u202etxt.exe") == "evil\\u202etxt.exe"
    assert printable("ünïcödé @ 日本") == "ünïcödé @ 日本"


def test_one_line_is_the_first_line_redacted_and_escaped():
    assert (
        one_line("boom \x1b]8;;http://evil\x07 token=abc\nsecond line")
        == "boom \\x1b]8;;http://evil\\x07 token=<redacted>"
    )


@given(st.text())
def test_printable_text_has_no_control_characters_left(text):
    assert not has_control_characters(printable(text))
    assert not has_control_characters(one_line(text))
