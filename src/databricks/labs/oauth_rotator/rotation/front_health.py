"""How the pgbouncer front is doing, as `status` shows it: from what the supervisor recorded in
`state/pgbouncer.json`, without importing anything (`status` is as fast as Python starts).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DOWN = {"down", "failed", "stopped"}


def front_health_note(recorded: object) -> str:
    """ " (down: why)" for a front the supervisor saw fail or die, and the targets whose new credential it could not
    take; "" for a running front (or one whose state nobody recorded: a front the user runs)."""
    if not isinstance(recorded, dict):
        return ""
    notes = []
    state = recorded.get("process")
    if state in _DOWN:
        error = recorded.get("error")
        notes.append(f"{state}: {_plain(error)}" if isinstance(error, str) and error else str(state))
    refused = recorded.get("refused")
    if isinstance(refused, dict) and refused:
        notes.append(f"credential refused for {', '.join(sorted(_plain(str(name)) for name in refused))}")
    return f" ({'; '.join(notes)})" if notes else ""


def front_problem(path: Path) -> str | None:
    """Why the supervised front is not serving, from its recorded state ("not started yet", "down"), or None while
    it runs. No credential, user or host: this is what a probe answers."""
    try:
        recorded = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return "not started yet"
    state = recorded.get("process") if isinstance(recorded, dict) else None
    if state == "running":
        return None
    return str(state) if state in {*_DOWN, "starting"} else "not started yet"


def _plain(text: str, limit: int = 300) -> str:
    """One line without control characters (the error is pgbouncer's text, written by the service user's process)."""
    flat = _CONTROL.sub("?", text)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
