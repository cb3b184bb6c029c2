"""Durations and sizes as a scenario writes them: ``250ms``, ``2s``, ``1m``; ``64KiB``, ``1MiB``.

The schema already restricts the spelling; these functions turn a value into float seconds or
an int byte count, and raise ``ValueError`` for anything else.
"""

from __future__ import annotations

import math
import re

# group 1 is the number, group 2 the unit; no named groups, as the schema's copies of these
# patterns are JavaScript regexes too (editors check scenarios with them)
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m)")
_SIZE = re.compile(r"([0-9]+)(B|KiB|MiB|GiB)?")

_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0}
_BYTES_PER_UNIT = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}

END = r"$(?!\n)"
"""The end of a schema pattern: ``$`` alone also lets Python take a text ending in a line
break, which JavaScript (an editor's check) and the parsers refuse."""

DURATION_PATTERN = "^" + _DURATION.pattern + END
"""The schema's pattern for a duration written as a string."""

SIZE_PATTERN = "^" + _SIZE.pattern + END
"""The schema's pattern for a size written as a string."""


def parse_duration(value: object) -> float:
    """Seconds for ``250ms``, ``2s``, ``1m`` or a non-negative finite number of seconds.

    Raises:
        ValueError: the value is not a duration.
    """
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    ):
        return float(value)
    if isinstance(value, str):
        found = _DURATION.fullmatch(value)
        if found:
            return float(found[1]) * _SECONDS_PER_UNIT[found[2]]
    raise ValueError(f"not a duration: {value!r}")


def parse_size(value: object) -> int:
    """Bytes for a non-negative integer (``2.0`` is one, as JSON Schema has it) or ``64KiB``,
    ``1MiB``, ``1GiB``, ``512B``.

    Raises:
        ValueError: the value is not a size.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str):
        found = _SIZE.fullmatch(value)
        if found:
            return int(found[1]) * _BYTES_PER_UNIT[found[2]]
    raise ValueError(f"not a size: {value!r}")
