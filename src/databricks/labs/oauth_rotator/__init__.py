"""Keeps ~/.pgpass supplied with fresh Databricks Lakebase OAuth credentials.

The public API is imported lazily: `import databricks.labs.oauth_rotator` must stay cheap, because the
status command and the background scheduler import this package and should not pay for the Databricks
SDK (about two seconds and 80 MB) until a credential is actually needed. It imports nothing but `__about__`.
"""

from __future__ import annotations

from databricks.labs.oauth_rotator.__about__ import __version__

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: every command imports this package, and typing is not free
if TYPE_CHECKING:
    from typing import Any

    from databricks.labs.oauth_rotator.commands.api import DatabricksOAuthRotator
    from databricks.labs.oauth_rotator.lakebase.credentials import Credential

__all__ = ["Credential", "DatabricksOAuthRotator", "__version__"]

_LAZY = {
    "DatabricksOAuthRotator": "databricks.labs.oauth_rotator.commands.api",
    "Credential": "databricks.labs.oauth_rotator.lakebase.credentials",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
