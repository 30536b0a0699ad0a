"""Text for people: one-line error messages and durations. Shared by every layer, imports only `secrets`."""

from __future__ import annotations


def one_line(text: str, *, limit: int = 500) -> str:
    """The first line of an error, redacted and shortened: the SDK appends whole requests and responses."""
    from databricks.labs.oauth_rotator.secrets import redact  # here: `status` shows durations without `re`

    lines = text.strip().splitlines()
    first = redact(lines[0].strip()) if lines else ""
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
