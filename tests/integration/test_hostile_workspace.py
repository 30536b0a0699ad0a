"""A hostile or compromised workspace: crafted answers, served to the real SDK over HTTP, to the product as users run
it (`databricks-oauth-rotator --once`). Each case reproduces an attack of issue 19.

The answer is data, never code: each ends in one line on stderr naming the problem, exit 1, the old `.pgpass` line
kept, the failure in status.json and the log, no traceback, no control character echoed, no secret anywhere.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from databricks.labs.oauth_rotator.commands.service_scripts import status_command
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint
from tests.integration.conftest import USER, UserHome
from tests.rigs.workspace import DEMO_INSTANCE, FakeWorkspace

CREDENTIALS = "/api/2.0/database/credentials"
YEAR_2100 = 4102444800
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters other than tab and newline: none may reach stderr, the log or status.json."""


def _jwt(payload: str) -> str:
    body = base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.c2lnbmF0dXJl"


def _claims(exp: str) -> str:
    """A JWT payload whose `exp` is written as given (`1e20` is a float only JSON text can carry)."""
    return '{"sub": ' + json.dumps(USER) + ', "exp": ' + exp + "}"


def _answer(token: str, **fields: object) -> Callable[[FakeWorkspace], None]:
    body = json.dumps({"token": token, **fields})
    return lambda ws: ws.fail_next(1, status=200, body=body, path_prefix=CREDENTIALS)


@dataclass(frozen=True)
class Hostile:
    id: str
    answer: Callable[[FakeWorkspace], None]
    message: str


CASES = [
    Hostile("jwt-exp-1e20", _answer(_jwt(_claims("1e20"))), "unreadable expiry"),
    Hostile("jwt-exp-10**400", _answer(_jwt(_claims(str(10**400)))), "unreadable expiry"),
    Hostile("jwt-exp-2100", _answer(_jwt(_claims(str(YEAR_2100)))), "unreadable expiry"),
    Hostile("api-expiry-9999", lambda ws: ws.expiry_next(1, "9999-12-31T23:59:59Z"), "unreadable expiry"),
    Hostile("api-expiry-number", lambda ws: ws.expiry_next(1, 1e20), "unreadable expiry"),
    Hostile(
        "jwt-nested-50000-deep",
        _answer(_jwt('{"x": ' + "[" * 50_000 + "]" * 50_000 + "}")),
        "unusable credential",
    ),
    Hostile("token-10-megabytes", _answer("a" * 10_000_000), "unusable credential"),
    Hostile(
        "error-with-escape-sequences",
        lambda ws: ws.fail_next(
            1,
            status=400,
            body=json.dumps(
                {
                    "error_code": "INVALID_PARAMETER_VALUE",
                    "message": "no \x1b]0;pwned\x07 \x1b]8;;http://evil.example\x07click\x1b]8;;\x07\r\x1b[2Jhere",
                }
            ),
            path_prefix=CREDENTIALS,
        ),
        "no \\x1b]0;pwned\\x07",
    ),
    Hostile(
        "host-wildcard",
        lambda ws: ws.add_instance(DEMO_INSTANCE, read_write_dns="*"),
        "unusable host '*' (a wildcard): refused",
    ),
    Hostile(
        "host-escape-sequence",
        lambda ws: ws.add_instance(DEMO_INSTANCE, read_write_dns="127.0.0.1\x1b]0;x\x07"),
        "unusable host",
    ),
]


@pytest.fixture
def rotated(home: UserHome) -> bytes:
    """A first, good rotation: the line a hostile answer must leave in place."""
    result = home.rotator("--once", "--instance", DEMO_INSTANCE, *home.target_flags())
    assert result.returncode == 0, result.stderr
    return home.pgpass.read_bytes()


@pytest.mark.parametrize("hostile", CASES, ids=[c.id for c in CASES])
def test_a_crafted_answer_is_one_clear_failure_and_the_old_line_stays(home: UserHome, rotated: bytes, hostile):
    hostile.answer(home.workspace)
    issued = len(home.workspace.issued)
    result = home.rotator("--once", "--instance", DEMO_INSTANCE, *home.target_flags())

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    failures = [line for line in result.stderr.splitlines() if "Rotation of" in line and "failed" in line]
    assert len(failures) == 1, result.stderr
    assert hostile.message in failures[0]
    assert max(len(line) for line in result.stderr.splitlines()) < 2000
    assert home.pgpass.read_bytes() == rotated, "the old line is kept"

    status = json.loads(home.status_file.read_text())["targets"][DEMO_INSTANCE]
    assert hostile.message in status["last_error"] and status["failures"] == 1
    log = home.log_file.read_text()
    assert hostile.message in log
    for where, text in (("stderr", result.stderr), ("log", log), ("status.json", home.status_file.read_text())):
        assert not _CONTROL.search(text), f"a control character reached {where}"
    assert home.secrets_seen(result.stdout, result.stderr) == []

    out, err = io.StringIO(), io.StringIO()
    status_command([], environ=home.env, out=out, err=err)
    assert hostile.message.split(" (")[0] in out.getvalue()
    assert not _CONTROL.search(out.getvalue() + err.getvalue()), "a control character reached the status table"
    if len(home.workspace.issued) == issued:  # the test server revokes a role's password when it issues another
        assert home.login().returncode == 0, "the kept line still logs in"


def test_a_user_name_of_star_never_becomes_a_wildcard_line(home: UserHome):
    home.workspace.user_name = "*"
    home.workspace.add_client("star-client", "star-secret-0123456789", user_name="*")
    home.env.update(DATABRICKS_CLIENT_ID="star-client", DATABRICKS_CLIENT_SECRET="star-secret-0123456789")
    home.pgpass.write_bytes(b"# mine\n")
    result = home.rotator("--once", "--instance", DEMO_INSTANCE, *home.target_flags())
    assert result.returncode == 1
    assert "unusable user name '*' (a wildcard): refused" in result.stderr
    assert "Traceback" not in result.stderr
    assert home.pgpass.read_bytes() == b"# mine\n"


def test_a_credential_claiming_2100_in_its_jwt_is_replaced_by_the_next_one(home: UserHome):
    """Issue 19: one answer with `expiration_time` an hour ahead and a JWT `exp` in 2100, then normal ones: the file
    kept that first token for ever while status.json recorded each new fingerprint. After the first run status.json
    is lost (wiped, or set aside as malformed): the token on our line is then judged by its JWT alone."""
    home.workspace.claims_next(1, exp=YEAR_2100)
    for run in range(3):
        if run == 1:
            home.status_file.unlink()
        result = home.rotator("--once", "--instance", DEMO_INSTANCE, *home.target_flags())
        assert result.returncode == 0, result.stderr
        on_file = pgpass.lookup(home.pgpass.read_bytes(), "127.0.0.1", str(home.postgres.port), "*", USER)
        assert on_file == home.workspace.issued[-1].token, f"run {run + 1} kept an older credential"
        status = json.loads(home.status_file.read_text())["targets"][DEMO_INSTANCE]
        assert status["fingerprint"] == token_fingerprint(on_file), "status.json describes what is in the file"
        assert home.login().returncode == 0
    assert "Keeping the newer credential" not in home.log_file.read_text()


def test_a_malformed_status_file_is_set_aside_and_the_run_rotates(home: UserHome):
    home.status_file.parent.mkdir(parents=True, exist_ok=True)
    home.status_file.write_text(json.dumps({"targets": {DEMO_INSTANCE: 5}}))
    result = home.rotator("--once", "--instance", DEMO_INSTANCE, *home.target_flags())
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("Malformed status file") == 1
    assert len(list(home.status_file.parent.glob("status.json.bad-*"))) == 1
    assert json.loads(home.status_file.read_text())["targets"][DEMO_INSTANCE]["last_error"] is None
    assert home.login().returncode == 0
