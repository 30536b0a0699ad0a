"""`yaml.safe_load` of the config file without importing PyYAML, when the file is what oauth-rotator writes.

`import yaml` alone takes about twice as long as starting Python, and `password` answers from the file on every
connection a client opens. The config is written by `yaml.dump` (through blueprint): block mappings with sorted
keys, indentless sequences, plain or single-quoted scalars. `loads` reads exactly that subset, strictly: every
line must be one of those shapes and every plain scalar one whose type YAML 1.1 (PyYAML's resolver) would not
mistake, else the whole text is handed to `yaml.safe_load`. So the result is always what `yaml.safe_load` returns
(tests hold the two equal on generated files), only sooner. Imports nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs a fifth of Python's start-up
if TYPE_CHECKING:
    from typing import Any

_YAML_WORDS = frozenset(
    {
        *("y", "Y", "n", "N", "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False"),
        *("FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~"),
    }
)
"""Plain scalars YAML reads as booleans or null (PyYAML's resolver, and YAML 1.1's `y`/`n`, to be safe)."""
_KEY_START = "abcdefghijklmnopqrstuvwxyz_"
_KEY_CHARS = frozenset(_KEY_START + "0123456789")
_PLAIN_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_/~")
"""A plain scalar starting with one of these is never a number, a timestamp, an alias or an indicator."""
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")


class NotSubset(Exception):
    """The text is not in the subset `loads` reads itself."""


def loads(text: str) -> Any:
    """`yaml.safe_load(text)`, read without PyYAML when the text is in the subset `yaml.dump` writes for us."""
    try:
        return read_subset(text)
    except NotSubset:
        import yaml

        return yaml.safe_load(text)


def read_subset(text: str) -> Any:
    """The value of a block-style YAML document in the subset; `NotSubset` for any other text."""
    if not text.endswith("\n") or any(not " " <= c <= "~" for c in text.replace("\n", "")):
        raise NotSubset("not printable ASCII lines")
    lines = text[:-1].split("\n")
    value, end = _block(lines, 0, 0)
    if end != len(lines):
        raise NotSubset(f"line {end + 1}")
    return value


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_item(line: str, indent: int) -> bool:
    return _indent(line) == indent and (line[indent:].startswith("- ") or line[indent:] == "-")


def _block(lines: list[str], i: int, indent: int) -> tuple[Any, int]:
    if i >= len(lines) or _indent(lines[i]) != indent:
        raise NotSubset(f"line {i + 1}")
    if _is_item(lines[i], indent):
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _mapping(lines: list[str], i: int, indent: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while i < len(lines) and _indent(lines[i]) == indent and not _is_item(lines[i], indent):
        key, rest = _key(lines[i][indent:])
        if key in result:
            raise NotSubset(f"duplicate key {key}")
        i += 1
        if rest is not None:
            result[key] = _scalar(rest)
        elif i < len(lines) and _is_item(lines[i], indent):
            result[key], i = _sequence(lines, i, indent)  # yaml.dump writes a mapping's sequences unindented
        elif i < len(lines) and _indent(lines[i]) > indent:
            result[key], i = _mapping(lines, i, _indent(lines[i]))
        else:
            raise NotSubset(f"line {i}: no value")
    return result, i


def _sequence(lines: list[str], i: int, indent: int) -> tuple[list[Any], int]:
    result: list[Any] = []
    while i < len(lines) and _is_item(lines[i], indent):
        content = lines[i][indent + 2 :]
        if not content or content.startswith(("-", " ")):
            raise NotSubset(f"line {i + 1}")
        if _looks_like_key(content):
            # `- key: value`: a mapping whose keys sit two columns in, the first one on the dash's line.
            lines = [*lines[:i], " " * (indent + 2) + content, *lines[i + 1 :]]
            item, i = _mapping(lines, i, indent + 2)
            result.append(item)
        else:
            result.append(_scalar(content))
            i += 1
    return result, i


def _looks_like_key(content: str) -> bool:
    head = content.split(":", 1)[0]
    return ":" in content and bool(head) and all(c in _KEY_CHARS for c in head)


def _key(text: str) -> tuple[str, str | None]:
    key, colon, rest = text.partition(":")
    if not colon or not key or key[0] not in _KEY_START or any(c not in _KEY_CHARS for c in key):
        raise NotSubset(f"not a key: {text[:40]!r}")
    if key in _YAML_WORDS:
        raise NotSubset(f"key {key} reads as a boolean")
    if not rest:
        return key, None
    if not rest.startswith(" ") or rest.startswith("  "):
        raise NotSubset(f"key {key}")
    return key, rest[1:]


_SPECIAL: dict[str, Any] = {"true": True, "false": False, "null": None}


def _scalar(text: str) -> Any:
    if text != text.strip(" ") or not text:
        raise NotSubset("spaces around a value")
    if text in _SPECIAL:
        return _SPECIAL[text]
    if text in {"[]", "{}"}:
        return [] if text == "[]" else {}
    if text[0] == "'":
        return _single_quoted(text)
    number = _number(text)
    if number is not None:
        return number
    return _plain(text)


def _number(text: str) -> int | float | None:
    """A decimal whole number or one with a fraction, written as `yaml.dump` writes them; None for anything else."""
    whole, dot, fraction = (text[1:] if text[0] == "-" else text).partition(".")
    if not whole or any(c not in _DIGITS for c in whole) or (whole != "0" and whole[0] == "0"):
        return None
    if not dot:
        return int(text)
    if fraction and all(c in _DIGITS for c in fraction):
        return float(text)
    return None


def _is_uuid(text: str) -> bool:
    """A service principal's application id: never a number or a timestamp to YAML (no dot, no dash at 4)."""
    dashes = (8, 13, 18, 23)
    return len(text) == 36 and all((c == "-") if i in dashes else (c in _HEX) for i, c in enumerate(text))


def _plain(text: str) -> str:
    if _is_uuid(text):
        return text
    if text[0] not in _PLAIN_START or text in _YAML_WORDS:
        raise NotSubset(f"value {text[:40]!r}")
    if ": " in text or " #" in text or text.endswith(":"):
        raise NotSubset(f"value {text[:40]!r}")
    return text


def _single_quoted(text: str) -> str:
    inner = text[1:-1]
    if len(text) < 2 or text[-1] != "'" or "'" in inner.replace("''", ""):
        raise NotSubset("quoted value")
    return inner.replace("''", "'")
