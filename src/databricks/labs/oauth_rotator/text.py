"""Text for people: one-line error messages and durations. Shared by every layer, imports only `secrets`.

Text from outside (a workspace's error message, a file's content, a hook's output) reaches a terminal, the log,
`status.json` and the status table only through `printable`: an escape sequence in it (ESC, an OSC title or
hyperlink, a carriage return that overwrites the line) is shown as an escape, never obeyed by a terminal.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`, which would import typing
if TYPE_CHECKING:
    import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNPRINTABLE = "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
"""C0 and C1 controls (ESC, CSI, OSC, CR, LF, BEL, ...), DEL, and the line separators and bidirectional overrides
that reorder what a terminal shows (`Trojan Source`). Compiled on first use: `status` and `password` print
durations without importing `re`."""
_compiled: list[re.Pattern[str]] = []


def _pattern() -> re.Pattern[str]:
    if not _compiled:
        import re

        _compiled.append(re.compile(_UNPRINTABLE))
    return _compiled[0]


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character written as an escape (`\\x1b`, `\\r`, `\\u202e`): safe to print and log."""
    if text.isprintable():  # the common case, without compiling anything
        return text
    return _pattern().sub(_escape, text)


def has_control_characters(text: str) -> bool:
    """Whether `text` holds a character that `printable` would escape."""
    return not text.isprintable() and _pattern().search(text) is not None


def one_line(text: str, *, limit: int = 500) -> str:
    """The first line of an error, redacted, escaped and shortened: the SDK appends whole requests and responses."""
    from databricks.labs.oauth_rotator.secrets import redact  # here: `status` shows durations without `re`

    lines = text.strip().splitlines()
    first = printable(redact(lines[0].strip())) if lines else ""
    return first if len(first) <= limit else first[: limit - 3] + "..."


def human_duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 5 min`: how people read a credential's remaining life."""
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
