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
