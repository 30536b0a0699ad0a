"""Measuring child processes: wall time, CPU and peak RSS of one command, and the environment a child gets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import BENCH_DIR, BenchError

FLOOR_SDK_SCRIPT = BENCH_DIR / "floor_sdk_call.py"


SPAWN_SCRIPT = BENCH_DIR / "spawn.py"


FLOOR_SDK_LABEL = "SDK credential call in a bare process"


CHILD_TIMEOUT_SECONDS = 120.0


_STRIPPED_ENV_PREFIXES = ("DATABRICKS_", "PG", "PYTHONPROFILEIMPORTTIME", "PYTHONTRACEMALLOC", "PYTHONDEVMODE")


@dataclass(frozen=True)
class ChildRun:
    """One command, from fork to reaping: wall time, and the CPU and peak RSS of that process alone."""

    wall: float
    cpu: float
    max_rss_mib: float
    stdout: bytes
    stderr: bytes


def run_child(
    argv: Sequence[str], *, env: Mapping[str, str], stdin: bytes = b"", timeout: float = CHILD_TIMEOUT_SECONDS
) -> ChildRun:
    """Run `argv` to its end under the `spawn.py` launcher, which measures that one process with `os.wait4`.

    A non-zero exit is a `BenchError` with the end of the child's stderr.
    """
    report_read, report_write = os.pipe()
    launcher = [sys.executable, "-S", "-I", str(SPAWN_SCRIPT), str(report_write), *argv]
    with tempfile.TemporaryFile() as err, os.fdopen(report_read, "rb") as report:
        try:
            child = subprocess.Popen(
                launcher,
                env=dict(env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                pass_fds=(report_write,),
                start_new_session=True,  # so the watchdog can kill the launcher and the command together
            )
        finally:
            os.close(report_write)
        watchdog = threading.Timer(timeout, lambda: _kill_group(child))
        watchdog.start()
        try:
            out = _exchange(child, stdin)
            child.wait()
        finally:
            watchdog.cancel()
        fields = report.read().split()
        err.seek(0)
        errors = err.read()
    if len(fields) != 4:
        raise BenchError(f"{' '.join(argv[:3])} ... was not measured (killed after {timeout:g} s?): {tail(errors)}")
    wall, cpu, max_rss_kib, exit_code = float(fields[0]), float(fields[1]), int(fields[2]), int(fields[3])
    if exit_code != 0:
        raise BenchError(f"{' '.join(argv[:3])} ... exited {exit_code}: {tail(errors)}")
    return ChildRun(wall, cpu, max_rss_kib / 1024, out, errors)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


def _exchange(child: subprocess.Popen[bytes], stdin: bytes) -> bytes:
    """Send `stdin` (small: it fits the pipe buffer), close it, read stdout to its end."""
    assert child.stdin is not None and child.stdout is not None
    with suppress(BrokenPipeError):
        child.stdin.write(stdin)
    child.stdin.close()
    out = child.stdout.read()
    child.stdout.close()
    return out


def tail(data: bytes, lines: int = 5) -> str:
    return " | ".join(data.decode("utf-8", "replace").strip().splitlines()[-lines:])


def clean_env() -> dict[str, str]:
    """Our environment without Databricks, libpq or profiling settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_ENV_PREFIXES)}


def child_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """`clean_env()` with a private HOME and state folder, plus `extra`."""
    env = clean_env()
    env.update(HOME=str(home), DATABRICKS_LABS_STATE_DIR=str(home / "state"))
    env.update(extra or {})
    return env


def with_bytecode(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without `PYTHONDONTWRITEBYTECODE`: compiled modules are cached (`__pycache__`, ignored by git) and read
    back, as they are in an install, for subject and floor alike.

    With it (some machines set it), every run of a command compiles this package's modules from source again,
    which an install does once; the standard library and site-packages have their bytecode either way.
    """
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables of this process for a block (in-process benchmarks), then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def rotator_command() -> list[str]:
    """The `databricks-oauth-rotator` console script next to this Python, as users run it."""
    script = Path(sys.executable).with_name("databricks-oauth-rotator")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "databricks.labs.oauth_rotator"]


def stop_process(process: subprocess.Popen[Any], *, grace: float) -> int:
    """SIGTERM, then SIGKILL after `grace` seconds; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
