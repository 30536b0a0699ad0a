"""The sidecar lock, in its own module since the writer was split by job (issue #24)."""

import pytest

from databricks.labs.oauth_rotator.errors import LockTimeoutError
from databricks.labs.oauth_rotator.files.lock import FileLock
from databricks.labs.oauth_rotator.hostos import HostOS


def test_a_held_lock_names_its_holder_and_is_released_on_exit(tmp_path):
    path = tmp_path / ".pgpass.lock"
    with FileLock(path), pytest.raises(LockTimeoutError, match=r"`\.pgpass` is locked by process \d+"):
        FileLock(path, timeout=0.05).acquire()
    with FileLock(path, timeout=0.05):
        pass
    assert path.exists()  # persistent: never deleted, so no one locks a file another process just unlinked


def test_under_windows_semantics_the_lock_opens_without_posix_only_flags(tmp_path):
    path = tmp_path / "pgpass.conf.lock"
    lock = FileLock(path, owner=(12345, 12345), host=HostOS.windows())  # no fchown where there are no owners
    with lock:
        assert path.read_text().strip().isdigit()
    lock.release()  # twice is harmless
