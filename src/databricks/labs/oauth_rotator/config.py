"""The config's schema: targets, profile, files and timing, as versioned dataclasses, checked strictly before use.

The settings' checks (types, ranges, names); the files they name are checked by `config_checks`, the machine by
`app/preflight.py`. Stdlib only, so command-line flags can be checked without importing the SDK; the file is read
and written by `files/config_store.py`.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.names import DEFAULT_INTERVAL_MINUTES, DEFAULT_MARGIN_MINUTES, target_label
from databricks.labs.oauth_rotator.setting_checks import (
    InvalidSetting,
    check_command,
    check_credential_ttl,
    check_database_name,
    check_minutes,
    check_name,
    check_path_text,
    check_port,
    check_text,
    check_workspace_url,
    named_as,
    show,
)

ENDPOINT_PATTERN = re.compile(r"^projects/[^/\s]+/branches/[^/\s]+/endpoints/[^/\s]+$")


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
        return target_label(self.name, self.instance, self.endpoint, self.host)

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else 5432

    @property
    def effective_database(self) -> str:
        return self.database if self.database is not None else "*"


SSLMODES = ("require", "verify-full")
DEFAULT_LISTEN_ADDRESS = "127.0.0.1"
DEFAULT_LISTEN_PORT = 6432
DEFAULT_LOCAL_USER = "lakebase"


@dataclass
class PgbouncerConfig:
    """The local pgbouncer front (`pgbouncer:`): clients that cannot read `.pgpass` log in to it with a fixed local
    password, and it logs in to Lakebase with the credential each rotation writes into its files."""

    enabled: bool | None = None
    """Default true when the block is there."""
    manage: bool | None = None
    """True (default): the scheduler runs pgbouncer as its child; false: only write its files and reload it."""
    listen_address: str | None = None
    listen_port: int | None = None
    unix_socket_dir: str | None = None
    """A directory for pgbouncer's unix socket; none by default (TCP on `listen_address` only)."""
    user: str | None = None
    """The local user name clients log in as (default `lakebase`)."""
    password: str | None = None
    """The local password clients log in with; without one, one is generated once into `<dir>/password` (0600)."""
    server_tls_sslmode: str | None = None
    """`verify-full` (default: Lakebase's certificate checked against `server_tls_ca_file`, else the system's CAs) or
    `require` (encrypted, but any certificate is taken)."""
    server_tls_ca_file: str | None = None
    binary: str | None = None
    """The pgbouncer program: default `pgbouncer` on PATH, else /usr/sbin/pgbouncer."""
    dir: str | None = None
    """Where its files go (ini, auth file, pid, log, password): default `<state folder>/pgbouncer`."""
    run_as: str | None = None
    """The OS user pgbouncer runs as when oauth-rotator runs as root (pgbouncer refuses to run as root)."""
    required: bool | None = None
    """True: the sidecar's `/readiness` answers 503 while the supervised front is not running (default false)."""

    @property
    def is_enabled(self) -> bool:
        return self.enabled is not False

    @property
    def is_managed(self) -> bool:
        return self.manage is not False

    @property
    def effective_listen_address(self) -> str:
        return self.listen_address or DEFAULT_LISTEN_ADDRESS

    @property
    def effective_listen_port(self) -> int:
        return self.listen_port if self.listen_port is not None else DEFAULT_LISTEN_PORT

    @property
    def effective_user(self) -> str:
        return self.user or DEFAULT_LOCAL_USER

    @property
    def effective_sslmode(self) -> str:
        return self.server_tls_sslmode or "verify-full"


@dataclass
class HttpConfig:
    """The sidecar's HTTP endpoints (`http:`): probes and Prometheus metrics of the scheduler (docs/kubernetes.md)."""

    address: str | None = None
    """Where to listen: default 127.0.0.1 (a pod's probes need 0.0.0.0, the kubelet calls the pod's IP)."""
    port: int | None = None
    """The probes' port; they are off without one."""
    quitquitquit: bool | None = None
    """Serve `POST /quitquitquit` (stops the scheduler) on the admin port; off by default (docs/security.md)."""
    admin_port: int | None = None
    """The admin port, on 127.0.0.1 only (default 9092 with `quitquitquit`); never the probes' port."""

    @property
    def effective_address(self) -> str:
        return self.address if self.address is not None else "127.0.0.1"


@dataclass
class RotatorConfig:
    """The whole config file. `__version__` is the version this oauth-rotator writes; a file of an older version is
    brought up to it by `v<N>_migrate(raw) -> raw` static methods added here when the format changes (`migrate`)."""

    __version__ = 1

    targets: list[TargetConfig] = field(default_factory=list)
    profile: str | None = None
    workspace_url: str | None = None
    pgpass_file: str | None = None
    log_file: str | None = None
    margin_minutes: float | None = None
    interval_minutes: float | None = None
    credential_ttl_minutes: float | None = None
    """The lifetime asked for Autoscaling endpoints' credentials (`ttl`, where the SDK takes it; `doctor` says)."""
    service: bool | None = None
    exec_after: str | None = None
    """A command run (without a shell) after a cycle changed `.pgpass`, e.g. to reload a local pgbouncer."""
    exec_after_timeout: int | None = None
    pg_service: bool | None = None
    """Also write `pg_service.conf` entries (host, port, dbname, user, sslmode=require; never a password)."""
    pg_service_file: str | None = None
    notify: bool | None = None
    """Desktop notifications when a person must act (default on, where the desktop offers them)."""
    pgbouncer: PgbouncerConfig | None = None
    """A local pgbouncer front for clients that cannot read `.pgpass` (docs/clients.md)."""
    http: HttpConfig | None = None
    """The scheduler's HTTP endpoints, off unless a port is given."""

    @property
    def front(self) -> PgbouncerConfig | None:
        """The pgbouncer block when it is there and enabled, else None."""
        return self.pgbouncer if self.pgbouncer is not None and self.pgbouncer.is_enabled else None

    @property
    def effective_margin_minutes(self) -> float:
        return self.margin_minutes if self.margin_minutes is not None else DEFAULT_MARGIN_MINUTES

    @property
    def credential_ttl_seconds(self) -> int | None:
        """The `ttl` to ask for endpoints' credentials, in whole seconds; None: the API's default."""
        return None if self.credential_ttl_minutes is None else round(self.credential_ttl_minutes * 60)

    @property
    def effective_interval_minutes(self) -> float:
        return self.interval_minutes if self.interval_minutes is not None else DEFAULT_INTERVAL_MINUTES

    def validate(self) -> RotatorConfig:
        """Raise `ConfigError` naming the first thing wrong; returns self for chaining."""
        validate_raw(to_raw(self))
        return self


def _key_types(cls: type) -> dict[str, tuple[type, ...]]:
    """Each field of a config dataclass and the YAML types it accepts, read from its annotation.

    The strict checks are derived from the dataclasses, so a new setting is declared once: `float` fields take
    whole numbers too (YAML reads `10` as an int), `list[...]` fields take a list.
    """
    accepted: dict[str, tuple[type, ...]] = {}
    for name, hint in typing.get_type_hints(cls).items():
        if name.startswith("__"):
            continue
        union = typing.get_origin(hint) in {typing.Union, types.UnionType}
        kinds = [typing.get_origin(arg) or arg for arg in (typing.get_args(hint) if union else (hint,))]
        kinds = [kind for kind in kinds if kind is not types.NoneType]
        if float in kinds:
            kinds.insert(0, int)
        accepted[name] = tuple(dict.fromkeys(kinds))
    return accepted


_TARGET_KEYS = _key_types(TargetConfig)
_PGBOUNCER_KEYS = _key_types(PgbouncerConfig)
_HTTP_KEYS = _key_types(HttpConfig)
_TOP_KEYS = {"version": (int,), **_key_types(RotatorConfig), "pgbouncer": (dict,), "http": (dict,)}
PATH_KEYS = ("pgpass_file", "log_file", "pg_service_file")


def _check_keys(raw: Mapping[str, Any], known: dict[str, tuple[type, ...]], where: str) -> None:
    prefix = f"{where}." if where else ""
    for key, value in raw.items():
        if key not in known:
            raise InvalidSetting(where, f"unknown key {show(key)} (known keys: {', '.join(sorted(known))})")
        if value is None:
            continue
        if isinstance(value, bool) and bool not in known[key]:
            raise InvalidSetting(prefix + key, f"expected {known[key][0].__name__}, got {value!r}")
        if not isinstance(value, known[key]):
            raise InvalidSetting(prefix + key, f"expected {known[key][0].__name__}, got {show(value)}")


def validate_target(raw: Mapping[str, Any], where: str, names: Mapping[str, str] | None = None) -> None:
    """Check one target (a mapping of its keys); errors name `<where>.<key>`, or what `names` calls that."""
    with named_as(names):
        _check_keys(raw, _TARGET_KEYS, where)
        for key in ("name", "instance", "endpoint"):
            check_name(raw.get(key), f"{where}.{key}")
        for key in ("host", "user"):
            check_name(raw.get(key), f"{where}.{key}", wildcard=False)
        check_database_name(raw.get("database"), f"{where}.database")
        for i, host in enumerate(raw.get("extra_hosts") or []):
            if not isinstance(host, str):
                raise InvalidSetting(f"{where}.extra_hosts[{i}]", f"expected str, got {show(host)}")
            check_name(host, f"{where}.extra_hosts[{i}]", wildcard=False)
        if raw.get("instance") and raw.get("endpoint"):
            raise InvalidSetting(where, "give either instance or endpoint, not both")
        if not (raw.get("instance") or raw.get("endpoint") or raw.get("host")):
            raise InvalidSetting(where, "needs an instance, an endpoint or a host")
        endpoint = raw.get("endpoint")
        if endpoint and not ENDPOINT_PATTERN.match(endpoint):
            raise InvalidSetting(
                f"{where}.endpoint", f"expected projects/<p>/branches/<b>/endpoints/<e>, got {show(endpoint)}"
            )
        check_port(raw.get("port"), f"{where}.port")


def check_settings(raw: Mapping[str, Any], names: Mapping[str, str] | None = None) -> None:
    """Check the top-level settings present in `raw` (not `targets`), as `validate_raw` does.

    For entry points that get settings one by one (flags, keyword arguments) and may not have targets yet.
    """
    with named_as(names):
        _check_keys(raw, {k: v for k, v in _TOP_KEYS.items() if k not in {"version", "targets"}}, "")
        for key in ("profile",):
            check_text(raw.get(key), key)
        for key in PATH_KEYS:
            check_path_text(raw.get(key), key)
        check_command(raw.get("exec_after"))
        timeout = raw.get("exec_after_timeout")
        if timeout is not None and not 1 <= timeout <= 3600:
            raise InvalidSetting("exec_after_timeout", f"expected seconds between 1 and 3600, got {timeout!r}")
        check_workspace_url(raw.get("workspace_url"))
        check_minutes(raw.get("margin_minutes"), "margin_minutes", minimum=0)
        check_minutes(raw.get("interval_minutes"), "interval_minutes", minimum=1)
        check_credential_ttl(raw.get("credential_ttl_minutes"))
        if raw.get("pgbouncer") is not None:
            validate_pgbouncer(raw["pgbouncer"])
        if raw.get("http") is not None:
            _check_keys(raw["http"], _HTTP_KEYS, "http")
            check_text(raw["http"].get("address"), "http.address")
            check_port(raw["http"].get("port"), "http.port")
            check_port(raw["http"].get("admin_port"), "http.admin_port")


def validate_pgbouncer(raw: Mapping[str, Any], where: str = "pgbouncer") -> None:
    """Check the `pgbouncer:` block's keys and values (not the machine: see `check_pgbouncer_machine`)."""
    _check_keys(raw, _PGBOUNCER_KEYS, where)
    for key in ("listen_address", "user", "run_as"):
        check_text(raw.get(key), f"{where}.{key}")
    for key in ("unix_socket_dir", "server_tls_ca_file", "binary", "dir"):
        check_path_text(raw.get(key), f"{where}.{key}")
    check_port(raw.get("listen_port"), f"{where}.listen_port")
    password = raw.get("password")
    if password is not None and (not password or any(c in password for c in "\n\r\0") or len(password) > 1024):
        raise InvalidSetting(f"{where}.password", "must be 1-1024 characters, without line breaks or NUL")
    user = raw.get("user")
    if user is not None and '"' in user:
        raise InvalidSetting(f"{where}.user", f"cannot contain a double quote: {show(user)}")
    mode = raw.get("server_tls_sslmode")
    if mode is not None and mode not in SSLMODES:
        raise InvalidSetting(
            f"{where}.server_tls_sslmode",
            f"expected one of {', '.join(SSLMODES)}, got {show(mode)} (Lakebase requires TLS)",
        )


def migrate(raw: Any) -> Any:
    """A config as read from a file, brought up to this oauth-rotator's version by `RotatorConfig.v<N>_migrate`
    hooks (each takes the plain data of version N and returns that of version N + 1, with its `version`), as
    blueprint's `Installation.load` migrates. Anything that is not a mapping with a whole-number `version` below
    ours is returned as it is, for `validate_raw` to name what is wrong."""
    while isinstance(raw, dict):
        version = raw.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < RotatorConfig.__version__:
            return raw
        hook = getattr(RotatorConfig, f"v{version}_migrate", None)
        if hook is None:
            raise InvalidSetting("version", f"no migration from version {version}", fix="upgrade oauth-rotator")
        raw = hook(dict(raw))
        if not isinstance(raw, dict) or raw.get("version", 1) <= version:
            raise InvalidSetting("version", f"the migration from version {version} did not raise the version")
    return raw


def validate_raw(raw: Any, names: Mapping[str, str] | None = None) -> None:
    """Check a config as read from YAML (and migrated), strictly: unknown keys and wrong types are errors."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping of keys, got {type(raw).__name__}")
    with named_as(names):
        _check_keys(raw, _TOP_KEYS, "")
        version = raw.get("version", RotatorConfig.__version__)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidSetting(
                "version", f"expected a whole number (this oauth-rotator writes 1), got {show(version)}"
            )
        if version > RotatorConfig.__version__:
            raise InvalidSetting(
                "version",
                f"this config was written by a newer oauth-rotator (version {version}); "
                f"this one reads up to version {RotatorConfig.__version__}",
                fix="upgrade oauth-rotator",
            )
        check_settings({k: v for k, v in raw.items() if k not in {"version", "targets"}})
        targets = raw.get("targets") or []
        if not targets:
            raise InvalidSetting("targets", "no target configured (give an instance, an endpoint or a host)")
        labels: set[str] = set()
        for i, target in enumerate(targets):
            if not isinstance(target, dict):
                raise InvalidSetting(f"targets[{i}]", f"expected a mapping, got {show(target)}")
            validate_target(target, f"targets[{i}]")
            label = TargetConfig(**target).label
            if label in labels:
                raise InvalidSetting(
                    f"targets[{i}]", f"another target is also named {label!r}; give each a distinct name"
                )
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
    front = data.pop("pgbouncer", None)
    http = data.pop("http", None)
    return RotatorConfig(
        targets=targets,
        pgbouncer=PgbouncerConfig(**front) if front is not None else None,
        http=HttpConfig(**http) if http is not None else None,
        **data,
    )
