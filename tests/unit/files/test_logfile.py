"""The log file: created 0600, made private when it was not, and never anything but a regular file of ours."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.files.logfile import PrivateRotatingFileHandler

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX modes, FIFOs and owners")


def log_once(path: Path, message: str = "Rotated sales") -> None:
    handler = PrivateRotatingFileHandler(path, maxBytes=1024, backupCount=1, delay=True)  # as setup_logging opens it
    try:
        handler.emit(logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None))
    finally:
        handler.close()


def test_a_new_log_is_created_0600_under_any_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        log_once(tmp_path / "rotator.log")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "rotator.log").stat().st_mode) == 0o600
    assert "Rotated sales" in (tmp_path / "rotator.log").read_text()


def test_a_log_others_could_read_is_made_private_before_anything_is_appended(tmp_path: Path) -> None:
    path = tmp_path / "rotator.log"
    path.write_text("earlier\n")
    path.chmod(0o644)
    log_once(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("earlier\n")


def test_a_fifo_or_a_symlink_planted_as_the_log_is_refused_once_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    log_once(fifo)  # O_NONBLOCK: fails at once instead of waiting for a reader
    link = tmp_path / "link.log"
    link.symlink_to(tmp_path / "elsewhere.log")
    log_once(link)
    assert not (tmp_path / "elsewhere.log").exists()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert all(line.startswith("oauth-rotator: cannot write the log ") for line in err)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give the file away")
def test_a_log_another_user_created_first_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rotator.log"
    path.write_text("theirs\n")
    os.chown(path, 65534, 65534)
    log_once(path)
    assert path.read_text() == "theirs\n"
    assert "belongs to uid 65534" in capsys.readouterr().err
