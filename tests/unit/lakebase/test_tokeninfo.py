import base64
import json

from databricks.labs.oauth_rotator.lakebase.tokeninfo import jwt_expiry, token_fingerprint


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
    from databricks.labs.oauth_rotator.lakebase.tokeninfo import issued_to_someone_else

    app_id = "0a1b2c3d-0000-4000-8000-00000000abcd"
    assert issued_to_someone_else(_jwt({"sub": "eve@example.com"}), "ana@example.com") == "eve@example.com"
    assert issued_to_someone_else(_jwt({"sub": app_id}), "ana@example.com") == app_id
    assert issued_to_someone_else(_jwt({"sub": "ANA@example.com"}), "ana@example.com") is None
    assert issued_to_someone_else(_jwt({"sub": "1234567"}), "ana@example.com") is None, "an opaque id says nothing"
    assert issued_to_someone_else(_jwt({"exp": 1}), "ana@example.com") is None
    assert issued_to_someone_else("opaque-token", "ana@example.com") is None
