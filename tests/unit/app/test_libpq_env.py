"""The libpq variables every child gets: the connection, the sslmode, and nothing that redirects it."""

from databricks.labs.oauth_rotator.app.libpq_env import Connection, connection_variables, sslmode, without_redirection


def test_a_stronger_sslmode_is_kept_and_anything_else_is_require():
    assert sslmode({"PGSSLMODE": " Verify-Full "}) == "verify-full"
    assert sslmode({"PGSSLMODE": "disable"}) == "require"
    assert sslmode({}) == "require"


def test_the_connection_variables_and_what_is_taken_away():
    assert connection_variables(Connection("h", 5432, "u", "d")) == {
        "PGHOST": "h",
        "PGPORT": "5432",
        "PGUSER": "u",
        "PGDATABASE": "d",
    }
    assert without_redirection({"PGHOSTADDR": "1.2.3.4", "PGSERVICE": "s", "PGHOST": "h"}) == {"PGHOST": "h"}
