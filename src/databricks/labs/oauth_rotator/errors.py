"""The errors oauth-rotator raises on purpose, each saying whether to retry and who must act."""

from __future__ import annotations


class RotatorError(Exception):
    """Base of every error the product raises on purpose.

    Attributes:
        exit_code: what a command exits with when this error ends it (1: rotation failed, 2: bad usage).
        retryable: whether trying again later, unchanged, may succeed (network faults, 5xx, lock contention).
        needs_person: whether a person must act first (log in again, fix a permission, fix the config).
    """

    exit_code = 1
    retryable = False
    needs_person = False

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix
        """What the user can do about it, shown after the message (e.g. a command to run)."""

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message}; {self.fix}" if self.fix else message


class ConfigError(RotatorError, ValueError):
    """Bad usage or configuration: nothing was written and no credential was requested."""

    exit_code = 2
    needs_person = True


class PgpassFormatError(RotatorError, ValueError):
    """A value that libpq's password file cannot represent (newline, carriage return, NUL)."""

    exit_code = 2
    needs_person = True


class FileWriteError(RotatorError, OSError):
    """A file could not be written; the previous version of the file is untouched.

    A person must act (free space, fix permissions), but trying again costs nothing, so it is retried on the
    ordinary backoff and recovers as soon as the cause is gone.
    """

    retryable = True
    needs_person = True


class LockTimeoutError(FileWriteError):
    """Another process held the file's lock for longer than we wait."""

    retryable = True
    needs_person = False


class CredentialError(RotatorError):
    """A credential could not be obtained this time; worth retrying with backoff."""

    retryable = True


class NeedsPersonError(CredentialError):
    """A credential cannot be obtained until a person acts (log in, grant access, fix the target)."""

    retryable = False
    needs_person = True
