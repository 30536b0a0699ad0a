"""What a secret looks like, and text with every one of them replaced by `<redacted>`.

Apart from `logs.py` (which re-exports `redact`) so that `status` can clean an error message without importing
`logging`: stdlib `re` only.
"""

from __future__ import annotations

import re

_SECRETS = [
    re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"),  # JWTs: every Databricks OAuth token and Lakebase credential
    re.compile(r"(?i)(bearer\s+)\S+"),
    re.compile(r"(?i)((?:password|secret|token)[\"']?\s*[=:]\s*[\"']?)[^\s\"',&]+"),
    re.compile(r"\bdap[i][0-9a-f]{32}(-\d+)?"),  # personal access tokens
]


def redact(text: str) -> str:
    """`text` with anything shaped like a token, secret or password replaced by `<redacted>`."""
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + "<redacted>", text)
    return text
