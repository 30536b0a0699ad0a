"""Names and defaults every command shares, written once: the default margin and interval, a target's label, the
systemd unit, a `pg_service.conf` section name, and how much of a credential's life the margin may take.

Part of the light tier (see docs/architecture.md): it imports nothing, so `password` and `status` use these very
functions, as the full commands do.
"""

from __future__ import annotations

DEFAULT_MARGIN_MINUTES = 10
"""Refresh when less than this is left of a credential (10 minutes of a 60-minute one: every 50 minutes)."""
DEFAULT_INTERVAL_MINUTES = 50
"""And at least this often."""
DEFAULT_PORT = 5432
DEFAULT_DATABASE = "*"
"""A target's `.pgpass` database when none is configured: any."""
LAKEBASE_DATABASE = "databricks_postgres"
"""The database every Lakebase instance has: where a login goes for a target whose database is any (`*`)."""
SYSTEMD_UNIT_NAME = "databricks-oauth-rotator.service"
SYSTEMD_SHOW_PROPERTIES = "ActiveState,SubState,MainPID,ExecMainStatus,LoadState"
"""What `systemctl --user show` is asked for, by the service manager and by `status` alike."""
MARGIN_SHARE_OF_LIFETIME = 0.5
"""The margin never takes more than this share of a credential's life: a 5-minute credential with a 10-minute margin
is refreshed at half its life, not at once (and not on every `password` call)."""


def target_label(name: str | None, instance: str | None, endpoint: str | None, host: str | None) -> str:
    """The name status and logs use for a target: `name`, else the instance, endpoint or host."""
    return name or instance or endpoint or host or "?"


def capped_margin(margin_seconds: float, lifetime_seconds: float) -> float:
    """The margin to use for a credential that lives `lifetime_seconds`: the setting, capped at
    `MARGIN_SHARE_OF_LIFETIME` of that life (the scheduler's rule and `password`'s)."""
    return min(margin_seconds, max(0.0, lifetime_seconds) * MARGIN_SHARE_OF_LIFETIME)


def login_database(database: str, fallback: str = LAKEBASE_DATABASE) -> str:
    """The database a login to a target whose `.pgpass` database is `database` opens: that one, or `fallback` (the
    Lakebase database) for any."""
    return fallback if database == DEFAULT_DATABASE else database


def service_name(label: str, role: str = "") -> str:
    """A `pg_service.conf` section (and pgbouncer database) name from a target's label and a host role (`-ro`...):
    each run of characters other than ASCII letters, digits and `_.@-` becomes one `-` (without importing `re`)."""
    out: list[str] = []
    in_run = False
    for char in label:
        if char.isascii() and (char.isalnum() or char in "_.@-"):
            out.append(char)
            in_run = False
        elif not in_run:
            out.append("-")
            in_run = True
    return ("".join(out).strip("-") or "lakebase") + role
