"""What a JSON diff shows: real mismatches, not allowed extras or matched wildcards."""

from __future__ import annotations

from wscenario.core.model import JSON
from wscenario.report.diff_view import aligned_for_diff


def test_subset_leaves_out_extra_received_keys() -> None:
    expected: JSON = {"type": "welcome", "user": {"name": "bob"}}
    received: JSON = {"type": "welcome", "user": {"name": "alice", "id": 7}, "ts": 1}
    assert aligned_for_diff(expected, received, subset=True, mismatched={"/user/name"}) == (
        {"type": "welcome", "user": {"name": "bob"}},
        {"type": "welcome", "user": {"name": "alice"}},
    )


def test_exact_keeps_extra_keys_and_missing_ones() -> None:
    expected: JSON = {"a": 1, "b": 2}
    received: JSON = {"a": 1, "c": 3}
    assert aligned_for_diff(expected, received, subset=False, mismatched={"/b", "/c"}) == (
        {"a": 1, "b": 2},
        {"a": 1, "c": 3},
    )


def test_matched_wildcards_show_the_received_value() -> None:
    expected: JSON = {"id": {"$any": "string"}, "n": {"$regex": "^[0-9]+$"}, "x": [{"$any": True}]}
    received: JSON = {"id": "u-1", "n": "abc", "x": [5]}
    assert aligned_for_diff(expected, received, subset=False, mismatched={"/n"}) == (
        {"id": "u-1", "n": {"$regex": "^[0-9]+$"}, "x": [5]},
        {"id": "u-1", "n": "abc", "x": [5]},
    )


def test_pointer_tokens_are_escaped() -> None:
    expected: JSON = {"a/b": {"$any": "integer"}}
    received: JSON = {"a/b": "x"}
    assert aligned_for_diff(expected, received, subset=True, mismatched={"/a~1b"}) == (
        expected,
        received,
    )


def test_other_shapes_are_left_alone() -> None:
    assert aligned_for_diff([1, 2], [1], subset=True, mismatched={""}) == ([1, 2], [1])
    assert aligned_for_diff("a", {"b": 1}, subset=True, mismatched={""}) == ("a", {"b": 1})
