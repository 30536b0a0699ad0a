"""Fuzzing the two readers of untrusted bytes: the `.pgpass` parser (any file a user or tool left behind) and the
config loader (any file or nested data a user wrote). Only the product's own errors may come out: none at all
from `parse`/`lookup`, `PgpassFormatError` from `merge` for a value `.pgpass` cannot hold, `ConfigError` from the
config readers.
"""

from __future__ import annotations

import math
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.config import from_raw, to_raw, validate_raw
from databricks.labs.oauth_rotator.errors import ConfigError, PgpassFormatError
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.files.config_store import load_config

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Bytes that mean something to libpq's reader: separators, escapes, comments, line ends, NUL, a BOM, wildcards.
PGPASS_BYTES = st.lists(
    st.sampled_from([b":", b"\\", b"#", b"\n", b"\r", b"\0", b"*", b"\xef\xbb\xbf", b" ", b"h", b"5432", b"\xff"])
    | st.binary(max_size=8),
    max_size=60,
).map(b"".join)
FIELD = st.text(max_size=12)
PLAIN_FIELD = st.text(alphabet=st.characters(blacklist_characters="*\n\r\0"), min_size=1, max_size=12).filter(
    lambda s: s.strip() == s and s != "*"
)


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), PGPASS_BYTES), key=st.tuples(FIELD, FIELD, FIELD, FIELD))
def test_parse_and_lookup_take_any_bytes(data: bytes, key: tuple[str, str, str, str]):
    lines = pgpass.parse(data)
    assert b"".join(line.raw for line in lines) == data
    pgpass.lookup(data, *key)


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=400), PGPASS_BYTES),
    fields=st.tuples(FIELD, FIELD, FIELD, FIELD, st.text(max_size=40)),
)
def test_merge_takes_any_file_and_refuses_only_values_pgpass_cannot_hold(data: bytes, fields: tuple[str, ...]):
    entry = pgpass.PgpassEntry(*fields)
    try:
        merged = pgpass.merge(data, [entry])
    except PgpassFormatError:
        return
    pgpass.parse(merged)


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=400), PGPASS_BYTES),
    key=st.tuples(PLAIN_FIELD, PLAIN_FIELD, PLAIN_FIELD, PLAIN_FIELD),
    password=st.text(alphabet=st.characters(blacklist_characters="\n\r\0", blacklist_categories=["Cs"]), max_size=40),
)
def test_after_merge_libpq_would_use_our_password_whatever_the_file_held(
    data: bytes, key: tuple[str, str, str, str], password: str
):
    """The point of the product: whatever was in the file, libpq's lookup for our key finds our password."""
    try:
        merged = pgpass.merge(data, [pgpass.PgpassEntry(*key, password=password)])
    except PgpassFormatError:
        return
    assert pgpass.lookup(merged, *key) == password


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=5)
)
_TOP = [
    "version",
    "profile",
    "workspace_url",
    "pgpass_file",
    "log_file",
    "margin_minutes",
    "interval_minutes",
    "service",
    "targets",
]
_TARGET = ["name", "instance", "endpoint", "host", "extra_hosts", "port", "database", "user"]
_KEYS = st.sampled_from(_TOP + _TARGET) | st.text(max_size=8) | st.integers(max_value=3, min_value=0)
NESTED = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5), max_leaves=25
)
TARGETS = st.lists(
    st.dictionaries(st.sampled_from(_TARGET) | st.text(max_size=5), NESTED | st.text(max_size=30), max_size=4) | NESTED,
    max_size=3,
)
CONFIGS = (
    st.dictionaries(st.sampled_from(_TOP), NESTED, max_size=6).flatmap(
        lambda top: st.builds(lambda targets: {**top, "targets": targets}, TARGETS)
    )
    | NESTED
)


@FUZZ
@given(raw=CONFIGS)
def test_the_config_checks_take_any_nested_data_and_raise_only_config_errors(raw: Any):
    try:
        validate_raw(raw)
    except ConfigError:
        try:
            from_raw(raw)
        except ConfigError:
            return
        raise AssertionError("from_raw accepted what validate_raw refused") from None
    config = from_raw(raw)
    validate_raw(to_raw(config))  # what it accepted round-trips
    for target in config.targets:
        assert target.label and not math.isnan(float(target.effective_port))


def test_an_empty_version_is_a_config_error_naming_the_key():
    """Found by the fuzz test below: `version:` left empty once made validate_raw compare None with 1."""
    with pytest.raises(ConfigError, match="version"):
        validate_raw({"version": None, "targets": [{"instance": "sales"}]})


_DIR = Path(tempfile.mkdtemp(prefix="oauth-rotator-fuzz-"))
YAMLISH = st.lists(
    st.sampled_from([*"abc:-[]{}&*!|>'\"#%@`,? \n\t0123456789.", "targets", "version", "instance", "!!", "<<"]),
    max_size=80,
).map("".join)


@FUZZ
@given(
    content=st.one_of(
        st.binary(max_size=300),
        YAMLISH.map(str.encode),
        CONFIGS.map(lambda raw: yaml.safe_dump(raw, allow_unicode=True).encode() if _dumpable(raw) else b""),
    )
)
def test_the_config_file_loader_takes_any_bytes_and_raises_only_config_errors(content: bytes):
    path = _DIR / "config.yml"
    path.write_bytes(content)
    with suppress(ConfigError):
        load_config(path)


def _dumpable(raw: Any) -> bool:
    try:
        yaml.safe_dump(raw)
    except yaml.YAMLError:
        return False
    return True
