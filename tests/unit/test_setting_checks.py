"""The checks of one setting's value (`setting_checks.py`), each error naming the setting as its user spelled it."""

from __future__ import annotations

import pytest

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.setting_checks import (
    InvalidSetting,
    check_command,
    check_database_name,
    check_minutes,
    check_name,
    check_path_text,
    check_port,
    check_workspace_url,
    named_as,
)


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda: check_port(0, "targets[0].port"), "targets[0].port: expected a port number 1-65535, got 0"),
        (lambda: check_minutes(0, "interval_minutes", minimum=1), "interval_minutes: expected minutes between 1"),
        (lambda: check_database_name("host=evil", "database"), "database: expected a database name"),
        (lambda: check_workspace_url("ftp://x"), "workspace_url: not a workspace URL"),
        (lambda: check_command("sh -c 'unclosed"), "exec_after: cannot split"),
        (lambda: check_name("a\x1b[2Jb", "name"), "name: must not contain control characters"),
        (lambda: check_name("*", "host", wildcard=False), "host: must not contain `*`"),
        (lambda: check_path_text(" /x", "pgpass_file"), "pgpass_file: not a path"),
    ],
)
def test_each_check_names_the_setting(check, message):
    with pytest.raises(ConfigError) as failure:
        check()
    assert str(failure.value).startswith(message) and failure.value.exit_code == 2


def test_a_setting_is_renamed_as_the_caller_spells_it():
    with pytest.raises(InvalidSetting) as failure, named_as({"interval_minutes": "--interval"}):
        check_minutes(0, "interval_minutes", minimum=1)
    assert str(failure.value).startswith("--interval: expected minutes")


def test_good_values_pass():
    check_port(5432)
    check_database_name("*")
    check_workspace_url("https://example.cloud.databricks.com")
    check_command("/usr/bin/pgbouncer -R")
    check_name("sales", "name")
    check_path_text("~/.pgpass", "pgpass_file")


def test_a_credential_ttl_is_what_the_api_takes():
    from databricks.labs.oauth_rotator.setting_checks import InvalidSetting, check_credential_ttl

    check_credential_ttl(5)
    check_credential_ttl(60)
    check_credential_ttl(None)
    with pytest.raises(InvalidSetting, match="expected minutes between 5 and 60, got 61"):
        check_credential_ttl(61)
