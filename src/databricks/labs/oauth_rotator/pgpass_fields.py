"""The `.pgpass` field escape and the credential fingerprint, written once for every command.

Part of the light tier (docs/architecture.md): `password` finds our line and recognises our credential with these
very functions, as the rotation cycle writes and records them. Imports only the interpreter's built-in SHA-256.
"""

from __future__ import annotations

try:
    # The interpreter's own SHA-256 (`_sha2` from Python 3.12, `_sha256` before), not hashlib's: hashlib loads
    # OpenSSL's libcrypto, about 3.5 MiB resident, into the long-lived scheduler, which fingerprints `.pgpass`
    # lines every minute and otherwise stays under twice the size of an idle Python. The digest is the same.
    from _sha2 import sha256  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # Python 3.10 and 3.11
    try:
        from _sha256 import sha256  # type: ignore[import-not-found, no-redef, unused-ignore]
    except ImportError:  # a build without the built-in hashes
        from hashlib import sha256  # type: ignore[assignment, unused-ignore]


def token_fingerprint(token: str) -> str:
    """A short SHA-256 digest: enough to recognise a token, useless to log in with."""
    return str(sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:16])


def escape_fields(values: tuple[str, ...] | list[str]) -> list[bytes]:
    """Each value as libpq reads it back: `\\` and `:` escaped; a `#` starting the line escaped too (a `#` in
    column 1 would make the line a comment)."""
    fields = [value.encode("utf-8").replace(b"\\", b"\\\\").replace(b":", b"\\:") for value in values]
    if fields and fields[0].startswith(b"#"):
        fields[0] = b"\\" + fields[0]
    return fields


def line_prefix(key: tuple[str, str, str, str] | list[str]) -> bytes:
    """The start of the line written for `key` (host, port, database, user): its fields escaped, then a colon."""
    return b":".join(escape_fields(tuple(key))) + b":"


def unescape_field(raw: bytes) -> bytes:
    """A field as `escape_fields` wrote it, read back (`\\x` is `x`)."""
    if b"\\" not in raw:
        return raw
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i : i + 1] == b"\\" and i + 1 < len(raw):
            i += 1
        out += raw[i : i + 1]
        i += 1
    return bytes(out)
