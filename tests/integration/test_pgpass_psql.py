"""What we write, read back by the real libpq: `psql -w` with PGPASSFILE against a real PostgreSQL (SCRAM).

Two oracles agree here: psql's login, and `pgpass.lookup`, which the unit tests use everywhere else.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.files.pgpass import ANY, PgpassEntry, format_entry, lookup, merge, shadowed
from databricks.labs.oauth_rotator.files.writer import update_file
from tests.rigs.postgres import LocalPostgres

USER_FILE = b"# my hand-written lines\r\n*:*:*:*:wrong\r\nlocalhost:5432:*:me:hunter2\r\n"
BOM = b"\xef\xbb\xbf"
SOON = timedelta(hours=1)


def _role(postgres: LocalPostgres, name: str, password: str) -> PgpassEntry:
    postgres.set_password(name, password, datetime.now(timezone.utc) + SOON)
    return PgpassEntry(postgres.host, str(postgres.port), ANY, name, password)


def _logs_in(postgres: LocalPostgres, entry: PgpassEntry, passfile: Path, host: str | None = None) -> bool:
    result = postgres.psql_login(user=entry.user, passfile=passfile, host=host or entry.host)
    assert result.returncode != 0 or result.stdout.strip() == entry.user
    return result.returncode == 0


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    "password",
    [
        "a:b",
        "a\\b",
        "\\",
        ":",
        "ends-with-backslash\\",
        "\\:",
        " spaces inside and around ",
        "é-😀-中文",
        "#starts-with-hash",
        "*",
        "x" * 1500,
        "eyJ" + "A1b2C3d4:\\" * 400,  # 4,003 characters with escapes all along
        "t" * 16_000,
    ],
    ids=lambda password: f"{len(password)}:{password[:12]!r}",
)
def test_our_line_logs_in_with_any_password(postgres: LocalPostgres, tmp_path: Path, password: str) -> None:
    entry = _role(postgres, "pgpass_any@example.com", password)
    passfile = _write(tmp_path / ".pgpass", USER_FILE)
    assert update_file(passfile, lambda old: merge(old, [entry]))
    assert _logs_in(postgres, entry, passfile)
    assert lookup(passfile.read_bytes(), entry.host, entry.port, "postgres", entry.user) == password
    assert passfile.read_bytes().startswith(b"# my hand-written lines\r\n" + format_entry(entry) + b"\r\n*:*:*:*:wrong")


def test_a_users_earlier_wildcard_line_would_shadow_an_appended_one(postgres: LocalPostgres, tmp_path: Path) -> None:
    entry = _role(postgres, "pgpass_shadow", "the-right-token")
    naive = _write(tmp_path / "naive", USER_FILE + format_entry(entry) + b"\r\n")
    assert not _logs_in(postgres, entry, naive)  # negative control: what appending does
    assert shadowed(naive.read_bytes(), [entry])[0].line == 2
    ours = _write(tmp_path / "ours", USER_FILE)
    update_file(ours, lambda old: merge(old, [entry]))
    assert _logs_in(postgres, entry, ours)
    assert not shadowed(ours.read_bytes(), [entry])


def test_each_host_is_its_own_key(postgres: LocalPostgres, tmp_path: Path) -> None:
    if len(postgres.hosts) < 2:
        pytest.skip("the server listens on one address only on this platform")
    entry = _role(postgres, "pgpass_hosts", "token-for-first-host")
    passfile = _write(tmp_path / ".pgpass", b"")
    update_file(passfile, lambda old: merge(old, [entry]))
    assert _logs_in(postgres, entry, passfile)
    assert not _logs_in(postgres, entry, passfile, host=postgres.hosts[1])


def test_the_key_includes_the_user(postgres: LocalPostgres, tmp_path: Path) -> None:
    first, second = _role(postgres, "pgpass_one", "token-one"), _role(postgres, "pgpass_two", "token-two")
    passfile = _write(tmp_path / ".pgpass", b"")
    update_file(passfile, lambda old: merge(old, [first]))
    update_file(passfile, lambda old: merge(old, [second]))
    assert _logs_in(postgres, first, passfile)
    assert _logs_in(postgres, second, passfile)


# ---- libpq's reading of odd files, against lookup() ----------------------------------------------------------------


def _odd_files(entry: PgpassEntry) -> dict[str, tuple[bytes, bool]]:
    head = f"{entry.host}:{entry.port}".encode()
    line = format_entry(entry)
    return {
        "first match wins": (b"".join([head, b":*:", entry.user.encode(), b":wrong\n", line, b"\n"]), False),
        "CRLF and no final newline": (b"# c\r\n" + line, True),
        "stray CRs": (line + b"\r\r\n", True),
        "BOM glued onto the first host": (BOM + line + b"\n", False),
        "BOM on a line of its own": (BOM + b"\n" + line + b"\n", True),
        "line after a NUL is lost": (b"junk\0tail\n" + line + b"\n", False),
        "NUL glues the next line on": (
            head + b"\0junk\n:*:" + entry.user.encode() + b":" + line.rsplit(b":", maxsplit=1)[-1] + b"\n",
            True,
        ),
        "NUL in a comment swallows the next line": (b"# c\0\n" + line + b"\n", False),
        "pseudo-comment is just a line": (b" # c\n" + line + b"\n", True),
        "line starting with a NUL": (b"\0junk\n" + line + b"\n", True),
    }


@pytest.mark.parametrize("case", list(_odd_files(PgpassEntry("h", "1", "*", "u", "p"))))
def test_libpq_reads_odd_files_as_lookup_predicts(postgres: LocalPostgres, tmp_path: Path, case: str) -> None:
    entry = _role(postgres, "pgpass_odd", "right-token")
    data, logs_in = _odd_files(entry)[case]
    passfile = _write(tmp_path / ".pgpass", data)
    assert (lookup(data, entry.host, entry.port, "postgres", entry.user) == "right-token") is logs_in
    assert _logs_in(postgres, entry, passfile) is logs_in
    update_file(passfile, lambda old: merge(old, [entry]))
    assert _logs_in(postgres, entry, passfile), f"after merge: {passfile.read_bytes()!r}"


def test_greedy_colon_matching_of_a_user_name(postgres: LocalPostgres, tmp_path: Path) -> None:
    entry = _role(postgres, "pg:colon", "right-token")
    data = f"{entry.host}:{entry.port}:*:pg:colon:right-token\n".encode()  # unescaped, yet it matches
    assert lookup(data, entry.host, entry.port, "postgres", entry.user) == "right-token"
    assert _logs_in(postgres, entry, _write(tmp_path / ".pgpass", data))


@pytest.mark.parametrize(("length", "logs_in"), [(254, True), (255, False), (256, True), (1000, True)])
def test_an_unterminated_last_line_that_fills_the_first_read_is_lost(
    postgres: LocalPostgres, tmp_path: Path, length: int, logs_in: bool
) -> None:
    prefix = f"{postgres.host}:{postgres.port}:*:pgpass_fill:"
    entry = _role(postgres, "pgpass_fill", "p" * (length - len(prefix)))
    data = (prefix + entry.password).encode()
    assert len(data) == length
    assert (lookup(data, entry.host, entry.port, "postgres", entry.user) == entry.password) is logs_in
    passfile = _write(tmp_path / ".pgpass", data)
    assert _logs_in(postgres, entry, passfile) is logs_in
    update_file(passfile, lambda old: merge(old, [entry]))  # ours is always terminated
    assert _logs_in(postgres, entry, passfile)


_PIECES = st.sampled_from(
    [
        b"*:*:*:*:wrong",
        b"# c",
        b" # c",
        b"",
        b"\0",
        b"junk\0",
        b"\r",
        b"x:y",
        b"*:*:*:pgpass_prop:wrong",
        b"z" * 300 + b"\0",  # NULs in the first and in later fgets() chunks of long lines
        b"z" * 120 + b"\0" + b"z" * 300,
        b"HEAD:*:pgpass_prop:" + b"w" * 400,
    ]
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_PIECES | st.just(b"RIGHT") | st.just(b"HEAD\0"), max_size=6), st.booleans())
def test_lookup_agrees_with_psql_on_generated_files(
    postgres: LocalPostgres, tmp_path: Path, pieces: list[bytes], final_newline: bool
) -> None:
    entry = _role(postgres, "pgpass_prop", "right-token")
    head = f"{entry.host}:{entry.port}".encode()
    lines = [piece.replace(b"RIGHT", format_entry(entry)).replace(b"HEAD", head) for piece in pieces]
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    passfile = _write(tmp_path / ".pgpass", data)
    predicted = lookup(data, entry.host, entry.port, "postgres", entry.user) == "right-token"
    assert _logs_in(postgres, entry, passfile) is predicted, repr(data)
    merged = _write(tmp_path / ".pgpass", merge(data, [entry]))
    assert _logs_in(postgres, entry, merged), repr(merged.read_bytes())
