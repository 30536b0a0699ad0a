"""Calling the SDK's Lakebase methods across its releases, and what its errors mean for a rotation."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

from databricks.sdk.errors import (
    BadRequest,
    DatabricksError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

from databricks.labs.oauth_rotator.errors import CredentialError, NeedsPersonError, RotatorError
from databricks.labs.oauth_rotator.text import one_line


def accepted_keywords(method: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword arguments `method` takes, read from its signature; None when it takes any (`**kwargs`).

    The SDK's Lakebase methods gain and lose parameters between releases (`group_name` on
    `w.postgres.generate_database_credential` is in 0.120.0, gone in 0.150.0-0.162.0, back in 0.167.0), so what
    we send is checked against the installed SDK's own signature, never against its version number.
    """
    parameters = inspect.signature(method).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    by_keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(p.name for p in parameters if p.kind in by_keyword)


def sdk_arguments(
    method: Callable[..., Any],
    what: str,
    *,
    required: Mapping[str, Any],
    optional: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyword arguments to call the SDK's `method` with: all of `required`, and what it takes of `optional`.

    An SDK whose `method` lacks a required argument cannot mint for us: a person must install a supported one.
    """
    accepted = accepted_keywords(method)
    wanted = {**required, **(optional or {})}
    if accepted is None:
        return wanted
    missing = [name for name in required if name not in accepted]
    if missing:
        raise NeedsPersonError(
            f"{what} of databricks-sdk {installed_sdk()} takes no `{missing[0]}` argument",
            fix=f"install a supported databricks-sdk ({_supported_sdk()})",
        )
    return {name: value for name, value in wanted.items() if name in accepted}


def installed_sdk() -> str:
    """The installed databricks-sdk's version, for messages."""
    try:
        return metadata.version("databricks-sdk")
    except metadata.PackageNotFoundError:
        return "(version unknown)"


def _supported_sdk() -> str:
    """The databricks-sdk requirement this package declares, e.g. `databricks-sdk<0.168,>=0.120.0`."""
    try:
        requirements = metadata.requires("databricks-labs-oauth-rotator") or []
    except metadata.PackageNotFoundError:
        requirements = []
    declared = [r for r in requirements if re.match(r"databricks-sdk\b(?!-)", r)]
    return declared[0] if declared else "see pyproject.toml"


def classify_sdk_error(err: DatabricksError, what: str) -> RotatorError:
    """Sort an SDK error into "retry later" and "a person must act", with the fix where we know it."""
    message = f"{what}: {type(err).__name__}: {one_line(str(err))}"
    if isinstance(err, NotFound):
        return NeedsPersonError(message, fix="check the target name and that it still exists in the workspace")
    if isinstance(err, PermissionDenied):
        return NeedsPersonError(message, fix="ask a workspace admin for access to this database")
    if isinstance(err, Unauthenticated):
        return NeedsPersonError(message, fix="check the login of this profile (`databricks auth login`)")
    if isinstance(err, BadRequest):
        return NeedsPersonError(message)
    return CredentialError(message)
