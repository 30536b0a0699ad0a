import pytest
from hypothesis import given
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.errors import PgpassFormatError
from databricks.labs.oauth_rotator.files.pgservice import ServiceEntry, foreign_sections, merge, service_name

SALES = ServiceEntry("sales", "sales.example.com", "5432", "databricks_postgres", "ana@example.com")
SALES_RO = ServiceEntry("sales-ro", "ro.sales.example.com", "5432", "databricks_postgres", "ana@example.com")
USER_FILE = b"# my services\n[local]\nhost=localhost\ndbname=dev\n\n"


def test_our_sections_are_appended_with_sslmode_and_no_password():
    merged = merge(USER_FILE, [SALES])
    assert merged.startswith(USER_FILE)
    tail = merged[len(USER_FILE) :].decode()
    assert "[sales]\nhost=sales.example.com\nport=5432\ndbname=databricks_postgres\n" in tail
    assert "user=ana@example.com\nsslmode=require\n" in tail
    assert "password" not in tail


def test_our_section_is_replaced_in_place_and_merging_twice_changes_nothing():
    first = merge(USER_FILE + b"[after]\nhost=x\n", [SALES])
    moved = ServiceEntry("sales", "new.example.com", "5432", "db", "ana@example.com")
    second = merge(first, [moved])
    assert b"host=new.example.com" in second and b"host=sales.example.com" not in second
    assert second.count(b"[sales]") == 1
    assert merge(second, [moved]) == second


def test_sections_of_targets_that_are_gone_are_removed_and_kept_ones_stay():
    both = merge(USER_FILE, [SALES, SALES_RO])
    only_sales = merge(both, [SALES])
    assert b"[sales-ro]" not in only_sales and b"[sales]" in only_sales
    kept = merge(both, [], keep={"sales", "sales-ro"})
    assert kept == both
    assert merge(both, []) == USER_FILE


def test_a_users_own_section_of_the_same_name_wins_and_is_never_touched():
    users = b"[sales]\nhost=my-own-host\n"
    assert merge(users, [SALES]) == users
    assert foreign_sections(users) == {"sales"}


def test_a_file_without_a_final_newline_or_with_crlf_keeps_its_style():
    assert merge(b"[local]\r\nhost=x", [SALES]).startswith(b"[local]\r\nhost=x\r\n")
    assert b"[sales]\r\nhost=sales.example.com\r\n" in merge(b"[local]\r\nhost=x\r\n", [SALES])


def test_values_libpq_cannot_read_are_refused():
    with pytest.raises(PgpassFormatError):
        ServiceEntry("x", "h\nost", "5432", "db", "u").render()
    with pytest.raises(PgpassFormatError):
        ServiceEntry("x", "h" * 1100, "5432", "db", "u").render()


def test_service_names_are_safe_section_names():
    assert service_name("projects/p/branches/b/endpoints/e", "-ro") == "projects-p-branches-b-endpoints-e-ro"
    assert service_name("sales db") == "sales-db"


@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b), max_size=12))
def test_every_line_someone_else_wrote_survives(lines):
    data = b"".join(line + b"\n" for line in lines)
    merged = merge(data, [SALES])
    assert merged.startswith(data) or b"[sales]" in data
    assert merge(merged, []) == data or b"[sales]" in data
