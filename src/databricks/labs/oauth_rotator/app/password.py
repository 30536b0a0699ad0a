"""`password`: the current credential of one target, for clients that run a command for their password (pgAdmin's
password exec command, DBeaver's and Postico's pre-connect commands, node-postgres's `password` callback).

Such clients run it on every new connection, so it answers from the files whenever it can: the config (read by
`plainyaml`, without PyYAML or blueprint), `status.json` (by `plainjson`) and `.pgpass`. The line written for the
target that holds the credential `status.json` records (by its fingerprint) is printed while that credential has
more than the margin left before the expiry recorded with it: a few milliseconds, no SDK, no network. A line holding
someone else's credential (a concurrent rotator's, a pasted one) is read as libpq reads it and judged by its JWT
expiry. Only when neither will do is a credential minted, through a forced rotation cycle of that one target, so
that `.pgpass` and `status.json` hold it too: the next connection is answered from the file again instead of
minting again, psql gets the same credential, and the scheduler sees the target as fresh.

A failed refresh while the credential on file is still valid for `MIN_LEFT_SECONDS` prints that one (with a warning
on stderr): the margin is the rotator's head start, not the end of the credential's life.
"""

from __future__ import annotations

import os
import sys
import time

from databricks.labs.oauth_rotator.errors import ConfigError, CredentialError, RotatorError
from databricks.labs.oauth_rotator.files import plainjson, plainyaml

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs a fifth of Python's start-up
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, TextIO

    from databricks.labs.oauth_rotator.config import RotatorConfig

DEFAULT_MARGIN_MINUTES = 10
"""`RotatorConfig.effective_margin_minutes` without a `margin_minutes` (a unit test keeps the two equal)."""
MIN_LEFT_SECONDS = 60.0
"""A credential on file with less life than this is never printed: the client logs in with it after we exit."""


class ConfigSummary:
    """What `password` needs from the config: the target labels in order, the margin and the `.pgpass` setting."""

    __slots__ = ("labels", "margin_seconds", "pgpass_file")

    def __init__(self, labels: list[str], margin_seconds: float, pgpass_file: str | None) -> None:
        self.labels = labels
        self.margin_seconds = margin_seconds
        self.pgpass_file = pgpass_file

    def pick(self, name: str | None) -> str:
        """The label of the target called `name`, else the first: as `rotate.pick_target` picks (same error)."""
        if not name:
            return self.labels[0]
        if name not in self.labels:
            raise ConfigError(f"no target named {name!r} (configured: {', '.join(self.labels)})")
        return name


# ---- paths, as paths.py finds them, without pathlib ------------------------------------------------------------


def config_file_name(environ: Mapping[str, str]) -> str:
    """`paths.default_config_file()` as a string (a unit test keeps the two equal)."""
    explicit = environ.get("DATABRICKS_LABS_CONFIG_DIR")
    folder = explicit or os.path.join(_home(environ), ".databricks", "labs", "oauth-rotator", "config")
    return os.path.join(folder, "config.yml")


def pgpass_file_name(configured: str | None, environ: Mapping[str, str], *, platform: str = sys.platform) -> str:
    """`paths.pgpass_path_for(config)` as a string: the configured file, else PGPASSFILE, else the default."""
    if configured:
        return os.path.expanduser(configured)
    if environ.get("PGPASSFILE"):
        return environ["PGPASSFILE"]
    if platform == "win32":
        appdata = environ.get("APPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Roaming")
        return os.path.join(appdata, "postgresql", "pgpass.conf")
    return os.path.join(environ.get("HOME") or _passwd_home(), ".pgpass")


def _home(environ: Mapping[str, str]) -> str:
    return environ.get("HOME") or os.path.expanduser("~")


def _passwd_home() -> str:
    import pwd  # POSIX only

    return pwd.getpwuid(os.geteuid()).pw_dir


# ---- reading the files -----------------------------------------------------------------------------------------


def read_summary(config_path: str) -> ConfigSummary | None:
    """The config's targets, margin and `.pgpass` setting; None when the file is not one `password` can read this
    way (unreadable, not YAML, a value of the wrong type): then the full loader reads it, and says what is wrong.

    A missing file is a `ConfigError` at once, as the full loader would raise it.
    """
    try:
        with open(config_path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        raise ConfigError(
            f"{config_path}: no such config file", fix="run `databricks labs oauth-rotator configure`"
        ) from None
    except (OSError, UnicodeDecodeError):
        return None
    try:
        raw = plainyaml.loads(text)
    except Exception:  # pylint: disable=broad-exception-caught  # yaml.YAMLError, RecursionError: the loader says
        return None
    return summary_of(raw)


def summary_of(raw: Any) -> ConfigSummary | None:
    """`read_summary` of config data already parsed; None when any value it needs has the wrong type."""
    version = raw.get("version", 1) if isinstance(raw, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or version != 1:
        return None
    labels = _labels(raw.get("targets"))
    if not labels:
        return None
    margin = raw.get("margin_minutes")
    if margin is None:
        margin = DEFAULT_MARGIN_MINUTES
    if isinstance(margin, bool) or not isinstance(margin, (int, float)):
        return None
    pgpass_file = raw.get("pgpass_file")
    if pgpass_file is not None and not isinstance(pgpass_file, str):
        return None
    return ConfigSummary(labels, float(margin) * 60, pgpass_file)


def _labels(targets: Any) -> list[str] | None:
    """Each target's label (`TargetConfig.label`: name, else instance, endpoint or host), in order."""
    if not isinstance(targets, list):
        return None
    labels = []
    for target in targets:
        if not isinstance(target, dict):
            return None
        label = next((target[k] for k in ("name", "instance", "endpoint", "host") if target.get(k)), None)
        if not isinstance(label, str):
            return None
        labels.append(label)
    return labels


def recorded_target(status_path: str, label: str) -> dict[str, Any] | None:
    """The target's entry in `status.json` as plain data; None when there is none or the file cannot be read."""
    try:
        with open(status_path, "rb") as file:
            raw = plainjson.loads(file.read())
    except (OSError, ValueError):
        return None
    targets = raw.get("targets") if isinstance(raw, dict) else None
    target = targets.get(label) if isinstance(targets, dict) else None
    return target if isinstance(target, dict) else None


def _keys(target: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    keys = target.get("keys")
    if not isinstance(keys, list):
        return []
    return [(k[0], k[1], k[2], k[3]) for k in keys if isinstance(k, list) and len(k) == 4 and _all_text(k)]


def _all_text(values: list[Any]) -> bool:
    return all(isinstance(v, str) for v in values)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _line_prefix(key: tuple[str, str, str, str]) -> bytes:
    """The start of the line `pgpass.format_entry` writes for `key`: its fields escaped, then a colon."""
    fields = [value.encode("utf-8").replace(b"\\", b"\\\\").replace(b":", b"\\:") for value in key]
    if fields[0].startswith(b"#"):
        fields[0] = b"\\" + fields[0]
    return b":".join(fields) + b":"


def _unescaped(raw: bytes) -> bytes:
    """A password field as `format_entry` escaped it, read back (`\\x` is `x`)."""
    if b"\\" not in raw:
        return raw
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i : i + 1] == b"\\" and i + 1 < len(raw):
            i += 1
        out += raw[i : i + 1]
        i += 1
    return bytes(out)


def fingerprint(token: str) -> str:
    """`tokeninfo.token_fingerprint`, without importing `re`, `json` and `base64` for it (a test keeps them equal)."""
    try:
        from _sha2 import sha256  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found, no-redef, unused-ignore]
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment, unused-ignore]
    return str(sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:16])


def recorded_credential(data: bytes, target: Mapping[str, Any]) -> tuple[str, float] | None:
    """The credential `status.json` records for the target, found on one of its lines, and its recorded expiry.

    A line counts only when its password has the recorded fingerprint, so whatever else the file holds (comments,
    other tools' lines, a line libpq would take first) cannot make this print anything but our credential.
    """
    recorded, expires_at = target.get("fingerprint"), _number(target.get("expires_at"))
    if not isinstance(recorded, str) or expires_at is None:
        return None
    lines = data.split(b"\n")
    for key in _keys(target):
        prefix = _line_prefix(key)
        for line in lines:
            if not line.startswith(prefix):
                continue
            field = line[len(prefix) :].rstrip(b"\r")
            try:
                password = _unescaped(field).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if password and fingerprint(password) == recorded:
                return password, expires_at
    return None


def libpq_credential(data: bytes, target: Mapping[str, Any]) -> tuple[str, float] | None:
    """What libpq would send on the target's first line and its JWT expiry, when it is not ours (a concurrent
    rotator's, a pasted one); None when it has no readable expiry. Imports `pgpass` (and `re`): the rare case."""
    keys = _keys(target)
    if not keys:
        return None
    from databricks.labs.oauth_rotator.files import pgpass
    from databricks.labs.oauth_rotator.lakebase.tokeninfo import jwt_expiry

    password = pgpass.lookup_many(data, keys[:1]).get(keys[0])
    if not password:
        return None
    expiry = jwt_expiry(password)
    return (password, expiry) if expiry is not None else None


def credential_on_file(
    summary: ConfigSummary, label: str, *, environ: Mapping[str, str], now: float, left: float
) -> tuple[str, float] | None:
    """The target's credential in `.pgpass` and its expiry, when it has more than `left` seconds to live."""
    from databricks.labs.oauth_rotator.app.status import status_file_name

    target = recorded_target(status_file_name(environ), label)
    if target is None:
        return None
    try:
        with open(pgpass_file_name(summary.pgpass_file, environ), "rb") as file:
            data = file.read()
    except OSError:
        return None
    for find in (recorded_credential, libpq_credential):
        found = find(data, target)
        if found is not None and found[1] - now > left:
            return found
    return None


# ---- the command -----------------------------------------------------------------------------------------------


def current_password(
    config_path: str,
    name: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    now: float | None = None,
    pin: bool = False,
    debug: bool = False,
    err: TextIO | None = None,
) -> str:
    """The credential to log in to target `name` (the first target without one) with, as `password` prints it.

    From `.pgpass` while it has more than the config's margin left; else minted now by a forced cycle of that
    target (bounded by `ONCE_DEADLINE_SECONDS`; `pin` makes the config's profile decide the login, as the labs
    commands do), which writes it to `.pgpass` too. Bad usage is a `ConfigError`, a failed refresh with nothing
    usable on file a `CredentialError` (or the cycle's own error).
    """
    environ = os.environ if environ is None else environ
    now = time.time() if now is None else now
    summary = read_summary(config_path)
    if summary is not None:
        label = summary.pick(name)
        found = credential_on_file(summary, label, environ=environ, now=now, left=summary.margin_seconds)
        if found is not None:
            return found[0]
    return refreshed_password(config_path, name, environ=environ, pin=pin, debug=debug, err=err)


def refreshed_password(
    config_path: str,
    name: str | None,
    *,
    environ: Mapping[str, str],
    pin: bool = False,
    debug: bool = False,
    err: TextIO | None = None,
) -> str:
    """A forced rotation cycle of the one target (every config check first), then its credential as written.

    The cycle logs to the config's log file only: stderr is for `password`'s own one line.
    """
    summary, failure = _rotate_one(config_path, name, environ=environ, pin=pin, debug=debug)
    label = summary.labels[0]
    now = time.time()
    if failure is None:  # just written: printed whatever its lifetime (the API decides that)
        found = credential_on_file(summary, label, environ=environ, now=now, left=0.0)
        if found is None:
            raise CredentialError(f"{label}: rotated, but its credential is not in .pgpass")
        return found[0]
    found = credential_on_file(summary, label, environ=environ, now=now, left=MIN_LEFT_SECONDS)
    if found is None:
        raise failure
    from databricks.labs.oauth_rotator.text import human_duration

    print(
        f"warning: could not refresh {label} ({failure}); the credential on file is valid for "
        f"{human_duration(found[1] - now)} more",
        file=err if err is not None else sys.stderr,
    )
    return found[0]


def _rotate_one(
    config_path: str, name: str | None, *, environ: Mapping[str, str], pin: bool, debug: bool
) -> tuple[ConfigSummary, RotatorError | None]:
    """Every config check, then a forced cycle of the one target under the one-shot deadline: the target (as a
    summary of one) and its failure, if any."""
    from pathlib import Path

    from databricks.labs.oauth_rotator.app.rotate import build_cycle, pick_target
    from databricks.labs.oauth_rotator.config import check_paths
    from databricks.labs.oauth_rotator.deadlines import ONCE_DEADLINE_SECONDS, run_with_deadline
    from databricks.labs.oauth_rotator.files.config_store import load_config
    from databricks.labs.oauth_rotator.lakebase.workspace import pin_profile

    config = load_config(Path(config_path))
    target = pick_target(config, name)
    check_paths(config, environ=environ)
    if pin:
        pin_profile(config.profile)
    _log_to_file(config, environ, debug=debug)
    cycle = build_cycle(config)
    report = run_with_deadline(
        lambda: cycle.run(force=True, only={target.label}), ONCE_DEADLINE_SECONDS, what="credential"
    )
    summary = ConfigSummary([target.label], config.effective_margin_minutes * 60, config.pgpass_file)
    return summary, report.failed.get(target.label)


def _log_to_file(config: RotatorConfig, environ: Mapping[str, str], *, debug: bool) -> None:
    import logging

    from databricks.labs.oauth_rotator.files.logs import setup_logging
    from databricks.labs.oauth_rotator.paths import log_path_for

    setup_logging(log_path_for(config, environ), level=logging.DEBUG if debug else logging.INFO, to_stream=False)
