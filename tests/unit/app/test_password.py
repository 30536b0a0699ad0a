"""`password`'s answers from the files: which line, which expiry, which config values, which margin."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.app import password
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.files.config_cache import cached_settings
from databricks.labs.oauth_rotator.files.config_store import save_config
from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint
from tests.rigs.tokens import mint_jwt

NOW = 1_767_225_600.0
KEY = ("h.example.com", "5432", "*", "someone@example.com")
TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzb21lb25lIn0.c2ln"


def target_state(token: str = TOKEN, expires_at: float = NOW + 3000, keys: list[tuple[str, ...]] | None = None):
    return {
        "keys": [list(k) for k in (keys or [KEY])],
        "fingerprint": token_fingerprint(token),
        "expires_at": expires_at,
    }


def line(key: tuple[str, str, str, str], token: str) -> bytes:
    return pgpass.format_entry(pgpass.PgpassEntry(*key, password=token)) + b"\n"


def test_our_line_is_found_by_its_fingerprint_whatever_else_the_file_holds():
    odd_key = ("#h:1", "5432", "*", "a\\b@example.com")  # escaped as format_entry escapes
    data = b"# comment\n*:*:*:*:someone-elses\n" + line(KEY, "older") + line(odd_key, TOKEN + "\\:x")
    found = password.recorded_credential(data, target_state(TOKEN + "\\:x", keys=[KEY, odd_key]))
    assert found is not None and (found.password, found.expires_at) == (TOKEN + "\\:x", NOW + 3000)
    assert password.recorded_credential(line(KEY, "another"), target_state()) is None
    assert password.recorded_credential(line(KEY, TOKEN).replace(b"\n", b"\r\n"), target_state()) is not None


def test_someone_elses_credential_on_our_line_counts_by_its_jwt_expiry():
    theirs = mint_jwt(KEY[3], expires_at=datetime.fromtimestamp(NOW + 7200, tz=timezone.utc), issuer="elsewhere")
    data = line(KEY, theirs)
    assert password.recorded_credential(data, target_state()) is None
    found = password.libpq_credential(data, target_state())
    assert found is not None and (found.password, found.expires_at, found.issued_at) == (theirs, NOW + 7200, None)
    assert password.libpq_credential(line(KEY, "opaque"), target_state()) is None


def files(tmp_path: Path, token: str, expires_at: float, margin: float | None = None) -> tuple[str, dict[str, str]]:
    pgpass_file = tmp_path / ".pgpass"
    pgpass_file.write_bytes(line(KEY, token))
    config = tmp_path / "config.yml"
    target = TargetConfig(name="sales", host=KEY[0])
    save_config(RotatorConfig(targets=[target], pgpass_file=str(pgpass_file), margin_minutes=margin), config)
    (tmp_path / "state").mkdir()
    state = {"targets": {"sales": target_state(token, expires_at)}}
    (tmp_path / "state" / "status.json").write_text(json.dumps(state))
    return str(config), {"HOME": str(tmp_path), "DATABRICKS_LABS_STATE_DIR": str(tmp_path / "state")}


def test_the_credential_on_file_is_printed_while_it_has_more_than_the_margin_left(tmp_path):
    config, environ = files(tmp_path, TOKEN, NOW + 10 * 60 + 1)
    assert password.current_credential(config, environ=environ, now=NOW)[1].password == TOKEN
    assert password.current_credential(config, "sales", environ=environ, now=NOW)[1].password == TOKEN
    summary = password.config_summary(config, environ)
    assert summary is not None and summary.labels == ["sales"] and summary.margin_seconds == 600
    assert password.credential_on_file(summary, "sales", environ=environ, now=NOW + 1, left=600) is None


def test_a_configured_margin_is_the_one_used(tmp_path):
    config, environ = files(tmp_path, TOKEN, NOW + 30 * 60, margin=45)
    summary = password.config_summary(config, environ)
    assert summary is not None and summary.margin_seconds == 45 * 60
    assert password.credential_on_file(summary, "sales", environ=environ, now=NOW, left=summary.margin_seconds) is None


def test_an_unknown_target_is_a_config_error_and_a_missing_config_says_to_configure(tmp_path):
    config, environ = files(tmp_path, TOKEN, NOW + 3600)
    with pytest.raises(ConfigError, match=r"no target named 'x' \(configured: sales\)"):
        password.current_credential(config, "x", environ=environ, now=NOW)
    with pytest.raises(ConfigError, match="no such config file; run `databricks labs oauth-rotator configure`"):
        password.current_credential(str(tmp_path / "none.yml"), environ=environ, now=NOW)


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"targets": []},
        {"targets": [{"port": 1}]},
        {"targets": [{"host": "h"}], "margin_minutes": "5"},
        {"targets": [{"host": "h"}], "version": 2},
        {"targets": [{"host": "h"}], "pgpass_file": 3},
        {"targets": "h"},
    ],
)
def test_a_config_it_cannot_read_goes_to_the_full_loader(raw):
    assert password.summary_of(raw) is None


def test_labels_are_the_targets_labels():
    targets = [TargetConfig(instance="i"), TargetConfig(endpoint="projects/p/branches/b/endpoints/e")]
    targets.append(TargetConfig(host="h", name="n"))
    summary = password.summary_of({"targets": [{k: v for k, v in vars(t).items() if v is not None} for t in targets]})
    assert summary is not None
    assert summary.labels == [t.label for t in targets]


def test_a_credential_shorter_than_twice_the_margin_is_reused_for_half_its_life(tmp_path):
    """Issue 23 (9): a 5-minute credential with the default 10-minute margin is printed, not re-minted, until half
    of its life is left, as the scheduler would replace it (`names.capped_margin`)."""
    config, environ = files(tmp_path, TOKEN, NOW + 300)
    state = json.loads((tmp_path / "state" / "status.json").read_text())
    state["targets"]["sales"]["issued_at"] = NOW
    (tmp_path / "state" / "status.json").write_text(json.dumps(state))
    summary = password.config_summary(config, environ)
    assert password.credential_on_file(summary, "sales", environ=environ, now=NOW + 149) is not None
    assert password.credential_on_file(summary, "sales", environ=environ, now=NOW + 151) is None


def test_an_hour_long_margin_leaves_an_hour_long_credential_half_its_life(tmp_path):
    config, environ = files(tmp_path, TOKEN, NOW + 3600, margin=60)
    state = json.loads((tmp_path / "state" / "status.json").read_text())
    state["targets"]["sales"]["issued_at"] = NOW
    (tmp_path / "state" / "status.json").write_text(json.dumps(state))
    assert password.current_credential(config, environ=environ, now=NOW + 1700)[1].password == TOKEN


def test_the_full_read_is_remembered_and_a_hand_edit_is_read_again(tmp_path):
    config, environ = files(tmp_path, TOKEN, NOW + 3600)
    assert cached_settings(config, environ) is None
    assert password.config_summary(config, environ).labels == ["sales"]
    assert cached_settings(config, environ) is not None  # remembered after the preflight passed
    text = Path(config).read_text().replace("name: sales", "name: sales2")
    Path(config).write_text(text)  # the same size, maybe the same mtime: the digest tells
    assert cached_settings(config, environ) is None
    assert password.config_summary(config, environ).labels == ["sales2"]


def test_a_config_that_fails_the_preflight_is_not_remembered(tmp_path):
    config, environ = files(tmp_path, TOKEN, NOW + 3600)
    Path(config).write_text(Path(config).read_text().replace(str(tmp_path / ".pgpass"), str(tmp_path / "no" / "pg")))
    with pytest.raises(ConfigError, match="pgpass_file: cannot write"):
        password.current_credential(config, environ=environ, now=NOW)
    assert not (tmp_path / "state" / "config.json").exists()
