"""The one preflight: every check made before anything is requested or written, for every way in.

`--once`, labs `rotate` and the scheduler's worker (through `rotate.rotate_now`), the scheduler's start, the Python
API, `password` when it must mint, and install: each calls `preflight` with the config it is about to use. A setup
that could never work is a `ConfigError` (exit code 2) naming the setting as its user spelled it, before a
credential is requested or a file is touched.
"""

from __future__ import annotations

from databricks.labs.oauth_rotator.config_checks import check_config

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the scheduler and `password` do without typing
if TYPE_CHECKING:
    from collections.abc import Mapping

    from databricks.labs.oauth_rotator.config import RotatorConfig


def preflight(
    config: RotatorConfig,
    names: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    port: bool = True,
) -> RotatorConfig:
    """Check `config` and this machine: the settings, the files it names (writable, and controlled by the user
    alone), and the pgbouncer front when configured (installed, a user to run it as, and with `port`, its listen
    port free). Returns `config`; raises `ConfigError` (exit code 2).

    `port=False` for a scheduler's worker: its scheduler checked the port at start and its supervisor holds it.
    """
    check_config(config, names, environ)
    if config.front is not None:  # only then: the front's modules bring `shutil` and `hashlib` into the scheduler
        from databricks.labs.oauth_rotator.rotation.front import Front

        front = Front.of(config, environ)
        if front is not None:
            front.check(port=port)
    return config
