"""OS errors of a file operation as one FileWriteError that names the file, the step and what to do."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from databricks.labs.oauth_rotator.errors import FileWriteError

_FIXES = {
    errno.EACCES: "make the directory writable by you, or set PGPASSFILE to a file in one that is",
    errno.EROFS: "set PGPASSFILE to a file on a writable file system",
    errno.ENOSPC: "free some space on that disk",
}


def write_error(path: Path, action: str, err: OSError) -> FileWriteError:
    """The error for `action` on `path` that failed with `err`, with a fix when one is known."""
    code = errno.errorcode.get(err.errno or 0, "")
    reason = f"{err.strerror or err} ({code})" if code else f"{err.strerror or err}"
    return FileWriteError(f"cannot write {path}: {action} failed: {reason}", fix=_FIXES.get(err.errno or 0))


@contextmanager
def failure(path: Path, action: str) -> Iterator[None]:
    """Turn an OSError inside the block into `write_error(path, action, ...)`."""
    try:
        yield
    except FileWriteError:
        raise
    except OSError as err:
        raise write_error(path, action, err) from err
