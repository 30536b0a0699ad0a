"""The config: targets, profile, files and timing, as versioned dataclasses, checked strictly before use.

The one set of checks every front door runs before it asks for a credential (the console, the labs commands, the
worker and the Python API): the settings, then the files a rotation will write. Stdlib only, so command-line flags
can be checked without importing the SDK; files are read and written by `config_store`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.paths import log_path_for, pg_service_path_for, pgpass_path_for
from databricks.labs.oauth_rotator.trust import check_trusted

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
        return self.margin_minutes if self.margin_minutes is not None else 10

    @property
    def effective_interval_minutes(self) -> float:
        return self.interval_minutes if self.interval_minutes is not None else 50

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
_PATH_KEYS = ("pgpass_file", "log_file", "pg_service_file")


class InvalidSetting(ConfigError):
    """A `ConfigError` about one setting, keyed as the config spells it (`interval_minutes`, `targets[0].port`).

    Every front door runs the same checks and then names the setting as its user typed it (`--interval`,
    `rotation_interval`), so the checks cannot drift apart while each message still points at the right word.
    """

    def __init__(self, key: str, problem: str, *, fix: str | None = None) -> None:
        super().__init__(f"{key}: {problem}" if key else problem, fix=fix)
        self.key = key
        self.problem = problem

    def named(self, names: Mapping[str, str]) -> InvalidSetting:
        """The same error, its key replaced by the caller's name for it (unchanged when `names` has none)."""
        name = names.get(self.key)
        return self if name is None or name == self.key else InvalidSetting(name, self.problem, fix=self.fix)


@contextmanager
def named_as(names: Mapping[str, str] | None) -> Iterator[None]:
    """Re-raise an `InvalidSetting` from the checks inside with the setting named as in `names`."""
    try:
        yield
    except InvalidSetting as err:
        raise err.named(names or {}) from None


def _check_keys(raw: Mapping[str, Any], known: dict[str, tuple[type, ...]], where: str) -> None:
    prefix = f"{where}." if where else ""
    for key, value in raw.items():
        if key not in known:
            raise InvalidSetting(where, f"unknown key {_show(key)} (known keys: {', '.join(sorted(known))})")
        if value is None:
            continue
        if isinstance(value, bool) and bool not in known[key]:
            raise InvalidSetting(prefix + key, f"expected {known[key][0].__name__}, got {value!r}")
        if not isinstance(value, known[key]):
            raise InvalidSetting(prefix + key, f"expected {known[key][0].__name__}, got {_show(value)}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_text(value: str | None, where: str) -> None:
    if value is None:
        return
    if not value or value != value.strip() or any(c in value for c in "\n\r\0"):
        raise InvalidSetting(
            where, f"must be non-empty, without surrounding spaces, line breaks or NUL: {_show(value)}"
        )
    if len(value) > 1024:
        raise InvalidSetting(where, "longer than 1024 characters")


def _check_path_text(value: str | None, where: str) -> None:
    if value is None:
        return
    if not value.strip() or value != value.strip() or any(c in value for c in "\n\r\0"):
        raise InvalidSetting(where, f"not a path: {_show(value)}")
    if len(value) > 1024:
        raise InvalidSetting(where, "longer than 1024 characters")


def _check_minutes(value: float | None, where: str, *, minimum: float) -> None:
    if value is not None and not minimum <= value <= MAX_MINUTES:
        raise InvalidSetting(where, f"expected minutes between {minimum:g} and {MAX_MINUTES}, got {value!r}")


def check_port(value: int | None, where: str = "port") -> None:
    """A TCP port number, 1-65535."""
    if value is not None and not 1 <= value <= 65535:
        raise InvalidSetting(where, f"expected a port number 1-65535, got {value!r}")


def check_database_name(value: str | None, where: str = "database") -> None:
    """A database name (or `*`), not a connection string: psql would read `host=...` as connection settings."""
    if value is None:
        return
    check_name(value, where)
    if "=" in value or value.startswith(("postgresql://", "postgres://")):
        raise InvalidSetting(
            where,
            f"expected a database name, got a connection string: {_show(value)}",
            fix="give just the name; host, port and user come from the config",
        )


def check_workspace_url(value: str | None, where: str = "workspace_url") -> None:
    if value is None:
        return
    parsed = urlparse(value)
    if parsed.scheme not in {"https", "http"} or not parsed.hostname or any(c.isspace() for c in value):
        raise InvalidSetting(where, f"not a workspace URL: {_show(value)} (expected https://<workspace host>)")


def check_command(value: str | None, where: str = "exec_after") -> None:
    """A command line we can split like a shell would, and run without one."""
    if value is None:
        return
    _check_text(value, where)
    try:
        words = shlex.split(value)
    except ValueError as err:
        raise InvalidSetting(where, f"cannot split {_show(value)}: {err}") from err
    if not words:
        raise InvalidSetting(where, "empty command")


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Control characters (ESC and its terminal sequences, CR, ...) and bidirectional overrides: none belongs in a name
that is written to `.pgpass`, logs and terminals (`text.printable` escapes the same set)."""


def check_name(value: str | None, where: str, *, wildcard: bool = True) -> None:
    """A name we write to `.pgpass`, logs and terminals: text without control characters; without `wildcard`, also
    without `*` (a host or user of `*` is libpq's wildcard, and offers the credential to every server or role)."""
    if value is None:
        return
    _check_text(value, where)
    if _CONTROL.search(value):
        raise InvalidSetting(where, f"must not contain control characters: {_show(value)}")
    if not wildcard and "*" in value:
        raise InvalidSetting(where, f"must not contain `*` (libpq's wildcard): {_show(value)}")


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
                raise InvalidSetting(f"{where}.extra_hosts[{i}]", f"expected str, got {_show(host)}")
            check_name(host, f"{where}.extra_hosts[{i}]", wildcard=False)
        if raw.get("instance") and raw.get("endpoint"):
            raise InvalidSetting(where, "give either instance or endpoint, not both")
        if not (raw.get("instance") or raw.get("endpoint") or raw.get("host")):
            raise InvalidSetting(where, "needs an instance, an endpoint or a host")
        endpoint = raw.get("endpoint")
        if endpoint and not ENDPOINT_PATTERN.match(endpoint):
            raise InvalidSetting(
                f"{where}.endpoint", f"expected projects/<p>/branches/<b>/endpoints/<e>, got {_show(endpoint)}"
            )
        check_port(raw.get("port"), f"{where}.port")


def check_settings(raw: Mapping[str, Any], names: Mapping[str, str] | None = None) -> None:
    """Check the top-level settings present in `raw` (not `targets`), as `validate_raw` does.

    For front doors that get settings one by one (flags, keyword arguments) and may not have targets yet.
    """
    with named_as(names):
        _check_keys(raw, {k: v for k, v in _TOP_KEYS.items() if k not in {"version", "targets"}}, "")
        for key in ("profile",):
            _check_text(raw.get(key), key)
        for key in _PATH_KEYS:
            _check_path_text(raw.get(key), key)
        check_command(raw.get("exec_after"))
        timeout = raw.get("exec_after_timeout")
        if timeout is not None and not 1 <= timeout <= 3600:
            raise InvalidSetting("exec_after_timeout", f"expected seconds between 1 and 3600, got {timeout!r}")
        check_workspace_url(raw.get("workspace_url"))
        _check_minutes(raw.get("margin_minutes"), "margin_minutes", minimum=0)
        _check_minutes(raw.get("interval_minutes"), "interval_minutes", minimum=1)
        if raw.get("pgbouncer") is not None:
            validate_pgbouncer(raw["pgbouncer"])
        if raw.get("http") is not None:
            _check_keys(raw["http"], _HTTP_KEYS, "http")
            _check_text(raw["http"].get("address"), "http.address")
            check_port(raw["http"].get("port"), "http.port")
            check_port(raw["http"].get("admin_port"), "http.admin_port")


def validate_pgbouncer(raw: Mapping[str, Any], where: str = "pgbouncer") -> None:
    """Check the `pgbouncer:` block's keys and values (not the machine: see `check_pgbouncer_machine`)."""
    _check_keys(raw, _PGBOUNCER_KEYS, where)
    for key in ("listen_address", "user", "run_as"):
        _check_text(raw.get(key), f"{where}.{key}")
    for key in ("unix_socket_dir", "server_tls_ca_file", "binary", "dir"):
        _check_path_text(raw.get(key), f"{where}.{key}")
    check_port(raw.get("listen_port"), f"{where}.listen_port")
    password = raw.get("password")
    if password is not None and (not password or any(c in password for c in "\n\r\0") or len(password) > 1024):
        raise InvalidSetting(f"{where}.password", "must be 1-1024 characters, without line breaks or NUL")
    user = raw.get("user")
    if user is not None and '"' in user:
        raise InvalidSetting(f"{where}.user", f"cannot contain a double quote: {_show(user)}")
    mode = raw.get("server_tls_sslmode")
    if mode is not None and mode not in SSLMODES:
        raise InvalidSetting(
            f"{where}.server_tls_sslmode",
            f"expected one of {', '.join(SSLMODES)}, got {_show(mode)} (Lakebase requires TLS)",
        )


def validate_raw(raw: Any, names: Mapping[str, str] | None = None) -> None:
    """Check a config as read from YAML, before blueprint's lenient unmarshal sees it."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping of keys, got {type(raw).__name__}")
    with named_as(names):
        _check_keys(raw, _TOP_KEYS, "")
        version = raw.get("version", RotatorConfig.__version__)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidSetting(
                "version", f"expected a whole number (this oauth-rotator writes 1), got {_show(version)}"
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
                raise InvalidSetting(f"targets[{i}]", f"expected a mapping, got {_show(target)}")
            validate_target(target, f"targets[{i}]")
            label = TargetConfig(**target).label
            if label in labels:
                raise InvalidSetting(
                    f"targets[{i}]", f"another target is also named {label!r}; give each a distinct name"
                )
            labels.add(label)


# ---- the files a rotation writes ---------------------------------------------------------------------------------


def check_file_path(path: Path, where: str) -> None:
    """A file we create or replace: not a directory, in an existing directory we can write to.

    The directory is that of the resolved path: a symlinked `.pgpass` is written next to the file it names.
    """
    if path.is_dir():
        raise InvalidSetting(where, f"{path} is a directory, not a file")
    folder = Path(os.path.realpath(path)).parent
    if not folder.is_dir() and paths.creatable_folder(folder):
        return  # %APPDATA%\\postgresql: libpq never creates it; the writer does
    if not folder.is_dir():
        state = "is not a directory" if folder.exists() else "does not exist"
        raise InvalidSetting(where, f"cannot write {path}: directory {folder} {state}")
    if not os.access(folder, os.W_OK | os.X_OK) and not _read_only_mount(folder):
        raise InvalidSetting(where, f"cannot write {path}: directory {folder} is not writable")


def check_folder_path(path: Path, where: str) -> None:
    """A folder we create when it is missing: its nearest existing ancestor must be a writable directory."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing == path and path.is_dir():
        return
    if not existing.is_dir():
        raise InvalidSetting(where, f"cannot create {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK) and not _read_only_mount(existing):
        raise InvalidSetting(where, f"cannot create {path}: directory {existing} is not writable")


def _read_only_mount(folder: Path) -> bool:
    """A file system mounted read-only is a fault that a rotation reports and retries (it gets remounted), not a
    setting that can never work: only permissions make a path unusable before a rotation."""
    statvfs = getattr(os, "statvfs", None)
    if statvfs is None:  # Windows
        return False
    try:
        return bool(statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_paths(
    config: RotatorConfig, names: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> None:
    """Refuse, before any credential is requested, files that could never be written: exit 2, not 1 later.

    Errors name the setting the path came from (`pgpass_file`, else `PGPASSFILE`; `DATABRICKS_LABS_STATE_DIR`),
    or what `names` calls it.
    """
    environ = os.environ if environ is None else environ
    with named_as(names):
        for key in _PATH_KEYS:
            _check_path_text(getattr(config, key), key)
        check_file_path(pgpass_path_for(config, environ), _source("pgpass_file", "PGPASSFILE", config, environ))
        check_file_path(log_path_for(config, environ), "log_file")
        if config.pg_service:
            where = _source("pg_service_file", "PGSERVICEFILE", config, environ)
            check_file_path(pg_service_path_for(config, environ), where)
        where = "DATABRICKS_LABS_STATE_DIR" if environ.get("DATABRICKS_LABS_STATE_DIR") else "state folder"
        check_folder_path(paths.state_dir(environ), where)
    check_trusted_paths(config, environ)


def check_trusted_paths(config: RotatorConfig, environ: Mapping[str, str] | None = None) -> None:
    """Refuse, before any credential is requested, files that another user could replace or read through a
    directory they control: `.pgpass` and its lock, the log, `pg_service.conf`, `status.json` (`trust.py`)."""
    environ = os.environ if environ is None else environ
    pgpass = Path(os.path.realpath(pgpass_path_for(config, environ)))
    wanted = [pgpass_path_for(config, environ), pgpass.with_name(pgpass.name + ".lock"), log_path_for(config, environ)]
    if config.pg_service:
        wanted.append(pg_service_path_for(config, environ))
    wanted.append(paths.status_file(environ))
    for path in wanted:
        check_trusted(path, for_write=True, environ=environ)


def _source(key: str, variable: str, config: RotatorConfig, environ: Mapping[str, str]) -> str:
    return variable if getattr(config, key) is None and environ.get(variable) else key


def check_config(
    config: RotatorConfig, names: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> RotatorConfig:
    """Every check a front door runs before it asks for a credential: the settings, then the files it writes.

    Raises `ConfigError` (exit code 2) naming the setting as `names` spells it; returns `config`.
    """
    validate_raw(to_raw(config), names)
    check_paths(config, names, environ)
    return config


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
