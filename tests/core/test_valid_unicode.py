"""Text holding a lone surrogate is told apart from valid Unicode, nested or not."""

from __future__ import annotations

import pytest

from wscenario.core.valid_unicode import holds_only_valid_unicode, is_valid_unicode, shown


def test_a_lone_surrogate_is_not_valid_unicode() -> None:
    assert is_valid_unicode("héllo 👋")
    assert not is_valid_unicode("a\udcffb")


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ({"k": ["a", ("b", 1, None)]}, True),
        ({"k": ["a", ("b\udcff",)]}, False),
        ({"k\udcff": "v"}, False),
        ({"k": "v\udcff"}, False),
        (["\udcff"], False),
        (3.5, True),
    ],
)
def test_nested_values_are_searched(value: object, valid: bool) -> None:
    assert holds_only_valid_unicode(value) is valid


def test_shown_escapes_lone_surrogates() -> None:
    assert shown("a\udcffb") == "a\\udcffb"
    assert shown("ok") == "ok"
