"""`plainjson` answers as `json` does: the same values, the same errors, the same text."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.files import plainjson

TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
SCALARS = st.none() | st.booleans() | st.integers() | TEXT
JSON = st.recursive(
    SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
PLAIN = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4))


@given(JSON, st.sampled_from([None, 2]), st.sampled_from(["", " ", "\n\t\r "]))
def test_loads_reads_what_json_wrote(value, indent, space):
    text = space + json.dumps(value, indent=indent) + space
    assert plainjson.loads(text) == json.loads(text)
    assert plainjson.loads(text.encode()) == json.loads(text.encode())


@given(st.binary(max_size=30) | st.text(max_size=30))
def test_loads_fails_as_json_fails(data):
    try:
        expected = json.loads(data)
    except ValueError as error:
        with pytest.raises(type(error)) as raised:
            plainjson.loads(data)
        assert str(raised.value) == str(error)
    else:
        assert repr(plainjson.loads(data)) == repr(expected)  # repr: NaN is not equal to itself


@pytest.mark.parametrize("data", [b"\xef\xbb\xbf{}", '{"a": 1}'.encode("utf-16"), b"NaN", b"[1] x", b"\xff", b""])
def test_what_the_c_scanner_does_not_take_goes_to_json(data):
    try:
        expected = json.loads(data)
    except ValueError as error:
        with pytest.raises(ValueError, match=str(error).split(":")[0]):
            plainjson.loads(data)
    else:
        assert repr(plainjson.loads(data)) == repr(expected)


@given(PLAIN, st.sampled_from([None, 2]))
def test_dumps_writes_what_json_writes(value, indent):
    assert plainjson.dumps(value, indent=indent) == json.dumps(value, indent=indent)


@given(JSON | st.tuples(st.integers()) | st.dictionaries(st.integers(), st.integers(), max_size=3))
def test_dumps_hands_anything_else_to_json(value):
    assert plainjson.dumps(value) == json.dumps(value)
