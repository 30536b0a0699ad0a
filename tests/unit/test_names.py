"""The names and defaults every command shares (`names.py`)."""

from __future__ import annotations

import re

import pytest

from databricks.labs.oauth_rotator.names import capped_margin, login_database, service_name, target_label


@pytest.mark.parametrize(
    ("margin", "lifetime", "used"),
    [(600, 3600, 600), (600, 300, 150), (3600, 3600, 1800), (600, 0, 0), (600, -5, 0), (0, 3600, 0)],
)
def test_the_margin_takes_at_most_half_of_a_credentials_life(margin, lifetime, used):
    assert capped_margin(margin, lifetime) == used


def test_a_target_is_called_by_its_name_else_what_it_points_at():
    assert target_label("sales", "i", None, "h") == "sales"
    assert target_label(None, None, "projects/p/branches/b/endpoints/e", "h") == "projects/p/branches/b/endpoints/e"
    assert target_label(None, None, None, "h") == "h"
    assert target_label(None, None, None, None) == "?"


@pytest.mark.parametrize(
    "label", ["sales", "my sales/eu", "--x--", "a.b@c", "", "é", "a!!b", "a-!b", "!!", "x\u202ey", "tab\there"]
)
def test_service_names_replace_each_run_of_unsafe_characters_with_one_dash(label):
    expected = re.sub(r"[^A-Za-z0-9_.@-]+", "-", label).strip("-") or "lakebase"
    assert service_name(label) == expected
    assert service_name(label, "-ro") == expected + "-ro"


def test_a_login_for_any_database_opens_the_lakebase_one_unless_told_otherwise():
    assert login_database("*") == "databricks_postgres"
    assert login_database("*", "from_pgdatabase") == "from_pgdatabase"
    assert login_database("sales") == "sales"
    assert login_database("sales", "from_pgdatabase") == "sales"
