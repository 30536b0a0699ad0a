"""`json.loads` and `json.dumps` without importing `json`, for the commands that answer as fast as Python starts.

`import json` imports `re` (and with it `enum`, `functools`, `collections`): about half as long again as starting
Python. The parsing and the string escaping are done by the same C functions `json` uses (`_json`), so the results
are the same; anything these functions do not take (an error, NaN, a byte order mark, another type) goes to `json`
itself, which answers as it always does. Tests hold both functions to `json` on generated values.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs a fifth of Python's start-up
if TYPE_CHECKING:
    from typing import Any

try:
    from _json import encode_basestring_ascii, make_scanner
except ImportError:  # not CPython: `json` does everything
    encode_basestring_ascii = make_scanner = None  # type: ignore[assignment, misc]  # pylint: disable=invalid-name

_WHITESPACE = " \t\n\r"
"""JSON's whitespace, exactly (`str.strip()` would strip more)."""


class _Context:
    """What `json.JSONDecoder` hands its C scanner, with its defaults (NaN and Infinity go to `json`)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = None
    memo: dict[str, str] = {}


_SCAN = make_scanner(_Context()) if make_scanner is not None else None  # type: ignore[arg-type]


def loads(data: bytes | str) -> Any:
    """`json.loads(data)`: the same value, or the same `ValueError` (`json.JSONDecodeError`, `UnicodeDecodeError`)."""
    value = _scan(data)
    if value is _UNREAD:
        import json

        return json.loads(data)
    return value


_UNREAD = object()


def _scan(data: bytes | str) -> Any:
    if _SCAN is None:
        return _UNREAD
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf") or b"\x00" in data[:4]:  # a BOM, UTF-16 or UTF-32: json detects those
            return _UNREAD
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return _UNREAD
    else:
        text = data
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _SCAN(text, start)
    except Exception:  # pylint: disable=broad-exception-caught  # json raises the error users see
        return _UNREAD
    if text[end:].strip(_WHITESPACE):  # "Extra data"
        return _UNREAD
    return value


def dumps(value: Any, *, indent: int | None = None) -> str:
    """`json.dumps(value, indent=indent)` for dicts with string keys, lists, strings, whole numbers, True, False and
    None; any other value (a float, a tuple, another key type) is handed to `json.dumps`."""
    if encode_basestring_ascii is None or not _plain(value):
        import json

        return json.dumps(value, indent=indent)
    return _dump(value, indent, 0)


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (str, int)):  # bool is an int
        return True
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    return False


_CONSTANTS = {None: "null", True: "true", False: "false"}


def _dump(value: Any, indent: int | None, level: int) -> str:
    if isinstance(value, str):
        return str(encode_basestring_ascii(value))
    if value is None or isinstance(value, bool):
        return _CONSTANTS[value]
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, dict):
        items = [f"{_dump(key, None, 0)}: {_dump(item, indent, level + 1)}" for key, item in value.items()]
        return _joined("{", items, "}", indent, level)
    return _joined("[", [_dump(item, indent, level + 1) for item in value], "]", indent, level)


def _joined(opening: str, items: list[str], closing: str, indent: int | None, level: int) -> str:
    if not items:
        return opening + closing
    if indent is None:
        return opening + ", ".join(items) + closing
    inner = "\n" + " " * (indent * (level + 1))
    return opening + inner + ("," + inner).join(items) + "\n" + " " * (indent * level) + closing
