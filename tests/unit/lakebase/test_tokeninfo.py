import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.lakebase.tokeninfo import (
    MAX_PAYLOAD_CHARS,
    claim_seconds,
    issued_to_someone_else,
    jwt_claims,
    jwt_expiry,
    jwt_issued_at,
    token_fingerprint,
)


def _jwt(claims: object) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.c2ln"


def test_expiry_is_read_from_the_exp_claim():
    assert jwt_expiry(_jwt({"exp": 1767225600, "sub": "x"})) == 1767225600.0


def test_tokens_without_a_readable_exp_have_no_expiry():
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry("a.b.c") is None
    assert jwt_expiry(_jwt({"sub": "x"})) is None
    assert jwt_expiry(_jwt({"exp": "tomorrow"})) is None
    assert jwt_expiry(_jwt({"exp": True})) is None
    assert jwt_expiry(_jwt(["exp"])) is None


def test_fingerprint_is_short_stable_and_not_the_token():
    token = _jwt({"exp": 1})
    assert token_fingerprint(token) == token_fingerprint(token)
    assert len(token_fingerprint(token)) == 16
    assert token_fingerprint(token) not in token
    assert token_fingerprint(token) != token_fingerprint(token + "x")


def test_a_credential_for_another_identity_is_recognised_only_when_both_are_identities():
    app_id = "0a1b2c3d-0000-4000-8000-00000000abcd"
    assert issued_to_someone_else(_jwt({"sub": "eve@example.com"}), "ana@example.com") == "eve@example.com"
    assert issued_to_someone_else(_jwt({"sub": app_id}), "ana@example.com") == app_id
    assert issued_to_someone_else(_jwt({"sub": "ANA@example.com"}), "ana@example.com") is None
    assert issued_to_someone_else(_jwt({"sub": "1234567"}), "ana@example.com") is None, "an opaque id says nothing"
    assert issued_to_someone_else(_jwt({"exp": 1}), "ana@example.com") is None
    assert issued_to_someone_else("opaque-token", "ana@example.com") is None


# ---- a hostile workspace's tokens: read as data, bounded before parsing, never an exception (issue 19) -------------


def _raw_jwt(payload: str) -> str:
    return f"e30.{base64.urlsafe_b64encode(payload.encode()).rstrip(b'=').decode()}.c2ln"


def test_absurd_time_claims_are_no_time():
    for exp in ("1e20", "1e400", str(10**400), "-1", "NaN", "Infinity", "-Infinity", "true", "[1]"):
        token = _raw_jwt(f'{{"exp": {exp}, "iat": {exp}}}')
        assert jwt_expiry(token) is None, exp
        assert jwt_issued_at(token) is None, exp
    assert claim_seconds(10**400) is None
    assert claim_seconds(float("nan")) is None
    assert claim_seconds(1767225600) == 1767225600.0


def test_a_payload_nested_50000_deep_is_not_parsed():
    token = _raw_jwt('{"exp": 1767225600, "x": ' + "[" * 50_000 + "]" * 50_000 + "}")
    assert jwt_claims(token) == {}
    assert jwt_expiry(token) is None


def test_brackets_inside_strings_do_not_count_as_nesting():
    token = _raw_jwt('{"exp": 1767225600, "note": "' + "[" * 100 + '"}')
    assert jwt_expiry(token) == 1767225600.0


def test_a_ten_megabyte_token_is_not_decoded():
    payload = '{"exp": 1767225600, "pad": "' + "a" * 10_000_000 + '"}'
    token = _raw_jwt(payload)
    assert len(token.split(".")[1]) > MAX_PAYLOAD_CHARS
    assert jwt_claims(token) == {}
    assert issued_to_someone_else(token, "ana@example.com") is None


def test_a_payload_that_is_not_utf8_is_no_payload():
    token = f"e30.{base64.urlsafe_b64encode(bytes([0xFF, 0xFE, 0x7B])).rstrip(b'=').decode()}.c2ln"
    assert jwt_claims(token) == {}


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_no_exception_escapes_the_claims_reader_for_any_text(token):
    claims = jwt_claims(token)
    assert isinstance(claims, dict)
    exp = jwt_expiry(token)
    assert exp is None or 0 <= exp <= 1e11
    issued_to_someone_else(token, "ana@example.com")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["exp", "iat", "sub", "x"]), _JSON, max_size=4))
def test_no_exception_escapes_the_claims_reader_for_any_payload(claims):
    token = _raw_jwt(json.dumps(claims))
    exp, iat = jwt_expiry(token), jwt_issued_at(token)
    for value in (exp, iat):
        assert value is None or (isinstance(value, float) and 0 <= value <= 1e11)
    issued_to_someone_else(token, "ana@example.com")
