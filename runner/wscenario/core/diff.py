"""Showing received data to a person: safe text, short values and JSON diffs.

Everything here may hold what a peer sent, so nothing reaches a terminal unescaped: control
characters (``ESC`` included), line breaks, bidirectional overrides and other invisible
formatting characters appear as escapes, and long values are cut with their full length.
"""

from __future__ import annotations

import difflib
import json
import re

from wscenario.core.model import JSON
from wscenario.core.printable import printable

ELLIPSIS = "…"
DEFAULT_LIMIT = 200
_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_BINARY_PREVIEW = 16
"""Bytes shown in hex for a binary value."""


def safe_text(value: str | bytes, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` made safe to print on one line and cut to ``limit`` characters.

    Bytes are decoded as UTF-8, invalid bytes shown as ``\\xNN``. A cut value ends with an
    ellipsis and the full length: ``abc… (1000 chars)`` (``bytes`` for binary).
    """
    if isinstance(value, bytes):
        text = value.decode("utf-8", errors="backslashreplace")
        total = f"{len(value)} bytes"
    else:
        text = value
        total = f"{len(value)} chars"
    if len(text) <= limit:
        return printable(text)
    return f"{printable(text[:limit])}{ELLIPSIS} ({total})"


def format_value(value: JSON | bytes, limit: int = DEFAULT_LIMIT) -> str:
    """A short one-line rendering of a value for messages, in YAML flow style.

    ``'text'``, ``3``, ``true``, ``null``, ``{code: 1000, reason: 'bye'}``, ``[1, 2]`` and
    ``<binary 3 bytes: 00ff10>``. A string is cut as ``safe_text`` does (so it keeps its
    length); anything else is cut to ``limit`` characters and an ellipsis.
    """
    if isinstance(value, str):
        return _quote(value, limit)
    try:
        text = _flow(value, limit)
    except RecursionError:
        return "<value nested too deeply to show>"
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def _flow(value: JSON | bytes, limit: int) -> str:
    if isinstance(value, bytes):
        shown = value[:_BINARY_PREVIEW].hex()
        more = ELLIPSIS if len(value) > _BINARY_PREVIEW else ""
        return f"<binary {len(value)} bytes: {shown}{more}>" if value else "<binary 0 bytes>"
    if isinstance(value, str):
        return _quote(value, limit)
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item, limit) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{_key(key, limit)}: {_flow(item, limit)}" for key, item in value.items())
        return "{" + ", ".join(pairs) + "}"
    return json.dumps(value)


def _quote(text: str, limit: int) -> str:
    return "'" + safe_text(text, limit).replace("'", "''") + "'"


def _key(key: str, limit: int) -> str:
    return key if _BARE_KEY.fullmatch(key) else _quote(key, limit)


def json_diff(expected: JSON, actual: JSON, *, line_limit: int = DEFAULT_LIMIT) -> list[str]:
    """Unified-diff lines from ``expected`` to ``actual``, both pretty-printed JSON.

    Keys are sorted and indented by two, so the diff shows only real differences; each line
    is made safe with ``safe_text`` and cut to ``line_limit``. Equal values give no lines.
    """
    try:
        before = _pretty(expected)
        after = _pretty(actual)
    except RecursionError:
        return ["(values nested too deeply to diff)"]
    lines = difflib.unified_diff(before, after, "expected", "actual", lineterm="")
    return [safe_text(line, line_limit) for line in lines]


def _pretty(value: JSON) -> list[str]:
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False).splitlines()
