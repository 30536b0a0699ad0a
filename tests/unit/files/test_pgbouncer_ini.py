"""pgbouncer's files as text: quoting as its parsers read it, the length limit, nothing that breaks a line."""

from __future__ import annotations

import pytest

from databricks.labs.oauth_rotator.errors import PgpassFormatError
from databricks.labs.oauth_rotator.files import pgbouncer_ini
from databricks.labs.oauth_rotator.files.pgbouncer_ini import Settings, Upstream

SETTINGS = Settings("127.0.0.1", 6432, "", "/f/userlist.txt", "/f/pgbouncer.pid", "/f/pgbouncer.log")


def test_a_database_entry_quotes_every_value_and_doubles_single_quotes():
    entry = Upstream("sales", "h.example.com", "5432", "db", "someone@example.com", "to'k en")
    assert entry.render() == (
        b"sales = host='h.example.com' port='5432' dbname='db' user='someone@example.com' password='to''k en'\n"
    )


def test_the_repr_of_an_entry_never_shows_its_credential():
    assert "secret-token" not in repr(Upstream("sales", "h", "5432", "db", "u", "secret-token"))


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_a_value_that_would_break_the_line_is_refused(bad: str):
    with pytest.raises(PgpassFormatError, match="line break or NUL"):
        Upstream("sales", "h", "5432", "db", "u", bad).render()
    with pytest.raises(PgpassFormatError):
        pgbouncer_ini.render_auth_file({"lakebase": bad})


def test_a_database_name_pgbouncer_would_misread_is_refused():
    with pytest.raises(PgpassFormatError, match="letters, digits"):
        Upstream("my db", "h", "5432", "db", "u", "pw").render()


def test_the_ini_has_the_databases_sorted_then_the_settings_with_tls_and_scram():
    ini = pgbouncer_ini.render_ini(
        SETTINGS, [Upstream("b", "h", "1", "d", "u", "p"), Upstream("a", "h", "1", "d", "u")]
    )
    text = ini.decode()
    assert text.index("a = ") < text.index("b = ") < text.index("[pgbouncer]")
    assert "a = host='h' port='1' dbname='d' user='u'\n" in text, "no password= without a credential"
    settings = (
        "auth_type = scram-sha-256",
        "server_tls_sslmode = verify-full",
        "unix_socket_dir = \n",
        "min_pool_size = 0\n",
        "server_idle_timeout = 60\n",
    )
    for line in settings:
        assert line in text
    assert "server_tls_ca_file" not in text


def test_verify_full_names_its_ca_file():
    settings = Settings(**{**SETTINGS.__dict__, "server_tls_sslmode": "verify-full", "server_tls_ca_file": "/ca.pem"})
    text = pgbouncer_ini.render_ini(settings, []).decode()
    assert "server_tls_sslmode = verify-full\nserver_tls_ca_file = /ca.pem\n" in text


def test_two_entries_with_one_name_are_refused():
    with pytest.raises(PgpassFormatError, match="share a name"):
        pgbouncer_ini.render_ini(SETTINGS, [Upstream("a", "h", "1", "d", "u"), Upstream("a", "g", "1", "d", "u")])


def test_the_auth_file_doubles_double_quotes():
    assert pgbouncer_ini.render_auth_file({'we"ird': 'p"w', "a": "b"}) == b'"a" "b"\n"we""ird" "p""w"\n'


@pytest.mark.parametrize(
    ("text", "version"),
    [("PgBouncer 1.18.0\nlibevent 2.1.12-stable\n", (1, 18, 0)), ("pgbouncer version 1.26", (1, 26, 0)), ("?", None)],
)
def test_the_version_is_read_from_what_pgbouncer_prints(text: str, version: tuple[int, int, int] | None):
    assert pgbouncer_ini.parse_version(text) == version


@pytest.mark.parametrize(
    ("size", "version", "refused"),
    [(1024, (1, 18, 0), False), (1025, (1, 18, 0), True), (1025, None, True), (60_000, (1, 26, 0), False)],
)
def test_a_credential_over_the_limit_of_the_installed_pgbouncer_is_refused(
    size: int, version: tuple[int, int, int] | None, refused: bool
):
    reason = pgbouncer_ini.too_long("x" * size, version)
    assert (reason is not None) == refused
    if reason is not None:
        assert f"{size} bytes" in reason and "at most 1024 bytes" in reason and "1.26 or later" in reason


def test_the_limit_counts_bytes_not_characters():
    assert pgbouncer_ini.too_long("é" * 513, (1, 18, 0)) is not None


def test_an_entry_with_its_expiry_is_read_back_as_it_was_written():
    entry = Upstream("sales", "h", "1", "d", "u", "p'q", expires_at=1_800_000_000.5)
    ini = pgbouncer_ini.render_ini(SETTINGS, [entry, Upstream("other", "h", "1", "d", "u", "x")])
    kept = pgbouncer_ini.previous_entries(ini)
    assert list(kept) == ["sales"], "only entries that carry their expiry can be kept"
    assert kept["sales"].expires_at == 1_800_000_000 and kept["sales"].render() == entry.render()
    assert "p'q" not in repr(kept["sales"])
    assert pgbouncer_ini.render_ini(SETTINGS, [kept["sales"]]) == pgbouncer_ini.render_ini(SETTINGS, [entry])


def test_a_forged_expiry_line_does_not_make_an_entry_of_another_line():
    assert pgbouncer_ini.previous_entries(b"; sales expires_at=9\nother = host='h'\n") == {}
