"""The one list of what is secret: value shapes, variable names, and the login variables the Databricks CLI exports.

Every place that keeps a secret out of a log, a service definition, a hook's or psql's environment, or an error
message asks this module, so a new kind of secret is taught once. Stdlib only, imports nothing of ours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SECRET_NAME_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL", "PRIVATE_KEY", "API_KEY")
"""A variable whose name holds one of these is secret: DATABRICKS_TOKEN, DATABRICKS_CLIENT_SECRET, PGPASSWORD, ..."""
WHERE_A_SECRET_IS = ("_FILEPATH", "_FILE", "_AUDIENCE", "_ENV")
"""...unless the name ends in one of these: it names where a secret is or whom it is for, not the secret
(`DATABRICKS_OIDC_TOKEN_FILEPATH`, the workload identity's token file; `DATABRICKS_TOKEN_AUDIENCE`;
`DATABRICKS_OIDC_TOKEN_ENV`, the name of another variable). A service may carry these; the file's mode guards it."""

_SECRET_VALUE = re.compile(r"eyJ[\w-]+\.[\w-]+\.|dapi[0-9a-f]{32}")
"""A JWT (every Databricks OAuth token and Lakebase credential) or a Databricks personal access token."""

_REDACTIONS = (
    re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"),  # JWTs
    re.compile(r"(?i)(bearer\s+)\S+"),
    re.compile(r"(?i)((?:password|secret|token)[\"']?\s*[=:]\s*[\"']?)[^\s\"',&]+"),
    re.compile(r"\bdap[i][0-9a-f]{32}(-\d+)?"),  # personal access tokens
)

CLI_AUTH_VARIABLES = frozenset(
    {
        "DATABRICKS_HOST",
        "DATABRICKS_TOKEN",
        "DATABRICKS_AUTH_TYPE",
        "DATABRICKS_CLIENT_ID",
        "DATABRICKS_CLIENT_SECRET",
        "DATABRICKS_USERNAME",
        "DATABRICKS_PASSWORD",
        "DATABRICKS_ACCOUNT_ID",
        "DATABRICKS_WORKSPACE_ID",
        "DATABRICKS_CLOUD",
        "DATABRICKS_DISCOVERY_URL",
        "DATABRICKS_TOKEN_AUDIENCE",
        "DATABRICKS_OIDC_TOKEN_ENV",
        "DATABRICKS_OIDC_TOKEN_FILEPATH",
        "DATABRICKS_METADATA_SERVICE_URL",
        "DATABRICKS_AZURE_RESOURCE_ID",
        "DATABRICKS_GOOGLE_SERVICE_ACCOUNT",
        "GOOGLE_CREDENTIALS",
        "DATABRICKS_CLUSTER_ID",
        "DATABRICKS_WAREHOUSE_ID",
        "DATABRICKS_SERVERLESS_COMPUTE_ID",
    }
)
"""What `databricks labs` exports from the login it resolved (plus every `ARM_*`): the profile's values, flattened
into the environment, with the profile's name dropped. The SDK prefers these over a profile's own values."""


def is_secret_name(name: str) -> bool:
    """Whether a variable of this name holds a secret (by its name alone)."""
    upper = name.upper()
    return any(word in upper for word in SECRET_NAME_WORDS) and not upper.endswith(WHERE_A_SECRET_IS)


def looks_secret(value: str) -> bool:
    """Whether `value` contains something shaped like a token (a JWT or a personal access token)."""
    return _SECRET_VALUE.search(value) is not None


def is_login_variable(name: str) -> bool:
    """Whether the Databricks CLI sets `name` from a resolved login (these decide who the SDK logs in as)."""
    return name in CLI_AUTH_VARIABLES or name.startswith("ARM_")


def without_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` minus every variable that is secret by name or a login the CLI exported."""
    return {k: v for k, v in environ.items() if not is_secret_name(k) and not is_login_variable(k)}


def redact(text: str) -> str:
    """`text` with anything shaped like a token, secret or password replaced by `<redacted>`."""
    for pattern in _REDACTIONS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + "<redacted>", text)
    return text
