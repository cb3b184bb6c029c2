"""Whether text is valid Unicode: text holding a lone surrogate cannot be written as UTF-8.

Python decodes bytes that are not UTF-8 in file names, command-line arguments and environment
variables to lone surrogates (``\\udcff``); such text cannot be sent, written as YAML or
printed, so it is rejected where it enters.
"""

from __future__ import annotations

from collections.abc import Mapping


def is_valid_unicode(text: str) -> bool:
    """Whether ``text`` can be encoded as UTF-8 (holds no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def holds_only_valid_unicode(value: object) -> bool:
    """Whether every string in ``value`` (nested in mappings, lists and tuples) is valid."""
    if isinstance(value, str):
        return is_valid_unicode(value)
    if isinstance(value, Mapping):
        return all(
            holds_only_valid_unicode(k) and holds_only_valid_unicode(v) for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return all(holds_only_valid_unicode(item) for item in value)
    return True


def shown(text: str) -> str:
    """``text`` with each lone surrogate written as an escape, safe to print."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
