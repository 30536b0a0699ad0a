import errno
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.errors import FileWriteError
from databricks.labs.oauth_rotator.files.failures import failure, write_error


def test_an_os_error_becomes_one_message_with_the_step_and_a_fix():
    err = write_error(Path("/x/.pgpass"), "renaming", OSError(errno.ENOSPC, "No space left on device"))
    assert str(err).startswith("cannot write /x/.pgpass: renaming failed: No space left on device (ENOSPC)")
    assert err.fix == "free some space on that disk"


def test_failure_converts_os_errors_and_passes_our_own():
    with pytest.raises(FileWriteError, match="listing failed"), failure(Path("/x"), "listing"):
        raise PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(FileWriteError, match=r"^ours$"), failure(Path("/x"), "listing"):
        raise FileWriteError("ours")
