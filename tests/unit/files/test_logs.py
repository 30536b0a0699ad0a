import io
import logging
import secrets
import stat

from databricks.labs.oauth_rotator.files.logs import setup_logging
from databricks.labs.oauth_rotator.secrets import redact

JWT = "eyJhbGciOiJub25lIn0.eyJleHAiOjE3NjcyMjU2MDB9.c2lnbmF0dXJl"


def test_redact_removes_tokens_secrets_and_passwords():
    pat = "dapi" + secrets.token_hex(16)  # a personal access token's shape, made up at run time
    text = redact(
        f"token {JWT} and Authorization: Bearer abc.def and client_secret=s3cr3t&x=1 password: 'hunter2' pat {pat}"
    )
    for secret in (JWT, "abc.def", "s3cr3t", "hunter2", pat):
        assert secret not in text
    assert "<redacted>" in text


def test_log_records_and_exceptions_are_redacted_in_the_original_format(tmp_path):
    log_file = tmp_path / "rotator.log"
    stream = io.StringIO()
    root = logging.getLogger("test-redaction-root")
    setup_logging(log_file, stream=stream, root=root)
    logger = root.getChild("databricks.labs.oauth_rotator")
    logger.setLevel(logging.INFO)
    logger.info("issued %s", JWT)
    try:
        raise ValueError(f"server said {JWT}")
    except ValueError:
        logger.exception("failed")
    for handler in root.handlers:
        handler.flush()
    written = log_file.read_text()
    assert JWT not in written and JWT not in stream.getvalue()
    assert " - INFO - issued <redacted>" in written
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600


# ---- a hostile neighbour and the log (issue 19) -------------------------------------------------------------------


def _log_once(log_file, name):
    """setup_logging, one record, every handler closed again; returns what reached the stream."""
    stream = io.StringIO()
    root = logging.getLogger(name)
    setup_logging(log_file, stream=stream, root=root)
    root.getChild("databricks.labs.oauth_rotator").warning("rotated inst1")
    for handler in list(root.handlers):
        handler.close()
        root.removeHandler(handler)
    return stream.getvalue()


def test_a_log_symlinked_to_the_victims_profile_by_another_user_is_refused():
    import os

    import pytest

    from databricks.labs.oauth_rotator.trust import UntrustedPathError
    from tests.rigs.users import reachable_directory, sticky_directory, throwaway_user

    with throwaway_user() as attacker, sticky_directory() as shared, reachable_directory() as home:
        profile = home / ".profile"
        profile.write_text("export PATH\n")
        link = shared / "rotator.log"
        assert attacker.run("ln", "-s", str(profile), str(link)).returncode == 0
        with pytest.raises(UntrustedPathError, match=f"the entry on the way to {link} belongs to uid {attacker.uid}"):
            _log_once(link, "log-link-attack")
        assert profile.read_text() == "export PATH\n"
        assert stat.S_IMODE(os.stat(profile).st_mode) == 0o644


def test_a_world_writable_log_another_user_created_first_is_refused():
    import pytest

    from databricks.labs.oauth_rotator.trust import UntrustedPathError
    from tests.rigs.users import sticky_directory, throwaway_user

    with throwaway_user() as attacker, sticky_directory() as shared:
        log_file = shared / "rotator.log"
        assert attacker.run("sh", "-c", f"umask 000; : > {log_file}").returncode == 0
        with pytest.raises(
            UntrustedPathError, match=f"the entry on the way to {log_file} belongs to uid {attacker.uid}"
        ):
            _log_once(log_file, "log-precreated-attack")
        assert log_file.read_text() == ""


def test_our_own_world_readable_log_is_made_private_before_anything_is_appended(tmp_path):
    log_file = tmp_path / "rotator.log"
    log_file.write_text("old\n")
    log_file.chmod(0o666)
    _log_once(log_file, "log-own-open")
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert "rotated inst1" in log_file.read_text()


def test_a_log_swapped_for_a_symlink_after_the_check_is_not_followed(tmp_path, capsys):
    """The handler opens the log lazily: O_NOFOLLOW closes the gap between the check and the first record."""
    log_file, victim = tmp_path / "rotator.log", tmp_path / ".profile"
    victim.write_text("export PATH\n")
    stream = io.StringIO()
    root = logging.getLogger("log-swap")
    setup_logging(log_file, stream=stream, root=root)
    log_file.symlink_to(victim)
    root.getChild("databricks.labs.oauth_rotator").warning("rotated inst1")
    root.getChild("databricks.labs.oauth_rotator").warning("rotated inst2")
    for handler in list(root.handlers):
        handler.close()
        root.removeHandler(handler)
    assert victim.read_text() == "export PATH\n"
    err = capsys.readouterr().err
    assert err.count("cannot write the log") == 1 and "Traceback" not in err


def test_under_pythonw_without_stderr_the_records_go_to_the_log_file(tmp_path):
    """`pythonw.exe` (what the Windows task runs) sets `sys.stderr` and `sys.__stderr__` to None (the `sys`
    documentation, "under some conditions stdin, stdout and stderr ... can be None"): the scheduler's lines
    must land in the default log file, not nowhere."""
    import os
    import subprocess
    import sys

    script = (
        "import sys, logging; sys.stderr = sys.__stderr__ = None\n"
        "from databricks.labs.oauth_rotator.files.logs import setup_logging\n"
        "setup_logging(None)\n"
        "logging.getLogger('databricks.labs.oauth_rotator.rotation.daemon').error('the configuration cannot be used')\n"
    )
    env = {**os.environ, "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    log = (tmp_path / ".databricks_oauth_rotator.log").read_text()
    assert log.endswith(" - ERROR - the configuration cannot be used\n")
