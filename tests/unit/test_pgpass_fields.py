"""The `.pgpass` field escape and the credential fingerprint (`pgpass_fields.py`), as libpq reads them back."""

from __future__ import annotations

import hashlib

import pytest

from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.pgpass_fields import escape_fields, line_prefix, token_fingerprint, unescape_field


@pytest.mark.parametrize("token", ["", "eyJ.a.b", "ünïcode", "a\\:b"])
def test_the_fingerprint_is_the_first_16_hex_digits_of_sha256(token):
    assert token_fingerprint(token) == hashlib.sha256(token.encode()).hexdigest()[:16]


def test_a_written_line_is_read_back_by_libpq_rules():
    key = ("#h:1", "5432", "*", "a\\b@example.com")
    line = line_prefix(key) + escape_fields(["p:a\\ss"])[0]
    assert line.startswith(b"\\#h\\:1:5432:*:a\\\\b@example.com:")
    assert pgpass.lookup(line + b"\n", *key) == "p:a\\ss"
    assert unescape_field(line[len(line_prefix(key)) :]) == b"p:a\\ss"


def test_a_trailing_backslash_stays():
    assert unescape_field(b"ab\\") == b"ab\\"
