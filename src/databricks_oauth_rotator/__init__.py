"""Compatibility import for users of the original `databricks_oauth_rotator` package."""

from databricks.labs.oauth_rotator import DatabricksOAuthRotator, __version__

__all__ = ["DatabricksOAuthRotator", "__version__"]
