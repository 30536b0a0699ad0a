"""Compatibility import for users of the original `databricks_oauth_rotator` package.

The names are imported on first use, so that the console scripts (`databricks_oauth_rotator.scripts`) start
without the rotator and its SDK.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`, which would import typing
if TYPE_CHECKING:
    from typing import Any

    from databricks.labs.oauth_rotator import DatabricksOAuthRotator, __version__

__all__ = ["DatabricksOAuthRotator", "__version__"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import databricks.labs.oauth_rotator

    return getattr(databricks.labs.oauth_rotator, name)
