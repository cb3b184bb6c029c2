"""Showing received data: escaping, cutting, short values and JSON diffs."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wscenario.core.diff import format_value, json_diff, safe_text
from wscenario.core.model import JSON
from wscenario.core.printable import escape_char

UNSAFE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("hello", "hello"),
        ("a\nb\r\tc", "a\\nb\\r\\tc"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("x\x00\x7f\x85y", "x\\x00\\x7f\\x85y"),
        ("user\u202egnp.exe", "user\\u202egnp.exe"),
        ("zero\u200bwidth\u2028line", "zero\\u200bwidth\\u2028line"),
        ("\U000e0041tag \U0010fffd", "\\U000e0041tag \\U0010fffd"),
        ("日本語 é ✓", "日本語 é ✓"),
        (b"ok\xff\x1b", "ok\\xff\\x1b"),
    ],
)
def test_safe_text_escapes_what_a_terminal_would_act_on(value: str | bytes, shown: str) -> None:
    assert safe_text(value) == shown


def test_safe_text_cuts_long_values_and_says_how_long() -> None:
    assert safe_text("abcdef", limit=3) == "abc… (6 chars)"
    assert safe_text(b"abcdef", limit=4) == "abcd… (6 bytes)"
    assert safe_text("abc", limit=3) == "abc"


@given(st.text(), st.integers(min_value=0, max_value=50))
def test_safe_text_never_contains_control_or_invisible_characters(text: str, limit: int) -> None:
    shown = safe_text(text, limit)
    assert not [c for c in shown if unicodedata.category(c) in UNSAFE]


@given(st.binary())
def test_safe_text_of_bytes_is_printable(data: bytes) -> None:
    shown = safe_text(data, limit=1000)
    assert shown.isprintable()


@given(st.text(alphabet=st.characters(categories=["L", "N", "P", "S", "Zs"])))
def test_safe_text_leaves_printable_text_alone(text: str) -> None:
    assert safe_text(text, limit=len(text)) == text


def test_escape_char() -> None:
    assert escape_char("a") == "a"
    assert escape_char("\n") == "\\n"
    assert escape_char("\u2066") == "\\u2066"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("hello", "'hello'"),
        ("it's", "'it''s'"),
        ("bad\x1b", "'bad\\x1b'"),
        (3, "3"),
        (1.5, "1.5"),
        (True, "true"),
        (None, "null"),
        ([1, "a", []], "[1, 'a', []]"),
        ({"code": 1000, "reason": "bye"}, "{code: 1000, reason: 'bye'}"),
        ({"a b": {"x-y.z": None}, "": 1}, "{'a b': {x-y.z: null}, '': 1}"),
        (b"\x00\xff\x10", "<binary 3 bytes: 00ff10>"),
        (b"", "<binary 0 bytes>"),
        (bytes(range(20)), "<binary 20 bytes: 000102030405060708090a0b0c0d0e0f…>"),
    ],
)
def test_format_value(value: JSON | bytes, shown: str) -> None:
    assert format_value(value) == shown


def test_format_value_is_cut_to_the_limit() -> None:
    assert format_value(list(range(100)), limit=10) == "[0, 1, 2, …"
    assert format_value("x" * 50, limit=10) == "'xxxxxxxxxx… (50 chars)'"


def test_format_value_survives_very_deep_values() -> None:
    deep: JSON = []
    for _ in range(sys.getrecursionlimit()):
        deep = [deep]
    assert format_value(deep) == "<value nested too deeply to show>"
    assert json_diff(deep, []) == ["(values nested too deeply to diff)"]


def test_json_diff_shows_changed_lines_of_sorted_pretty_json() -> None:
    expected: JSON = {"type": "welcome", "id": 1, "tags": ["a"]}
    actual: JSON = {"id": 2, "type": "welcome", "tags": ["a"], "extra": "\x1b\u202e"}
    lines = json_diff(expected, actual)
    assert lines[:2] == ["--- expected", "+++ actual"]
    body = lines[3:]
    assert '+  "extra": "\\u001b\\u202e",' in body
    assert '-  "id": 1,' in body
    assert '+  "id": 2,' in body
    assert '   "tags": [' in body


def test_json_diff_of_equal_values_is_empty() -> None:
    assert json_diff({"b": 1, "a": [1, 2]}, {"a": [1, 2], "b": 1}) == []


def test_json_diff_cuts_long_lines() -> None:
    lines = json_diff("x" * 300, "y", line_limit=20)
    assert f"-{json.dumps('x' * 300)}"[:20] + "… (303 chars)" in lines
