"""Text made safe for a terminal: what a peer or a file holds never acts on the screen.

Control characters (``ESC`` included), line breaks, bidirectional overrides and other
invisible formatting characters appear as escapes (``\\x1b``, ``\\n``, ``\\u202e``).
"""

from __future__ import annotations

import unicodedata

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Controls, invisible formatting (bidi overrides, zero-width), surrogates, private use,
unassigned, and line or paragraph separators."""


def escape_char(char: str) -> str:
    """``char`` itself when it is safe to print, otherwise an escape (``\\x1b``, ``\\u202e``)."""
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if unicodedata.category(char) not in _UNSAFE_CATEGORIES:
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every character unsafe to print escaped (all of it on one line)."""
    if text.isprintable():  # no control, format, separator or unassigned character in it
        return text
    return "".join(escape_char(char) for char in text)
