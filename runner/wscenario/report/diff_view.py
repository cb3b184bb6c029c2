"""Preparing an expected and a received JSON value for a diff a person can read.

A ``subset`` match allows keys the scenario did not mention, and a wildcard (``$any``,
``$regex``) stands for whatever matched it; shown raw, both would look like differences. So
before diffing, extra received keys are left out of a subset comparison and a wildcard that
matched is shown as the value it matched: what remains in the diff are the real mismatches.
"""

from __future__ import annotations

from collections.abc import Collection

from wscenario.core.matchers import escape_token
from wscenario.core.model import JSON

WILDCARD_KEYS = frozenset({"$any", "$regex"})


def aligned_for_diff(
    expected: JSON, received: JSON, *, subset: bool, mismatched: Collection[str]
) -> tuple[JSON, JSON]:
    """``(expected, received)`` trimmed to what a diff should show.

    ``mismatched`` holds the JSON Pointers (into the received value) where the match failed.
    """
    return _align(expected, received, subset, mismatched, "")


def _align(
    expected: JSON, received: JSON, subset: bool, mismatched: Collection[str], pointer: str
) -> tuple[JSON, JSON]:
    if _is_wildcard(expected) and pointer not in mismatched:
        return received, received
    if isinstance(expected, dict) and isinstance(received, dict):
        shown_expected: dict[str, JSON] = {}
        shown_received: dict[str, JSON] = {}
        for key, value in expected.items():
            if key in received:
                shown_expected[key], shown_received[key] = _align(
                    value, received[key], subset, mismatched, f"{pointer}/{escape_token(key)}"
                )
            else:
                shown_expected[key] = value
        if not subset:
            shown_received.update((k, v) for k, v in received.items() if k not in expected)
        return shown_expected, shown_received
    if isinstance(expected, list) and isinstance(received, list) and len(expected) == len(received):
        pairs = [
            _align(e, r, subset, mismatched, f"{pointer}/{index}")
            for index, (e, r) in enumerate(zip(expected, received, strict=True))
        ]
        return [e for e, _ in pairs], [r for _, r in pairs]
    return expected, received


def _is_wildcard(value: JSON) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in WILDCARD_KEYS
