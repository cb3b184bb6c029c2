"""Regexes from scenarios, compiled once and refused when they could hang a run.

A scenario's regex runs against data a peer sends, so a pattern that backtracks
catastrophically would let one message stall the runner. ``compile_pattern`` parses the
pattern with the ``re`` module's own parser and walks the tree looking for the shapes known
to blow up:

* a repeat whose body can be split in several ways, because a part of variable length can
  hand characters over to what follows it: ``(a+)+``, ``(a*)*``, ``(\\w+\\s?)+``,
  ``(.*a){20}``;
* a repeat over alternatives that can match the same text: ``(a|a)*``, ``(a|aa)*``.

This is a conservative check of the pattern's shape, not a proof: it looks at the sets of
characters each part can start with or consume (sampled over ASCII and a few non-ASCII
characters). Possessive quantifiers (``a++``) and atomic groups (``(?>...)``) never hand
characters back, so they are the cure the error suggests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, TypeAlias, cast

if TYPE_CHECKING:
    import sre_constants as _constants
    import sre_parse as _parser
else:
    from re import _constants, _parser

MAX_PATTERN_LENGTH = 1000
"""Longer patterns are refused outright."""

MAX_NESTING = 100
"""Deeper nesting of groups and repeats is refused (it would only hide a bad shape)."""

LARGE_COUNT = 10
"""A repeat of at least this many iterations (or unbounded) is checked for ambiguity."""

NESTED_HINT = "use a possessive quantifier (a++) or an atomic group (?>...)"
ALTERNATIVES_HINT = (
    "make the alternatives exclusive, or use a possessive repeat (...)*+ or an atomic group (?>...)"
)

CharSet: TypeAlias = frozenset[str]
Item: TypeAlias = "tuple[_constants._NamedIntConstant, object]"

_SAMPLES: CharSet = frozenset(map(chr, range(128))) | frozenset("\u00a0\u00e9\u00df\u0663\u2028中")
"""The characters character sets are compared on: ASCII plus a few that behave differently."""

_NOTHING: CharSet = frozenset()
_CATEGORIES = {
    _constants.CATEGORY_DIGIT: r"\d",
    _constants.CATEGORY_NOT_DIGIT: r"\D",
    _constants.CATEGORY_SPACE: r"\s",
    _constants.CATEGORY_NOT_SPACE: r"\S",
    _constants.CATEGORY_WORD: r"\w",
    _constants.CATEGORY_NOT_WORD: r"\W",
}
_REPEATS = (_constants.MAX_REPEAT, _constants.MIN_REPEAT)
_ZERO_WIDTH = (_constants.AT, _constants.ASSERT, _constants.ASSERT_NOT)


class UnsafePattern(ValueError):
    """A regex is invalid, too long, or shaped so that matching could take exponential time."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile ``pattern`` once, after checking it cannot backtrack catastrophically.

    Raises:
        UnsafePattern: a syntax error (with its position), a pattern longer than
            ``MAX_PATTERN_LENGTH``, or a shape known to backtrack catastrophically.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UnsafePattern(f"regex is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise UnsafePattern(f"invalid regex: {error.msg} at position {error.pos}") from None
    except (OverflowError, RecursionError) as error:
        raise UnsafePattern(f"invalid regex: {error}") from None
    parsed = _parser.parse(pattern)
    _Checker(parsed.state).check(parsed, depth=0)
    return compiled


@dataclass(frozen=True)
class _Shape:
    """What the analysis needs to know about one item or sequence of a parsed pattern."""

    first: CharSet
    """Characters a match can start with."""
    chars: CharSet
    """Characters a match can contain."""
    nullable: bool
    positions: tuple[CharSet, ...] | None
    """For a fixed-width part: the characters allowed at each position; else ``None``."""


class _Checker:
    """Walks a parsed pattern and raises ``UnsafePattern`` at the first dangerous repeat."""

    def __init__(self, state: _parser.State) -> None:
        self._state = state
        self._ignore_case = bool(state.flags & re.IGNORECASE)
        self._shapes: dict[tuple[object, int], _Shape] = {}

    # -- the walk -------------------------------------------------------------------------

    def check(self, pattern: _parser.SubPattern, depth: int) -> None:
        if depth > MAX_NESTING:
            raise UnsafePattern(f"regex nests groups and repeats deeper than {MAX_NESTING}")
        for op, av in pattern.data:
            for child in _children(op, av):
                self.check(child, depth + 1)
            if op in _REPEATS:
                _low, high, body = cast("tuple[int, int, _parser.SubPattern]", av)
                if high >= LARGE_COUNT:
                    self._check_repeat_body(body)

    def _check_repeat_body(self, body: _parser.SubPattern) -> None:
        items = _flatten(body)
        if len(items) == 1 and items[0][0] is _constants.BRANCH:
            self._check_spelling(_alternatives(items[0][1]))
        for op, av in items:
            if op is _constants.BRANCH:
                self._check_alternatives(_alternatives(av))
        if self._hands_over(items, self._sequence(body).first, cyclic=True):
            raise UnsafePattern(
                "regex can backtrack catastrophically: a repeated part can be split in many"
                " ways, as in (a+)+",
                NESTED_HINT,
            )

    def _check_alternatives(self, alternatives: Sequence[_parser.SubPattern]) -> None:
        """Two alternatives that can match the same text double the work at each repeat."""
        shapes = [self._sequence(alternative) for alternative in alternatives]
        for i, left in enumerate(shapes):
            for right in shapes[i + 1 :]:
                if left.positions is None or right.positions is None:
                    same = bool(left.first & right.first)
                else:
                    same = len(left.positions) == len(right.positions) and _fits(
                        left.positions, right.positions
                    )
                if same:
                    _raise_alternatives()

    def _check_spelling(self, alternatives: Sequence[_parser.SubPattern]) -> None:
        """Under a repeat of just these alternatives, none may be spelt by the others."""
        spellings = [self._sequence(alternative).positions for alternative in alternatives]
        fixed = [(i, p) for i, p in enumerate(spellings) if p]
        for index, target in fixed:
            reached = {0}
            for start in range(len(target)):
                if start not in reached:
                    continue
                for other, piece in fixed:
                    end = start + len(piece)
                    if other != index and end <= len(target) and _fits(target[start:end], piece):
                        reached.add(end)
            if len(target) in reached:
                _raise_alternatives()

    def _hands_over(self, items: Sequence[Item], after: CharSet, *, cyclic: bool) -> bool:
        """Whether a part of variable length can give characters to what follows it.

        ``after`` is what can come once ``items`` are done: for a repeat's body (``cyclic``)
        the body's next iteration, which only counts when giving back leaves both
        iterations non-empty.
        """
        required = sum(not self._item(op, av).nullable for op, av in items)
        rest_first: CharSet = _NOTHING  # what the items after the current one can start with
        rest_nullable = True
        for op, av in reversed(items):
            shape = self._item(op, av)
            if self._gives_back(op, av):
                follow = rest_first
                others_required = required - (not shape.nullable)
                if rest_nullable and (not cyclic or self._both_non_empty(op, av, others_required)):
                    follow |= after
                if self._item_hands_over(op, av, follow):
                    return True
            rest_first = shape.first | rest_first if shape.nullable else shape.first
            rest_nullable = rest_nullable and shape.nullable
        return False

    def _item_hands_over(
        self, op: _constants._NamedIntConstant, av: object, follow: CharSet
    ) -> bool:
        if op in _REPEATS:
            return bool(
                self._sequence(cast("tuple[int, int, _parser.SubPattern]", av)[2]).first & follow
            )
        if op is _constants.BRANCH:
            return self._branch_hands_over(_alternatives(av), follow)
        # the only other part of variable width: a conditional (?(1)yes|no)
        _group, yes, no = cast("tuple[int, _parser.SubPattern, _parser.SubPattern | None]", av)
        return self._branch_hands_over([yes, no or _parser.SubPattern(self._state)], follow)

    def _branch_hands_over(
        self, alternatives: Sequence[_parser.SubPattern], follow: CharSet
    ) -> bool:
        """An alternative hands over from inside, or a shorter one leaves a longer one's tail."""
        if any(self._hands_over(_flatten(a), follow, cyclic=False) for a in alternatives):
            return True
        shapes = [(self._sequence(a), a.getwidth()) for a in alternatives]
        return any(
            (short.nullable or short.first & long.first)
            and short_width != long_width
            and long.chars & follow
            for short, short_width in shapes
            for long, long_width in shapes
        )

    def _both_non_empty(
        self, op: _constants._NamedIntConstant, av: object, others_required: int
    ) -> bool:
        """Whether an item can give back and its iteration still match something.

        It can if the item matches more than one character, or another item must match.
        """
        return self._width(op, av)[1] > 1 or others_required > 0

    def _gives_back(self, op: _constants._NamedIntConstant, av: object) -> bool:
        """Whether this item can match more or fewer characters and still let the rest match.

        Atomic groups and possessive repeats never give back, and a back reference has no
        choice: it matches exactly what its group captured.
        """
        if op in (_constants.ATOMIC_GROUP, _constants.POSSESSIVE_REPEAT, _constants.GROUPREF):
            return False
        low, high = self._width(op, av)
        return low != high

    def _width(self, op: _constants._NamedIntConstant, av: object) -> tuple[int, int]:
        return _parser.SubPattern(self._state, [(op, av)]).getwidth()  # type: ignore[list-item]

    # -- shapes ---------------------------------------------------------------------------

    def _sequence(self, pattern: _parser.SubPattern) -> _Shape:
        first: set[str] = set()
        chars: set[str] = set()
        positions: list[CharSet] | None = []
        nullable = True
        for op, av in pattern.data:
            shape = self._item(op, av)
            if nullable:
                first |= shape.first
            chars |= shape.chars
            nullable = nullable and shape.nullable
            if positions is not None and shape.positions is not None:
                positions.extend(shape.positions)
            else:
                positions = None
        return _Shape(frozenset(first), frozenset(chars), nullable, _tuple(positions))

    def _item(self, op: _constants._NamedIntConstant, av: object) -> _Shape:
        key = (op, id(av))  # the parsed tree outlives the check, so ids are stable
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = self._new_item(op, av)
        return shape

    def _new_item(self, op: _constants._NamedIntConstant, av: object) -> _Shape:
        if op in _ZERO_WIDTH:
            return _Shape(_NOTHING, _NOTHING, True, ())
        if op in _REPEATS or op is _constants.POSSESSIVE_REPEAT:
            low, high, body = cast("tuple[int, int, _parser.SubPattern]", av)
            inner = self._sequence(body)
            fixed = low == high and inner.positions is not None
            positions = inner.positions * low if fixed and inner.positions is not None else None
            return _Shape(inner.first, inner.chars, low == 0 or inner.nullable, positions)
        if op is _constants.SUBPATTERN:
            return self._sequence(cast("tuple[object, int, int, _parser.SubPattern]", av)[3])
        if op is _constants.ATOMIC_GROUP:
            return self._sequence(cast("_parser.SubPattern", av))
        if op is _constants.BRANCH:
            return self._union(_alternatives(av))
        if op is _constants.GROUPREF_EXISTS:
            _group, yes, no = cast("tuple[int, _parser.SubPattern, _parser.SubPattern | None]", av)
            return self._union([yes, no or _parser.SubPattern(self._state)])
        if op is _constants.GROUPREF:
            return _Shape(_SAMPLES, _SAMPLES, True, None)
        single = self._fold(self._single(op, av))
        return _Shape(single, single, False, (single,))

    def _union(self, alternatives: Sequence[_parser.SubPattern]) -> _Shape:
        shapes = [self._sequence(alternative) for alternative in alternatives]
        widths = {len(s.positions) if s.positions is not None else None for s in shapes}
        positions: tuple[CharSet, ...] | None = None
        if len(widths) == 1 and None not in widths:
            spellings = [s.positions for s in shapes if s.positions is not None]
            positions = tuple(frozenset().union(*column) for column in zip(*spellings, strict=True))
        return _Shape(
            frozenset().union(*(s.first for s in shapes)),
            frozenset().union(*(s.chars for s in shapes)),
            any(s.nullable for s in shapes),
            positions,
        )

    def _single(self, op: _constants._NamedIntConstant, av: object) -> CharSet:
        """The characters one single-character item matches."""
        if op is _constants.LITERAL:
            return frozenset({chr(cast(int, av))})
        if op is _constants.NOT_LITERAL:
            return _SAMPLES - {chr(cast(int, av))}
        if op is _constants.IN:
            return _class(cast("list[tuple[_constants._NamedIntConstant, object]]", av))
        return _SAMPLES  # ANY, and anything this analysis does not know: assume the worst

    def _fold(self, chars: CharSet) -> CharSet:
        if not self._ignore_case:
            return chars
        lowered = {c.lower() for c in chars}
        return frozenset(c for c in _SAMPLES if c.lower() in lowered)


def _class(members: Sequence[tuple[_constants._NamedIntConstant, object]]) -> CharSet:
    """The characters a ``[...]`` class (or ``\\d``, ``\\w``...) matches."""
    chars: set[str] = set()
    negate = False
    for op, av in members:
        if op is _constants.NEGATE:
            negate = True
        elif op is _constants.LITERAL:
            chars.add(chr(cast(int, av)))
        elif op is _constants.RANGE:
            low, high = cast("tuple[int, int]", av)
            chars.update(c for c in _SAMPLES if low <= ord(c) <= high)
        else:
            category = re.compile(_CATEGORIES.get(cast(_constants._NamedIntConstant, av), r"."))
            chars.update(c for c in _SAMPLES if category.fullmatch(c))
    return _SAMPLES - chars if negate else frozenset(chars)


def _children(op: _constants._NamedIntConstant, av: object) -> Iterator[_parser.SubPattern]:
    """The sub-patterns directly inside one item."""
    if op in _REPEATS or op is _constants.POSSESSIVE_REPEAT:
        yield cast("tuple[int, int, _parser.SubPattern]", av)[2]
    elif op is _constants.SUBPATTERN:
        yield cast("tuple[object, int, int, _parser.SubPattern]", av)[3]
    elif op is _constants.ATOMIC_GROUP:
        yield cast("_parser.SubPattern", av)
    elif op is _constants.ASSERT or op is _constants.ASSERT_NOT:
        yield cast("tuple[int, _parser.SubPattern]", av)[1]
    elif op is _constants.BRANCH:
        yield from _alternatives(av)
    elif op is _constants.GROUPREF_EXISTS:
        _group, yes, no = cast("tuple[int, _parser.SubPattern, _parser.SubPattern | None]", av)
        yield yes
        if no is not None:
            yield no


def _flatten(pattern: _parser.SubPattern) -> list[Item]:
    """The items of a sequence, with plain groups replaced by their contents."""
    items: list[Item] = []
    for op, av in pattern.data:
        if op is _constants.SUBPATTERN:
            items.extend(_flatten(cast("tuple[object, int, int, _parser.SubPattern]", av)[3]))
        else:
            items.append((op, av))
    return items


def _fits(spelling: Sequence[CharSet], piece: Sequence[CharSet]) -> bool:
    """Whether some text matches both spellings (same width, overlapping at every position)."""
    return all(a & b for a, b in zip(spelling, piece, strict=True))


def _alternatives(av: object) -> list[_parser.SubPattern]:
    return cast("tuple[None, list[_parser.SubPattern]]", av)[1]


def _tuple(positions: list[CharSet] | None) -> tuple[CharSet, ...] | None:
    return None if positions is None else tuple(positions)


def _raise_alternatives() -> None:
    raise UnsafePattern(
        "regex can backtrack catastrophically: alternatives inside a repeat can match the same"
        " text, as in (a|a)*",
        ALTERNATIVES_HINT,
    )
