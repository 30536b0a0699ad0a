"""The config: targets, profile, files and timing, as versioned dataclasses, checked strictly before use.

Stdlib only, so command-line flags can be checked without importing the SDK; files are read and written by
`config_store`.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from databricks.labs.oauth_rotator.errors import ConfigError

ENDPOINT_PATTERN = re.compile(r"^projects/[^/\s]+/branches/[^/\s]+/endpoints/[^/\s]+$")
MAX_MINUTES = 24 * 60


@dataclass
class TargetConfig:
    """One Lakebase database the user connects to: an instance, an endpoint, or only a host."""

    name: str | None = None
    instance: str | None = None
    endpoint: str | None = None
    host: str | None = None
    extra_hosts: list[str] | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    read_only: bool | None = None
    """Also write the instance's or endpoint's read-only host (a `<name>-ro` service in pg_service.conf)."""
    pooled: bool | None = None
    """Also write the endpoint's pooled (PgBouncer) hosts (`<name>-pooled`, and `<name>-ro-pooled` with read_only)."""

    @property
    def label(self) -> str:
        """The name status and logs use: `name`, else the instance, endpoint or host."""
        return self.name or self.instance or self.endpoint or self.host or "?"

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else 5432

    @property
    def effective_database(self) -> str:
        return self.database if self.database is not None else "*"


@dataclass
class RotatorConfig:
    __file__ = "config.yml"
    __version__ = 1

    targets: list[TargetConfig] = field(default_factory=list)
    profile: str | None = None
    workspace_url: str | None = None
    pgpass_file: str | None = None
    log_file: str | None = None
    margin_minutes: float | None = None
    interval_minutes: float | None = None
    service: bool | None = None
    exec_after: str | None = None
    """A command run (without a shell) after a cycle changed `.pgpass`, e.g. to reload a local pgbouncer."""
    exec_after_timeout: int | None = None
    pg_service: bool | None = None
    """Also write `pg_service.conf` entries (host, port, dbname, user, sslmode=require; never a password)."""
    pg_service_file: str | None = None
    notify: bool | None = None
    """Desktop notifications when a person must act (default on, where the desktop offers them)."""

    @property
    def effective_margin_minutes(self) -> float:
        return self.margin_minutes if self.margin_minutes is not None else 10

    @property
    def effective_interval_minutes(self) -> float:
        return self.interval_minutes if self.interval_minutes is not None else 50

    def validate(self) -> RotatorConfig:
        """Raise `ConfigError` naming the first thing wrong; returns self for chaining."""
        validate_raw(to_raw(self))
        return self


_TOP_KEYS: dict[str, tuple[type, ...]] = {
    "version": (int,),
    "profile": (str,),
    "workspace_url": (str,),
    "pgpass_file": (str,),
    "log_file": (str,),
    "margin_minutes": (int, float),
    "interval_minutes": (int, float),
    "service": (bool,),
    "exec_after": (str,),
    "exec_after_timeout": (int,),
    "pg_service": (bool,),
    "pg_service_file": (str,),
    "notify": (bool,),
    "targets": (list,),
}
_TARGET_KEYS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "instance": (str,),
    "endpoint": (str,),
    "host": (str,),
    "extra_hosts": (list,),
    "port": (int,),
    "database": (str,),
    "user": (str,),
    "read_only": (bool,),
    "pooled": (bool,),
}


def _check_keys(raw: dict[str, Any], known: dict[str, tuple[type, ...]], where: str) -> None:
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known keys: {', '.join(sorted(known))})")
        if value is None:
            continue
        if isinstance(value, bool) and bool not in known[key]:
            raise ConfigError(f"{where}{key}: expected {known[key][0].__name__}, got {value!r}")
        if not isinstance(value, known[key]):
            raise ConfigError(f"{where}{key}: expected {known[key][0].__name__}, got {_show(value)}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_text(value: str | None, where: str) -> None:
    if value is None:
        return
    if not value or value != value.strip() or any(c in value for c in "\n\r\0"):
        raise ConfigError(f"{where}: must be non-empty, without surrounding spaces or line breaks: {_show(value)}")
    if len(value) > 1024:
        raise ConfigError(f"{where}: longer than 1024 characters")


def _check_minutes(value: float | None, where: str, *, minimum: float) -> None:
    if value is not None and not minimum <= value <= MAX_MINUTES:
        raise ConfigError(f"{where}: expected minutes between {minimum:g} and {MAX_MINUTES}, got {value!r}")


def check_workspace_url(value: str | None, where: str = "workspace_url") -> None:
    if value is None:
        return
    parsed = urlparse(value)
    if parsed.scheme not in {"https", "http"} or not parsed.hostname or any(c.isspace() for c in value):
        raise ConfigError(f"{where}: not a workspace URL: {_show(value)} (expected https://<workspace host>)")


def check_command(value: str | None, where: str = "exec_after") -> None:
    """A command line we can split like a shell would, and run without one."""
    if value is None:
        return
    _check_text(value, where)
    try:
        words = shlex.split(value)
    except ValueError as err:
        raise ConfigError(f"{where}: cannot split {_show(value)}: {err}") from err
    if not words:
        raise ConfigError(f"{where}: empty command")


def validate_target(raw: dict[str, Any], where: str) -> None:
    _check_keys(raw, _TARGET_KEYS, where + ".")
    for key in ("name", "instance", "endpoint", "host", "database", "user"):
        _check_text(raw.get(key), f"{where}.{key}")
    for i, host in enumerate(raw.get("extra_hosts") or []):
        if not isinstance(host, str):
            raise ConfigError(f"{where}.extra_hosts[{i}]: expected str, got {_show(host)}")
        _check_text(host, f"{where}.extra_hosts[{i}]")
    if raw.get("instance") and raw.get("endpoint"):
        raise ConfigError(f"{where}: give either instance or endpoint, not both")
    if not (raw.get("instance") or raw.get("endpoint") or raw.get("host")):
        raise ConfigError(f"{where}: needs an instance, an endpoint or a host")
    endpoint = raw.get("endpoint")
    if endpoint and not ENDPOINT_PATTERN.match(endpoint):
        raise ConfigError(f"{where}.endpoint: expected projects/<p>/branches/<b>/endpoints/<e>, got {_show(endpoint)}")
    port = raw.get("port")
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"{where}.port: expected a port number 1-65535, got {port!r}")


def validate_raw(raw: Any) -> None:
    """Check a config as read from YAML, before blueprint's lenient unmarshal sees it."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping of keys, got {type(raw).__name__}")
    _check_keys(raw, _TOP_KEYS, "")
    version = raw.get("version", RotatorConfig.__version__)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(f"version: expected a whole number (this oauth-rotator writes 1), got {_show(version)}")
    if version > RotatorConfig.__version__:
        raise ConfigError(
            f"version: this config was written by a newer oauth-rotator (version {version}); "
            f"this one reads up to version {RotatorConfig.__version__}",
            fix="upgrade oauth-rotator",
        )
    for key in ("profile", "pgpass_file", "log_file", "pg_service_file"):
        _check_text(raw.get(key), key)
    check_command(raw.get("exec_after"))
    timeout = raw.get("exec_after_timeout")
    if timeout is not None and not 1 <= timeout <= 3600:
        raise ConfigError(f"exec_after_timeout: expected seconds between 1 and 3600, got {timeout!r}")
    check_workspace_url(raw.get("workspace_url"))
    _check_minutes(raw.get("margin_minutes"), "margin_minutes", minimum=0)
    _check_minutes(raw.get("interval_minutes"), "interval_minutes", minimum=1)
    targets = raw.get("targets") or []
    if not targets:
        raise ConfigError("targets: no target configured (give an instance, an endpoint or a host)")
    labels: set[str] = set()
    for i, target in enumerate(targets):
        if not isinstance(target, dict):
            raise ConfigError(f"targets[{i}]: expected a mapping, got {_show(target)}")
        validate_target(target, f"targets[{i}]")
        label = TargetConfig(**target).label
        if label in labels:
            raise ConfigError(f"targets[{i}]: another target is also named {label!r}; give each a distinct name")
        labels.add(label)


def to_raw(config: RotatorConfig) -> dict[str, Any]:
    """The config as plain data, every set value kept (falsy ones included), for JSON and YAML."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    raw: dict[str, Any] = strip(dataclasses.asdict(config))
    return raw


def from_raw(raw: Any) -> RotatorConfig:
    """A validated config from plain data (a parsed file, a JSON request)."""
    validate_raw(raw)
    data = {k: v for k, v in raw.items() if k != "version"}
    targets = [TargetConfig(**t) for t in data.pop("targets")]
    return RotatorConfig(targets=targets, **data)
