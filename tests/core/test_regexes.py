"""Safe regexes: syntax errors, length and nesting caps, and catastrophic shapes refused."""

from __future__ import annotations

import pytest

from wscenario.core.regexes import (
    ALTERNATIVES_HINT,
    MAX_NESTING,
    MAX_PATTERN_LENGTH,
    NESTED_HINT,
    UnsafePattern,
    compile_pattern,
)

NESTED = [
    r"(a+)+",
    r"(a*)*",
    r"(?:a+){10}",
    r"(\w+\s?)+",
    r"(\s?\w+)+",
    r"(.*a){20}",
    r"(?:.*,)*x",
    r"(a?a?)*",
    r"(x+x+)+",
    r"([a-z]+[0-9]*)+",
    r"(a+|b)+",
    r"^(\w+\.?)+@",
    r"((ab)*)+",
    r"(a|aa)*",  # the parser factors this into a(?:|a): a variable part handing over to "a"
    r"(?:x|y)(?:(?:ab)+|c)+?",
    r"(?:[^,]+,?)+",
    r"(?:a+(?=b))+",
    r"(a)?(?:x(?(1)a+|b)a)+",
]
ALTERNATIVES = [
    r"(a|a)*",
    r"(a|b|ab)*",
    r"(?i)(ab|Ab)*",
    r"(?:x(?:a|ab|\w+)y)+",
    r"(?:(?:a\d|[ab][0-9])z)+",
]
SAFE = [
    r"^ok (?P<n>\d+)$",
    r"^[0-9a-f-]{36}$",
    r"^Bearer .+",
    r"(\d+\.)+\d+",
    r"(a+b)+",
    r"((ab)+b)+",
    r"(foo|bar)+",
    r"(a|ab)*",
    r"(a?)*",
    r"(a|)*",
    r"(a+){3}",
    r"(\s?\w)+",
    r"\w+\s\w+",
    r"(?:[^,]*,)*x",
    r"(?:(a)|b)+",
    r"(?i)(ab|Ac)*",
    r"(?=a)+b",
    r"(a)(?(1)b|c)+",
    r"(a)(?(1)b)+",
    r"(?:ab|cd)*",
    r"(?:x(?:ab|cd)y)+",
    r"(?:\s+(?<=\s)[^\s]|-)+",
    r"(?:(a)\1)+",
    r"(a*)(?:\1b)+",
    r"(?:[^a]b|ab)+",
    r"(?:(?:a|ab)\d+z)+",
    r"(?:\B[ab]+c|d)+",
    r"(?:\D+\d)+",
    # possessive quantifiers and atomic groups never hand characters back
    r"(a++)+",
    r"(a+)++",
    r"((?>a+))+",
    r"(\w++\s?)+",
]


@pytest.mark.parametrize("pattern", NESTED)
def test_nested_quantifiers_are_refused(pattern: str) -> None:
    with pytest.raises(UnsafePattern) as caught:
        compile_pattern(pattern)
    assert caught.value.message.startswith("regex can backtrack catastrophically")
    assert "split in many ways" in caught.value.message
    assert caught.value.hint == NESTED_HINT


@pytest.mark.parametrize("pattern", ALTERNATIVES)
def test_overlapping_alternatives_in_a_repeat_are_refused(pattern: str) -> None:
    with pytest.raises(UnsafePattern) as caught:
        compile_pattern(pattern)
    assert "alternatives inside a repeat can match the same text" in str(caught.value)
    assert caught.value.hint == ALTERNATIVES_HINT


@pytest.mark.parametrize("pattern", SAFE)
def test_safe_patterns_compile_to_the_same_regex(pattern: str) -> None:
    assert compile_pattern(pattern).pattern == pattern
    assert compile_pattern(pattern) is compile_pattern(pattern)


def test_safe_named_groups_work() -> None:
    found = compile_pattern(r"^ok (?P<n>\d+)$").search("ok 42")
    assert found is not None
    assert found.groupdict() == {"n": "42"}


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(ab", "invalid regex: missing ), unterminated subpattern at position 0"),
        ("a{2,1}", "invalid regex: min repeat greater than max repeat at position 2"),
        ("a{4294967295}", "invalid regex: the repetition number is too large"),
    ],
)
def test_invalid_patterns_say_why(pattern: str, message: str) -> None:
    with pytest.raises(UnsafePattern) as caught:
        compile_pattern(pattern)
    assert caught.value.message == message
    assert caught.value.hint is None


def test_too_long_pattern_is_refused() -> None:
    assert compile_pattern("a" * MAX_PATTERN_LENGTH).fullmatch("a" * MAX_PATTERN_LENGTH)
    with pytest.raises(UnsafePattern, match=f"longer than {MAX_PATTERN_LENGTH} characters"):
        compile_pattern("a" * (MAX_PATTERN_LENGTH + 1))


def test_deep_nesting_is_refused() -> None:
    depth = MAX_NESTING + 1
    with pytest.raises(UnsafePattern, match=f"deeper than {MAX_NESTING}"):
        compile_pattern("(" * depth + "a" + ")" * depth)
    assert compile_pattern("(" * MAX_NESTING + "a" + ")" * MAX_NESTING).match("a")


def test_nesting_that_overflows_the_parser_is_refused() -> None:
    depth = MAX_PATTERN_LENGTH // 2 - 1
    with pytest.raises(UnsafePattern, match=r"^invalid regex: maximum recursion depth"):
        compile_pattern("(" * depth + ")" * depth)
