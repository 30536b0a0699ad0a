"""Reads and rewrites libpq's password file (`.pgpass`) exactly as libpq reads it; no I/O.

The public face of three modules, one job each:

* `pgpass_format`: the entry type, the field escape, one line's fields (`PgpassEntry`, `format_entry`, `parse`);
* `pgpass_read`: libpq's line reading and matching (`lookup`, `lookup_many`), emulated byte for byte;
* `pgpass_merge`: where our lines go (`merge`, `shadowed`), never where libpq would not use them or glue them
  onto another line.

`pgpass_index` finds, in one pass, the first line matching each of many keys, for `lookup_many` and `merge`.
"""

from databricks.labs.oauth_rotator.files.pgpass_format import ANY, Key, PgpassEntry, PgpassLine, format_entry, parse
from databricks.labs.oauth_rotator.files.pgpass_merge import Shadowing, merge, shadowed
from databricks.labs.oauth_rotator.files.pgpass_read import lookup, lookup_many

__all__ = [
    "ANY",
    "Key",
    "PgpassEntry",
    "PgpassLine",
    "Shadowing",
    "format_entry",
    "lookup",
    "lookup_many",
    "merge",
    "parse",
    "shadowed",
]
