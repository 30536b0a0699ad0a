"""The parsed config, kept for the fast commands: `password` answers from it without importing PyYAML.

PyYAML (and its `re`) costs about twice Python's start-up, and `password` runs on every connection some clients
open. Rather than a second YAML reader for the part of YAML we think people write, the full path, which read the
file with PyYAML and passed the preflight, leaves what it read in `<state folder>/config.json`; the fast path uses
that only while it is the same file with the same bytes, and reads the file in full otherwise.

The entry is keyed by the config's real path, its identity (device, inode, size, mtime in ns) and the SHA-256 of
its bytes. Identity alone can miss an edit that keeps the size within the file system's timestamp granularity;
the digest cannot, and hashing a config of a few hundred bytes costs microseconds. The cache is trusted by the
config's own rule (`trust.py`): the file, and every folder to it, controlled by the user alone; it holds no
secret (the config holds none). Light tier: `os`, our JSON reader and the interpreter's SHA-256 only.
"""

from __future__ import annotations

import os

from databricks.labs.oauth_rotator import paths
from databricks.labs.oauth_rotator.__about__ import __version__
from databricks.labs.oauth_rotator.files import plainjson
from databricks.labs.oauth_rotator.pgpass_fields import sha256
from databricks.labs.oauth_rotator.trust import UntrustedPathError, trusted_path

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs a fifth of Python's start-up
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

CACHE_FORMAT = 1
"""Bumped when the entry's shape changes: an entry of another format is a miss."""


class ConfigSource:
    """A config file as read: its real path, identity, digest, and its settings as plain data (set by the reader)."""

    __slots__ = ("digest", "identity", "path", "raw")

    def __init__(self, path: str, identity: list[int], digest: str, raw: Any = None) -> None:
        self.path = path
        self.identity = identity
        self.digest = digest
        self.raw = raw

    @classmethod
    def of(cls, path: str | os.PathLike[str], data: bytes) -> ConfigSource:
        """The source of the bytes `data` just read from `path` (stat'ed now: read first, then stat, so an edit in
        between gives a newer identity that the next read will not match, never an old one with new bytes)."""
        real = os.path.realpath(path)
        return cls(real, identity_of(os.stat(real)), digest_of(data))


def identity_of(status: os.stat_result) -> list[int]:
    """Device, inode, size and modification time (ns) of a file."""
    return [status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns]


def digest_of(data: bytes) -> str:
    return str(sha256(data).hexdigest())


def cached_settings(config_path: str, environ: Mapping[str, str] | None = None) -> Any | None:
    """The settings the full path last read from `config_path`, when the file is still that file with those bytes
    and the cache passes the trust rule; else None (read the file in full). The config file's own trust is the
    caller's to check, first."""
    entry = _entry(environ)
    if entry is None or entry.get("path") != os.path.realpath(config_path) or entry.get("rotator") != __version__:
        return None
    try:
        with open(entry["path"], "rb") as file:
            status = os.fstat(file.fileno())
            data = file.read()
    except OSError:
        return None
    if entry.get("identity") != identity_of(status) or entry.get("sha256") != digest_of(data):
        return None
    return entry.get("settings")


def _entry(environ: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The cache's entry when it passes the trust rule and is of this format, else None."""
    cache = paths.config_cache_name(environ)
    try:
        trusted_path(cache, for_write=False, environ=environ)
        with open(cache, "rb") as file:
            entry = plainjson.loads(file.read())
    except (OSError, ValueError, UntrustedPathError):
        return None
    return entry if isinstance(entry, dict) and entry.get("format") == CACHE_FORMAT else None


def _key(source: ConfigSource) -> dict[str, Any]:
    """What makes an entry this file's: the file, its bytes, and the oauth-rotator that parsed (and migrated) them."""
    return {
        "format": CACHE_FORMAT,
        "rotator": __version__,
        "path": source.path,
        "identity": source.identity,
        "sha256": source.digest,
    }


def remember(source: ConfigSource, environ: Mapping[str, str] | None = None) -> None:
    """Keep what the full path read, once it passed the preflight (so a config that exits 2 leaves nothing
    behind). Best effort: a cache that cannot be written only costs the next `password` a full read."""
    from pathlib import Path

    from databricks.labs.oauth_rotator.errors import RotatorError
    from databricks.labs.oauth_rotator.files import writer

    entry = _entry(environ)
    if entry is not None and {k: entry.get(k) for k in _key(source)} == _key(source):
        return  # each cycle of the scheduler's workers reads the same file: no write (and fsync) for nothing
    entry = {**_key(source), "settings": source.raw}
    cache = Path(paths.config_cache_name(environ))
    try:
        writer.make_private_directories(cache.parent)
        writer.atomic_write(cache, plainjson.dumps(entry).encode("utf-8"), mode=0o600)
    except (OSError, RotatorError, TypeError, ValueError):
        pass  # the next `password` reads the file in full, and tries again
