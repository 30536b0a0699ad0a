"""What a user asked a rotation for, after the entry point checked it: the config to read and the overrides.

A plain class with no imports: the console parses flags into it on the way to `--help`-fast paths, and the
scheduler hands it to each cycle's worker as JSON (paths and names only, never a secret).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: `--help` does without typing
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any


class RotationRequest:
    """A config file (or none, when flags name the target) and the settings that override it."""

    def __init__(
        self,
        config_path: Path | None,
        overrides: dict[str, Any] | None = None,
        *,
        once: bool = False,
        verify: bool = False,
        debug: bool = False,
        http_address: str | None = None,
        http_port: int | None = None,
        admin_port: int | None = None,
        quitquitquit: bool = False,
    ) -> None:
        self.config_path = config_path
        self.overrides = overrides or {}
        self.once = once
        self.verify = verify
        self.debug = debug
        self.http_address = http_address
        self.http_port = http_port
        """The sidecar's HTTP endpoints (`--http-port`); the scheduler's alone, never the worker's."""
        self.admin_port = admin_port
        self.quitquitquit = quitquitquit
        """`POST /quitquitquit` on the loopback admin port (`--quitquitquit`, `--admin-port`); off by default."""

    def to_worker(self) -> dict[str, Any]:
        """The worker's request: paths and names only, never a secret (those stay in the environment)."""
        return {
            "config": str(self.config_path) if self.config_path else None,
            "overrides": self.overrides,
            "debug": self.debug,
            "verify": self.verify,
        }

    @classmethod
    def from_worker(cls, raw: dict[str, Any]) -> RotationRequest:
        """The request a scheduler sent (`to_worker`), as the worker reads it from its stdin."""
        from pathlib import Path

        config = raw.get("config")
        overrides = raw.get("overrides") or {}
        if not isinstance(overrides, dict):
            from databricks.labs.oauth_rotator.errors import ConfigError

            raise ConfigError("worker: overrides must be a JSON object")
        return cls(
            Path(config) if config else None, overrides, verify=bool(raw.get("verify")), debug=bool(raw.get("debug"))
        )
