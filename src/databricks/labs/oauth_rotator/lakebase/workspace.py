"""The workspace client: the SDK's unified auth with bounded timeouts, its errors told apart, and the logins
and profiles the Databricks CLI leaves behind (`login.json`, `~/.databrickscfg`, the variables it exports)."""

from __future__ import annotations

import configparser
import json
import logging
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.__about__ import __version__
from databricks.labs.oauth_rotator.deadlines import HTTP_TIMEOUT_SECONDS, RETRY_TIMEOUT_SECONDS
from databricks.labs.oauth_rotator.errors import ConfigError, CredentialError, NeedsPersonError, RotatorError
from databricks.labs.oauth_rotator.lakebase.credentials import check_name
from databricks.labs.oauth_rotator.lakebase.sdk_compat import classify_sdk_error
from databricks.labs.oauth_rotator.paths import PRODUCT
from databricks.labs.oauth_rotator.secrets import is_login_variable
from databricks.labs.oauth_rotator.text import one_line

logger = logging.getLogger(__name__)

POOL_SIZE = 20
"""HTTP connections kept per host: at least the cycle's concurrent fetches (`rotation/cycle.py`), so a fleet's cycle
reuses its connections instead of opening, then discarding, one per request beyond the pool (urllib3 logs a
"Connection pool is full" warning for each)."""


def build_workspace_client(
    *,
    profile: str | None,
    host: str | None,
    http_timeout_seconds: float = HTTP_TIMEOUT_SECONDS,
    retry_timeout_seconds: int = RETRY_TIMEOUT_SECONDS,
) -> WorkspaceClient:
    """A client chosen the SDK's way (explicit arguments, then environment, then profile), failing in seconds.

    Without these timeouts an unreachable host blocks for the SDK's default five minutes.
    """
    problem = configuration_problem(profile=profile, host=host, environ=os.environ)
    if problem is not None:
        raise problem
    kwargs: dict[str, Any] = {}
    if profile:
        kwargs["profile"] = profile
    if host:
        kwargs["host"] = host
    if hasattr(Config, "disable_async_token_refresh"):
        # Its refresh runs on a shared ThreadPoolExecutor, whose threads the interpreter joins at exit: a refresh
        # blocked on the identity provider would keep a finished entry point alive. Refresh when needed instead.
        kwargs["disable_async_token_refresh"] = True
    kwargs.update(_pool_settings())
    try:
        config = Config(
            **kwargs,
            http_timeout_seconds=http_timeout_seconds,
            retry_timeout_seconds=retry_timeout_seconds,
            product=PRODUCT,
            product_version=__version__,
        )
    except ValueError as err:
        raise auth_error(err, profile) from err
    return WorkspaceClient(config=config)


def _pool_settings() -> dict[str, Any]:
    """The SDK's pool settings sized for a cycle. Every supported SDK sizes only the `https://` adapter from
    `max_connection_pools`; where it takes a whole adapter (`http_adapter`, mounted for both schemes), ours sets
    the plain-HTTP pool too (a local workspace, a proxy), which would otherwise keep requests' default of 10."""
    import inspect

    settings: dict[str, Any] = {"max_connection_pools": POOL_SIZE, "max_connections_per_pool": POOL_SIZE}
    if "http_adapter" in inspect.signature(Config.__init__).parameters:
        from requests.adapters import HTTPAdapter

        settings["http_adapter"] = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE, pool_block=True)
    return settings


def _short(err: Exception) -> str:
    """The SDK's message without its docs link and config dump, redacted."""
    text = one_line(str(err)) or type(err).__name__
    return text.split(". Config:")[0].split(", please check https://")[0]


FEDERATED_AUTH_TYPES = frozenset({"file-oidc", "env-oidc", "github-oidc", "azure-devops-oidc"})
"""Workload identity federation: the SDK exchanges a token from a file or the environment; there is no secret."""


def auth_error(err: Exception, profile: str | None, auth_type: str | None = None) -> RotatorError:
    """An authentication failure as an error a person can act on, saying what to run. `auth_type` is the SDK's
    (`ws.config.auth_type`) when known, else `DATABRICKS_AUTH_TYPE`: a federated login has no secret to check."""
    message = _short(err)
    lowered = str(err).lower()
    login = f"databricks auth login --profile {profile}" if profile else "databricks auth login --host <workspace>"
    if "refresh token" in lowered or "auth login" in lowered or "reauthenticate" in lowered:
        return NeedsPersonError(f"the Databricks login has expired: {message}", fix=f"run `{login}`")
    if any(code in lowered for code in ("invalid_client", "unauthorized_client", "invalid_grant", "access_denied")):
        federated = (auth_type or os.environ.get("DATABRICKS_AUTH_TYPE") or "").lower() in FEDERATED_AUTH_TYPES
        fix = (
            "check the subject token (DATABRICKS_OIDC_TOKEN_FILEPATH: present, not expired, its audience) and the "
            "service principal's federation policy (issuer, subject, audience)"
            if federated
            else f"check the client id and secret (or `{login}`)"
        )
        return NeedsPersonError(f"the workspace refused the login: {message}", fix=fix)
    # Anything else may be the network (an unreachable host fails the same way as a wrong setting): retry.
    return CredentialError(f"authentication failed: {message}", fix=f"check the login (`{login}`)")


def auth_type_in_use(ws: WorkspaceClient) -> str:
    """The authentication the SDK picked (`pat`, `oauth-m2m`, `databricks-cli`, `file-oidc`, ...), for `doctor`."""
    return str(ws.config.auth_type or "unknown")


def configuration_problem(*, profile: str | None, host: str | None, environ: Mapping[str, str]) -> ConfigError | None:
    """A setup that can never authenticate, told apart before any network call: such runs exit 2, not retry."""
    config_file = Path(environ.get("DATABRICKS_CONFIG_FILE") or Path(environ.get("HOME") or "~") / ".databrickscfg")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(config_file.expanduser())
    except configparser.Error as err:
        return ConfigError(f"{config_file}: cannot be parsed: {str(err).splitlines()[0]}")
    profiles = set(parser.sections()) | ({"DEFAULT"} if parser.defaults() else set())
    if profile:
        if profile not in profiles:
            return ConfigError(
                f"profile {profile!r} is not in {config_file}",
                fix=f"run `databricks auth login --profile {profile}` or `databricks configure --profile {profile}`",
            )
        return None
    if host or "DATABRICKS_CONFIG_PROFILE" in environ or "DEFAULT" in profiles:
        return None
    if any(environ.get(name) for name in ("DATABRICKS_HOST", "DATABRICKS_AZURE_RESOURCE_ID")):
        return None
    return ConfigError(
        "no Databricks workspace configured",
        fix="pass --profile or --workspace-url, or set DATABRICKS_HOST (with DATABRICKS_CLIENT_ID and _SECRET, or "
        "DATABRICKS_AUTH_TYPE=file-oidc and DATABRICKS_OIDC_TOKEN_FILEPATH)",
    )


def current_user_name(ws: WorkspaceClient) -> str:
    """The authenticated identity's Postgres role: the email of a user, the application id of a service principal."""
    try:
        me = ws.current_user.me()
    except DatabricksError as err:
        raise classify_sdk_error(err, "who am I") from err
    except ValueError as err:  # token endpoint refused the client (revoked secret, expired login)
        raise auth_error(err, ws.config.profile, ws.config.auth_type) from err
    except OSError as err:
        raise CredentialError(f"who am I: {type(err).__name__}: {one_line(str(err))}") from err
    except (AttributeError, KeyError, TypeError, NotImplementedError) as err:  # an answer of an unexpected shape
        raise CredentialError(f"who am I: unexpected answer from the workspace ({type(err).__name__})") from err
    if not me.user_name:
        raise NeedsPersonError("the workspace did not say who we are", fix="set `user` for each target")
    if not isinstance(me.user_name, str):
        kind = type(me.user_name).__name__
        raise CredentialError(f"who am I: unexpected answer from the workspace (userName {kind})")
    check_name(me.user_name, "user name", "who am I")
    return me.user_name


def pin_profile(profile: str | None, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Make `profile` decide the login: drop the auth variables the Databricks CLI injected; returns their names.

    With no profile, the environment is the login: only `DATABRICKS_HOST` is normalised, as blueprint does for
    the Go SDK's spelling of it. Child processes (the scheduler's workers) inherit the result.
    """
    environ = os.environ if environ is None else environ
    if not profile:
        host = environ.get("DATABRICKS_HOST")
        if host:
            from databricks.labs.blueprint.cli import App

            environ["DATABRICKS_HOST"] = App.fix_databricks_host(host)
        return []
    dropped = [k for k in list(environ) if is_login_variable(k)]
    for key in dropped:
        del environ[key]
    if dropped:
        logger.debug(f"Using profile {profile}; ignoring {', '.join(sorted(dropped))} from the environment")
    return dropped


def pinned_workspace_client(profile: str | None, *, host: str | None = None) -> WorkspaceClient:
    """The production factory: the pinned profile (or the environment), with the rotator's timeouts."""
    pin_profile(profile)
    return build_workspace_client(profile=profile, host=host)


def login_profile(environ: Mapping[str, str] | None = None) -> str | None:
    """The `workspace_profile` the Databricks CLI saved at install time, if any.

    `$DATABRICKS_LABS_CONFIG_DIR/login.json` for an installed project, `$DATABRICKS_LABS_LIB_DIR/.databricks-login.json`
    for a checkout installed with `databricks labs install .`; first the sandbox's, when the sandbox started us
    (`paths.LOGIN_DIR_VARIABLE`).
    """
    environ = os.environ if environ is None else environ
    candidates = [paths.config_dir(environ) / "login.json"]
    if environ.get(paths.LOGIN_DIR_VARIABLE):
        candidates.insert(0, Path(environ[paths.LOGIN_DIR_VARIABLE]) / "login.json")
    if environ.get("DATABRICKS_LABS_LIB_DIR"):
        candidates.append(Path(environ["DATABRICKS_LABS_LIB_DIR"]) / ".databricks-login.json")
    for path in candidates:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        profile = raw.get("workspace_profile") if isinstance(raw, dict) else None
        if isinstance(profile, str) and profile.strip():
            return profile.strip()
    return None


def databrickscfg_profiles(environ: Mapping[str, str] | None = None) -> list[str]:
    """The profile names in `~/.databrickscfg` (or `DATABRICKS_CONFIG_FILE`), to show in the question."""
    environ = os.environ if environ is None else environ
    path = Path(os.path.expanduser(environ.get("DATABRICKS_CONFIG_FILE") or "~/.databrickscfg"))
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return []
    names = parser.sections()
    return ["DEFAULT", *names] if parser.defaults() else names
