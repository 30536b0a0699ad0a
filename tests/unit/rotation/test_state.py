"""status.json as a hostile or damaged file: set aside with one warning and rewritten, never a crash (issue 19)."""

from __future__ import annotations

import json
import logging

import pytest

from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState

GOOD = TargetState(name="inst1", fingerprint="ab", expires_at=100.0, due_at=50.0, keys=[["h", "5432", "*", "u"]])

MALFORMED = {
    "a target that is a number": b'{"targets": {"inst1": 5}}',
    "a list": b"[1, 2, 3]",
    "a string": b'"status"',
    "targets a list": b'{"targets": [1]}',
    "expiry text": json.dumps({"targets": {"inst1": {"expires_at": "tomorrow"}}}).encode(),
    "expiry infinite": b'{"targets": {"inst1": {"expires_at": Infinity}}}',
    "expiry boolean": b'{"targets": {"inst1": {"expires_at": true}}}',
    "hosts a string": b'{"targets": {"inst1": {"hosts": "h"}}}',
    "keys of numbers": b'{"targets": {"inst1": {"keys": [[1, 2, 3, 4]]}}}',
    "failures text": b'{"targets": {"inst1": {"failures": "3"}}}',
    "needs_person text": b'{"targets": {"inst1": {"needs_person": "no"}}}',
    "updated_at text": b'{"updated_at": "now", "targets": {}}',
    "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "not json": b"{targets",
    "not utf-8": b"\xff\xfe{}",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_status_file_is_set_aside_with_one_warning_and_rewritten(tmp_path, caplog, data):
    store = StateStore(tmp_path / "status.json")
    store.path.write_bytes(data)
    with caplog.at_level(logging.WARNING):
        assert store.load().targets == {}
        assert store.load().targets == {}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "set aside" in warnings[0]
    (aside,) = tmp_path.glob("status.json.bad-*")
    assert aside.read_bytes() == data

    status = store.update(lambda s: s.targets.__setitem__("inst1", GOOD))
    assert status.targets["inst1"] == GOOD
    assert Status.from_json(store.path.read_bytes()).targets["inst1"] == GOOD


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_an_update_over_a_malformed_file_keeps_a_copy_and_rewrites_it(tmp_path, caplog, data):
    store = StateStore(tmp_path / "status.json")
    store.path.write_bytes(data)
    with caplog.at_level(logging.WARNING):
        store.update(lambda s: s.targets.__setitem__("inst1", GOOD))
    assert Status.from_json(store.path.read_bytes()).targets == {"inst1": GOOD}
    (aside,) = tmp_path.glob("status.json.bad-*")
    assert aside.read_bytes() == data
    assert len([r for r in caplog.records if "set aside" in r.getMessage()]) == 1


def test_a_well_formed_file_round_trips_and_unknown_fields_are_ignored(tmp_path):
    raw = json.loads(Status(pgpass_file="/p", updated_at=1, targets={"inst1": GOOD}).to_json())
    raw["targets"]["inst1"]["added_by_a_newer_version"] = [1]
    status = Status.from_json(json.dumps(raw).encode())
    assert status.targets["inst1"] == GOOD
    assert status.pgpass_file == "/p"


def test_the_problem_in_the_warning_is_escaped(tmp_path, caplog):
    store = StateStore(tmp_path / "status.json")
    store.path.write_bytes(json.dumps({"targets": {"\x1b]0;pwned\x07": 5}}).encode())
    with caplog.at_level(logging.WARNING):
        store.load()
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "\x1b" not in warning and "\x07" not in warning
