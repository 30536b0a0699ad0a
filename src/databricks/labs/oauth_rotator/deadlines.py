"""How long oauth-rotator waits for the workspace, and the daemon threads that hold every entry point to it.

The SDK sends its OIDC token request with no timeout, and a server that answers one byte a second never trips a
read timeout, so only a watchdog bounds a call. Every thread started here is a daemon thread: a entry point whose
watchdog gave up must be able to exit while a request is still blocked. (The interpreter joins the worker threads
of a `concurrent.futures.ThreadPoolExecutor` at exit, so one blocked request would keep the process alive until
the server answered.) Standard library only: the scheduler imports this module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from databricks.labs.oauth_rotator.errors import CredentialError

T = TypeVar("T")
R = TypeVar("R")

HTTP_TIMEOUT_SECONDS = 10.0
"""One HTTP call of the SDK (its OIDC token request excepted: it has no timeout)."""
RETRY_TIMEOUT_SECONDS = 20
"""The SDK's retries of transient errors, all of them together."""
ONCE_DEADLINE_SECONDS = 25.0
"""A one-shot entry point (`--once`, labs `rotate`/`psql`/`env`, `run_once()`) gives up on the workspace after this
long; with the start-up (importing the SDK), the process ends within about 30 s."""
LOCK_WAIT_SECONDS = 10.0
"""How long a write waits for another process's lock on `.pgpass` (or `status.json`) before it says who holds it:
well inside `ONCE_DEADLINE_SECONDS`, so the run reports the lock, not a workspace that seems unreachable."""
DOCTOR_DEADLINE_SECONDS = ONCE_DEADLINE_SECONDS
"""`doctor`'s workspace checks (the login, then every target at once), all of them together."""
IN_PROCESS_CYCLE_DEADLINE_SECONDS = 60.0
"""A cycle of the Python API's in-process scheduler (`run_daemon()`)."""
CYCLE_TIMEOUT_SECONDS = 90.0
"""The background scheduler stops a cycle's child process after this long."""


def run_with_deadline(work: Callable[[], T], seconds: float, *, what: str = "rotation") -> T:
    """Run `work` on a daemon thread and give up after `seconds` with a `CredentialError`, leaving it behind."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        # Everything, KeyboardInterrupt included, is handed to the calling thread, which re-raises it.
        except BaseException as err:  # pylint: disable=broad-exception-caught
            outcome["error"] = err

    worker = threading.Thread(target=target, name=f"oauth-rotator-{what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise CredentialError(f"{what} did not finish within {seconds:.0f} s (is the workspace reachable?)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def map_on_daemon_threads(work: Callable[[T], R], items: Sequence[T], *, limit: int, name: str) -> list[R]:
    """`[work(item) for item in items]`, at most `limit` at a time, each on a daemon thread; results in order.

    Every item is attempted: one that raises stops no other, and the first exception (in item order) is raised
    once all have ended. This waits for all of them: a caller that must end on time runs it under
    `run_with_deadline`.
    """
    results: list[Any] = [None] * len(items)
    errors: list[BaseException | None] = [None] * len(items)
    indexes = iter(range(len(items)))
    lock = threading.Lock()

    def take() -> int | None:
        with lock:
            return next(indexes, None)

    def drain() -> None:
        while (index := take()) is not None:
            try:
                results[index] = work(items[index])
            except BaseException as err:  # pylint: disable=broad-exception-caught  # raised by the caller below
                errors[index] = err

    workers = []
    for number in range(min(limit, len(items))):
        workers.append(threading.Thread(target=drain, name=f"{name}-{number}", daemon=True))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    first = next((err for err in errors if err is not None), None)
    if first is not None:
        raise first
    return results
