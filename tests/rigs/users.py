"""A second local user for attack tests: created with `useradd` for one test, removed again afterwards.

CI runs as root, so the test can create the attacker; elsewhere (not root, no `useradd`) the tests skip.
The attacker's steps run as that user: commands through `runuser -u NAME --`, Python steps in a forked child
that drops to the user's uid (forked, not exec'd: the interpreter may sit where the user cannot read).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class OtherUser:
    """A throwaway OS user: the hostile neighbour."""

    name: str
    uid: int
    gid: int

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """`argv` as this user (through `runuser`), its output captured."""
        return subprocess.run(
            ["runuser", "-u", self.name, "--", *argv], capture_output=True, text=True, check=False, timeout=60
        )

    def do(self, action: Callable[[], object]) -> str:
        """Run `action` in a forked child as this user; returns "" or the name and text of what it raised."""
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.close(read)
                os.setgroups([])
                os.setgid(self.gid)
                os.setuid(self.uid)
                try:
                    action()
                    outcome = ""
                except Exception as err:  # pylint: disable=broad-exception-caught  # reported to the parent
                    outcome = f"{type(err).__name__}: {err}"
                os.write(write, json.dumps(outcome).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            answer = pipe.read()
        os.waitpid(pid, 0)
        return str(json.loads(answer)) if answer else "the child died"


@contextmanager
def throwaway_user() -> Iterator[OtherUser]:
    """A new user with a unique name and no home directory, deleted (with anything it still runs) afterwards."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("creating a second user needs root and useradd")
    name = f"orot-{uuid.uuid4().hex[:10]}"
    _retry(["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh", name])
    try:
        entry = pwd.getpwnam(name)
        yield OtherUser(name, entry.pw_uid, entry.pw_gid)
    finally:
        subprocess.run(["pkill", "-KILL", "-U", name], capture_output=True, check=False)
        _retry(["userdel", name])


def _retry(argv: list[str]) -> None:
    """useradd/userdel lock /etc/passwd; parallel test workers may meet on the lock for a moment."""
    result = None
    for _ in range(20):
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return
        time.sleep(0.2)
    assert result is not None
    pytest.fail(f"{' '.join(argv)} failed: {result.stderr.strip()}")


@contextmanager
def sticky_directory() -> Iterator[Path]:
    """A fresh 1777 directory like /tmp (a shared spot where everyone may create files), removed afterwards."""
    with _scratch_directory("oauth-rotator-shared-", 0o1777) as directory:
        yield directory


@contextmanager
def reachable_directory() -> Iterator[Path]:
    """A fresh 0755 directory of root's that other users can reach (pytest's tmp_path sits under a 0700 one)."""
    with _scratch_directory("oauth-rotator-home-", 0o755) as directory:
        yield directory


@contextmanager
def _scratch_directory(prefix: str, mode: int) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    directory.chmod(mode)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
