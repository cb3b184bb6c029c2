"""Durations and sizes: every spelling the language allows, and what it refuses."""

from __future__ import annotations

import re

import pytest

from wscenario.core.schema import scenario_schema
from wscenario.core.units import DURATION_PATTERN, SIZE_PATTERN, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("2s", 2.0),
        ("1m", 60.0),
        ("1.5s", 1.5),
        ("0s", 0.0),
        (3, 3.0),
        (0.5, 0.5),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad",
    ["2", "2 s", "s", "-1s", "1h", "", "\u0663s", True, -1, float("nan"), float("inf"), None, []],
)
def test_not_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [(0, 0), (100, 100), ("512B", 512), ("64KiB", 65536), ("1MiB", 1048576), ("1GiB", 1 << 30),
     (2.0, 2), (0.0, 0)],
)  # fmt: skip
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "bad", ["1KB", "1.5MiB", "x", "\u0663", -1, True, 1.5, -2.0, float("inf"), None]
)
def test_not_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(bad)


def test_patterns_agree_with_the_parsers() -> None:
    assert re.match(DURATION_PATTERN, "250ms")
    assert not re.match(DURATION_PATTERN, "250 ms")
    assert re.match(SIZE_PATTERN, "64KiB")
    assert not re.match(SIZE_PATTERN, "64KB")


def test_the_schema_uses_these_patterns() -> None:
    defs = scenario_schema()["$defs"]
    assert defs["duration"]["pattern"] == DURATION_PATTERN
    assert defs["size"]["pattern"] == SIZE_PATTERN
