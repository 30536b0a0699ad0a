"""Which target a password client means: by name, by the connection it opens (as `.pgpass` matches), by pgAdmin."""

from __future__ import annotations

import pytest

from databricks.labs.oauth_rotator.app.password_pick import (
    Wanted,
    declared_keys,
    pick_label,
    recorded_keys,
    wanted_from,
)
from databricks.labs.oauth_rotator.errors import ConfigError

SALES = ["sales.example.com", "5432", "*", "someone@example.com"]
SALES_RO = ["ro-sales.example.com", "5432", "*", "someone@example.com"]
AS_BOT = ["sales.example.com", "5432", "*", "bot-app-id"]
OTHER_PORT = ["sales.example.com", "6543", "analytics", "someone@example.com"]
RECORDED = {
    "sales": {"keys": [SALES, SALES_RO]},
    "sales-bot": {"keys": [AS_BOT]},
    "analytics": {"keys": [OTHER_PORT]},
}
LABELS = ["sales", "sales-bot", "analytics", "new"]
DECLARED = {"new": declared_keys({"host": "new.example.com", "extra_hosts": ["new-ro.example.com"], "port": 5433})}


def pick(wanted: Wanted) -> str:
    return pick_label(LABELS, wanted, declared=DECLARED, recorded=RECORDED)


def test_host_port_and_user_pick_one_target_as_pgpass_matches_a_line():
    assert pick(Wanted("ro-sales.example.com")) == "sales"
    assert pick(Wanted("sales.example.com", "5432", "someone@example.com")) == "sales"
    assert pick(Wanted("sales.example.com", "5432", "bot-app-id")) == "sales-bot"
    assert pick(Wanted("sales.example.com", "6543")) == "analytics"
    assert pick(Wanted("sales.example.com", "6543", None, "analytics")) == "analytics"
    assert pick(Wanted("sales.example.com", "5432", "someone@example.com", "any-db")) == "sales"  # `*` serves it
    assert pick(Wanted("new-ro.example.com", "5433", "anyone")) == "new"  # not rotated yet: its config's hosts


def test_two_matches_name_the_candidates_and_no_match_names_every_target():
    with pytest.raises(ConfigError) as two:
        pick(Wanted("sales.example.com", "5432"))
    assert str(two.value) == (
        "host sales.example.com, port 5432 (--host) matches 2 targets: "
        "sales (someone@example.com@sales.example.com:5432, someone@example.com@ro-sales.example.com:5432); "
        "sales-bot (bot-app-id@sales.example.com:5432); give --user, --port or --database to tell them apart, "
        "or --target NAME"
    )
    with pytest.raises(ConfigError) as none:
        pick(Wanted("SALES.example.com", origin="PGADMIN_PASSEXEC_HOST"))  # libpq compares as text, case and all
    message = str(none.value)
    assert message.startswith("no configured target serves host SALES.example.com (PGADMIN_PASSEXEC_HOST); ")
    assert all(label in message for label in LABELS) and "\n" not in message
    with pytest.raises(ConfigError, match="matches 3 targets"):
        pick(Wanted("sales.example.com", None, None, "analytics"))  # `*` lines serve analytics too


def test_a_wildcard_in_the_line_matches_what_the_client_gives():
    recorded = {"any": {"keys": [["*", "*", "*", "*"]]}}
    assert pick_label(["any"], Wanted("h", "1", "u", "d"), declared={}, recorded=recorded) == "any"


def test_flags_then_pgadmin_variables_say_what_is_wanted():
    pgadmin = {
        "PGADMIN_PASSEXEC_HOST": "sales.example.com",
        "PGADMIN_PASSEXEC_PORT": "5432",
        "PGADMIN_PASSEXEC_USERNAME": "bot-app-id",
        "PGADMIN_PASSEXEC_DATABASE": "",  # pgAdmin sends "" for what it does not know
    }
    from_env = wanted_from({}, pgadmin)
    assert from_env is not None
    assert (from_env.host, from_env.port, from_env.user, from_env.database) == (
        "sales.example.com",
        "5432",
        "bot-app-id",
        None,
    )
    assert pick(from_env) == "sales-bot"
    from_flags = wanted_from({"host": "h", "user": "u"}, pgadmin)
    assert from_flags is not None and (from_flags.host, from_flags.port, from_flags.user) == ("h", None, "u")
    assert wanted_from({"target": "sales"}, pgadmin) is None  # a name given wins over pgAdmin's variables
    assert wanted_from({}, {}) is None and wanted_from({"host": ""}, {}) is None


@pytest.mark.parametrize(
    ("flags", "environ", "message"),
    [
        ({"target": "sales", "host": "h"}, {}, "give --target or --host, not both"),
        ({"port": "5432"}, {}, "--port needs --host"),
        ({"host": "h", "port": "54x"}, {}, "--port: expected a port number 1-65535, got '54x'"),
        ({}, {"PGADMIN_PASSEXEC_HOST": "h", "PGADMIN_PASSEXEC_PORT": "0"}, "PGADMIN_PASSEXEC_PORT: expected a port"),
    ],
)
def test_bad_usage_is_one_config_error(flags, environ, message):
    with pytest.raises(ConfigError) as raised:
        wanted_from(flags, environ)
    assert str(raised.value).startswith(message)


def test_keys_from_the_config_and_from_status_json():
    assert declared_keys({"instance": "i"}) == []  # its hosts are known once it is rotated
    assert declared_keys({"host": "h", "database": "d", "user": "u"}) == [("h", "5432", "d", "u")]
    assert recorded_keys({"keys": [SALES, ["short"], [1, 2, 3, 4]]}) == [tuple(SALES)]
    assert not recorded_keys({"keys": "not a list"})
