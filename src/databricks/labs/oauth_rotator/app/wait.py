"""`wait`: until every target of the config (or the one named) has a credential on file that outlives the margin.

For an app container's start (`until databricks-oauth-rotator wait; do sleep 1; done`), an init step or a script.
It reads files only, with the light tier's reader of the credential on file (the one `password` answers from:
`app/password.py`), so it never imports the SDK and answers as fast as `status`.
"""

from __future__ import annotations

import os
import time

from databricks.labs.oauth_rotator.app.password import config_summary, credential_on_file
from databricks.labs.oauth_rotator.app.password_file import read_status
from databricks.labs.oauth_rotator.errors import RotatorError

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs a fifth of Python's start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

DEFAULT_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.2
"""A few looks a second: a file read each, nothing more."""


class NotReadyError(RotatorError):
    """Some targets had no credential on file that outlives the margin when the time was up (exit 1)."""

    exit_code = 1


def not_ready(config_path: str, name: str | None, *, environ: Mapping[str, str], now: float) -> list[str]:
    """The labels of the targets (all, or the one called `name`) without a credential on file beyond the margin."""
    summary = config_summary(config_path, environ)
    labels = [summary.pick(name)] if name else summary.labels
    status = read_status(environ)  # once a look, not once a target
    missing = []
    for label in labels:
        if credential_on_file(summary, label, environ=environ, now=now, status=status) is None:
            missing.append(label)
    return missing


def wait_until_ready(
    config_path: str,
    name: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return as soon as every target asked for is ready; `NotReadyError` naming the others at the timeout. A config
    that cannot be read, or an unknown target, is a `ConfigError` at once (exit 2): waiting would not fix it."""
    environ = os.environ if environ is None else environ
    deadline = clock() + max(0.0, timeout)
    while True:
        missing = not_ready(config_path, name, environ=environ, now=clock())
        if not missing:
            return
        if clock() >= deadline:
            raise NotReadyError(f"not ready after {timeout:g} s: {', '.join(missing)}")
        sleep(min(POLL_SECONDS, max(0.0, deadline - clock())))
