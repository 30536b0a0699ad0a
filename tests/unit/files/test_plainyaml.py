"""`plainyaml` reads the config files oauth-rotator writes as `yaml.safe_load` does, and hands anything else on."""

from __future__ import annotations

import contextlib
import string

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig, to_raw
from databricks.labs.oauth_rotator.files import plainyaml

KEYS = st.sampled_from(["name", "host", "port", "on", "yes", "a1", "x_y", "targets", "Key", "null", "1a"])
TEXT = st.text(string.printable + "é\u2028", max_size=12) | st.sampled_from(
    [
        "*",
        "~",
        "~/.pgpass",
        "8f0c4a9e-0000-4000-8000-000000000001",
        "12345678-1234-1234-1234-123456789012",
        "yes",
        "No",
        "on",
        "null",
        "1.5",
        "0777",
        "1e3",
        ".inf",
        "a: b",
        "a #b",
        "- x",
        "'q'",
    ]
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3), max_leaves=12
)


def agrees(text: str) -> bool:
    """`read_subset` returns what `yaml.safe_load` does, or declines; True when it read the text itself."""
    try:
        value = plainyaml.read_subset(text)
    except plainyaml.NotSubset:
        return False
    assert value == yaml.safe_load(text)
    assert plainyaml.loads(text) == value
    return True


@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=5))
def test_what_yaml_dump_writes_reads_as_safe_load_reads_it(raw):
    agrees(yaml.dump(raw))


@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=4), st.data())
def test_an_edited_file_reads_as_safe_load_reads_it_or_goes_to_yaml(raw, data):
    lines = yaml.dump(raw).splitlines(keepends=True)
    i = data.draw(st.integers(0, len(lines) - 1))
    edit = data.draw(st.sampled_from(["  ", "# note\n", "\n", "- ", ":", " #", "'", "\t", "---\n"]))
    where = data.draw(st.integers(0, len(lines[i])))
    lines[i] = lines[i][:where] + edit + lines[i][where:]
    text = "".join(lines)
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError:
        with pytest.raises(plainyaml.NotSubset):
            plainyaml.read_subset(text)
        return
    with contextlib.suppress(plainyaml.NotSubset):
        assert plainyaml.read_subset(text) == expected


def test_the_configs_oauth_rotator_writes_are_read_without_pyyaml():
    config = RotatorConfig(
        targets=[
            TargetConfig(name="sales", instance="my-inst", database="*", port=5432, extra_hosts=["a", "b"]),
            TargetConfig(endpoint="projects/p/branches/b/endpoints/e", user="someone@example.com", read_only=True),
            TargetConfig(host="h.example.com", user="8f0c4a9e-0000-4000-8000-000000000001"),
        ],
        profile="DEFAULT",
        workspace_url="https://x.cloud.databricks.com",
        pgpass_file="~/.pgpass",
        margin_minutes=7.5,
        interval_minutes=50,
        exec_after='pgbouncer -R "x y"',
        notify=False,
    )
    assert agrees(yaml.dump(to_raw(config)))
    assert agrees(yaml.dump({"targets": [{"instance": "i"}], "pgbouncer": {"port": 6432, "manage": True}}))


AMBIGUOUS = [
    *("yes", "Yes", "NO", "on", "Off", "y", "n", "true", "True", "FALSE", "null", "Null", "~", ""),
    *("0777", "0x1F", "0b101", "1_000", "1:30", "-1", "+1", "1e3", "1.0e+3", ".5", ".inf", "-.inf", ".NaN", "1."),
    *("2024-01-01", "2024-01-01 10:00:00", "<<", "=", "*", "&a", "!x", "|", ">", "%x", "@x", "`x", "? x", "- x"),
    *("a: b", "a #b", "a#b", "a:b", "a:", "'x'", "'it''s'", '"x"', "[1]", "{a: 1}", "[]", "{}", "x  y", "a, b"),
    "8f0c4a9e-0000-4000-8000-000000000001",
    "8f0c4a9e-0000-4000-8000-00000000000g",
]


@pytest.mark.parametrize("value", AMBIGUOUS)
def test_a_hand_written_value_reads_as_safe_load_reads_it(value):
    agrees(f"key: {value}\n")
    agrees(f"targets:\n- name: {value}\n  port: {value}\n")


@given(st.text(string.printable, max_size=16))
def test_any_hand_written_value_reads_as_safe_load_reads_it_or_goes_to_yaml(value):
    text = f"key: {value}\n"
    try:
        yaml.safe_load(text)
    except yaml.YAMLError:
        return
    agrees(text)
