"""Matching observed events against what a scenario expects, and encoding what it sends.

``match_event`` checks an event's name, then its payload (message events) or its fields (the
others), and reports every difference it finds, each with a JSON Pointer into the received
value, never only the first. Bad expectations (an unknown variable, an unsafe regex, an
invalid schema) become mismatches too, so matching never raises.

JSON comparison (``json`` payloads and event fields):

* ``exact``: objects have the same keys, arrays the same length, compared element-wise;
* ``subset``: expected keys must be present and match, extra keys are allowed; arrays still
  have the same length and are compared element-wise, each element as a subset;
* a one-key object in the expected value is a wildcard: ``{"$any": true}``,
  ``{"$any": "<type>"}`` (``string``, ``integer``, ``number``, ``boolean``, ``object``,
  ``array``, ``null``; ``integer`` excludes booleans and floats, ``number`` excludes
  booleans) or ``{"$regex": "..."}`` (a string the pattern finds);
* ignored pointers (the matcher's and the scenario's) are not compared, nor anything below;
* numbers compare by value (``1 == 1.0``) but a boolean never equals a number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing.exceptions import Unresolvable

from wscenario.core.diff import format_value, safe_text
from wscenario.core.events import Event, EventValue
from wscenario.core.model import (
    JSON,
    MESSAGE_EVENTS,
    AnyMatcher,
    BinaryMatcher,
    EventMatcher,
    JsonMatcher,
    JsonPayload,
    Payload,
    PayloadMatcher,
    RegexMatcher,
    TextMatcher,
    TextPayload,
)
from wscenario.core.regexes import UnsafePattern, compile_pattern
from wscenario.core.templating import TemplateError, render_text, render_value

ANY_TYPES = ("string", "integer", "number", "boolean", "object", "array", "null")
"""Type names a ``{"$any": "<type>"}`` wildcard accepts."""

MESSAGE_LIMIT = 300
"""Longest a schema error's text may be in a mismatch (it quotes the received value)."""


@dataclass(frozen=True)
class Mismatch:
    """One difference: where in the received value (``""``: the whole), and what."""

    pointer: str
    message: str
    expected: object = None
    actual: object = None

    def __str__(self) -> str:
        return f"{self.pointer}: {self.message}" if self.pointer else self.message


@dataclass(frozen=True)
class MatchResult:
    """Every mismatch found (none: the event matched) and the values regex groups captured."""

    mismatches: tuple[Mismatch, ...] = ()
    captures: Mapping[str, JSON] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the event matched."""
        return not self.mismatches

    @property
    def explanation(self) -> str:
        """The mismatches as one line each (``/pointer: message``); empty when it matched."""
        return "\n".join(str(mismatch) for mismatch in self.mismatches)


class SaveError(ValueError):
    """A ``save`` pointer does not resolve in the event's value."""

    def __init__(self, name: str, pointer: str, message: str) -> None:
        super().__init__(f"cannot save {name!r} from {pointer!r}: {message}")
        self.name = name
        self.pointer = pointer
        self.message = message


def _failed(
    message: str, pointer: str = "", expected: object = None, actual: object = None
) -> MatchResult:
    return MatchResult((Mismatch(pointer, message, expected, actual),))


# --------------------------------------------------------------------------------------------
# Events and payloads
# --------------------------------------------------------------------------------------------


def match_event(
    matcher: EventMatcher,
    event: Event,
    variables: Mapping[str, JSON],
    env: Mapping[str, str],
    *,
    ignore_pointers: tuple[str, ...] = (),
) -> MatchResult:
    """Match one event: its name, then its payload (messages) or its fields (the others).

    ``ignore_pointers`` (the scenario's ``ignorePointers``) apply to ``json`` payloads.
    """
    if event.name != matcher.event:
        return _failed(
            f"expected a {matcher.event!r} event, got {event.name!r}",
            expected=matcher.event,
            actual=event.name,
        )
    if event.name in MESSAGE_EVENTS:
        if matcher.payload is None:
            return MatchResult()
        if not isinstance(event.value, str | bytes):
            return _failed(f"expected a message payload, got {format_value(event.value)}")
        return match_payload(
            matcher.payload, event.value, variables, env, ignore_pointers=ignore_pointers
        )
    if matcher.fields is None:
        return MatchResult()
    try:
        expected = render_value(matcher.fields, variables, env)
    except TemplateError as error:
        return _failed(f"cannot render the expected fields: {error}")
    return MatchResult(tuple(_compare_json(expected, event.value, subset=True)))


def match_payload(
    matcher: PayloadMatcher,
    data: str | bytes,
    variables: Mapping[str, JSON],
    env: Mapping[str, str],
    *,
    ignore_pointers: tuple[str, ...] = (),
) -> MatchResult:
    """Match a message's payload (text as ``str``, binary as ``bytes``)."""
    if isinstance(matcher, AnyMatcher):
        return _match_kind(matcher.kind, data)
    if isinstance(matcher, BinaryMatcher):
        if not isinstance(data, bytes):
            return _wrong_kind("binary", data)
        return _match_binary(matcher.data, data)
    if not isinstance(data, str):
        return _wrong_kind("text", data)
    try:
        if isinstance(matcher, TextMatcher):
            return _match_text(render_text(matcher.text, variables, env), data)
        if isinstance(matcher, RegexMatcher):
            return _match_regex(render_text(matcher.pattern, variables, env), data)
        if isinstance(matcher, JsonMatcher):
            ignore = frozenset(matcher.ignore + ignore_pointers)
            return _match_json_text(matcher, data, ignore, variables, env)
    except TemplateError as error:
        return _failed(f"cannot render the expectation: {error}")
    return _match_schema(matcher.schema, data)


def _match_kind(kind: str, data: str | bytes) -> MatchResult:
    if kind == "text" and not isinstance(data, str):
        return _wrong_kind("text", data)
    if kind == "binary" and not isinstance(data, bytes):
        return _wrong_kind("binary", data)
    return MatchResult()


def _wrong_kind(expected: str, data: str | bytes) -> MatchResult:
    got = f"binary ({len(data)} bytes)" if isinstance(data, bytes) else f"text ({len(data)} chars)"
    return _failed(f"expected {expected}, got {got}", expected=expected, actual=data)


def _match_text(expected: str, data: str) -> MatchResult:
    if data == expected:
        return MatchResult()
    return _failed(
        f"expected text {format_value(expected)}, got {format_value(data)}", "", expected, data
    )


def _match_regex(pattern: str, data: str) -> MatchResult:
    try:
        regex = compile_pattern(pattern)
    except UnsafePattern as error:
        return _failed(f"cannot use regex: {error.message}")
    found = regex.search(data)
    if found is None:
        return _failed(
            f"text {format_value(data)} does not match regex /{safe_text(pattern)}/",
            expected=pattern,
            actual=data,
        )
    return MatchResult(captures=found.groupdict())


def _match_binary(expected: bytes, data: bytes) -> MatchResult:
    if data == expected:
        return MatchResult()
    offset = next(
        (i for i, (a, b) in enumerate(zip(expected, data, strict=False)) if a != b),
        min(len(expected), len(data)),
    )
    return _failed(
        f"expected {format_value(expected)}, got {format_value(data)}:"
        f" first difference at byte {offset}",
        expected=expected,
        actual=data,
    )


def _parse_json(data: str) -> JSON:
    """Parse received JSON; raises ``ValueError`` with a message that says why not."""
    try:
        value: JSON = json.loads(data)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"expected JSON, got invalid JSON ({error.msg} at line {error.lineno}"
            f" column {error.colno}): {format_value(data)}"
        ) from None
    except (ValueError, RecursionError) as error:
        raise ValueError(f"expected JSON, got JSON that cannot be read: {error}") from None
    return value


def _match_json_text(
    matcher: JsonMatcher,
    data: str,
    ignore: frozenset[str],
    variables: Mapping[str, JSON],
    env: Mapping[str, str],
) -> MatchResult:
    try:
        actual = _parse_json(data)
    except ValueError as error:
        return _failed(str(error), actual=data)
    subset = matcher.mode == "subset"
    try:
        expected = render_value(matcher.value, variables, env)
        return MatchResult(tuple(_compare_json(expected, actual, subset=subset, ignore=ignore)))
    except RecursionError:
        return _failed("the JSON nests too deeply to compare")


def _match_schema(schema: Mapping[str, JSON] | bool, data: str) -> MatchResult:
    try:
        actual = _parse_json(data)
    except ValueError as error:
        return _failed(str(error), actual=data)
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
        errors = sorted(
            validator.iter_errors(actual), key=lambda e: list(map(str, e.absolute_path))
        )
        return MatchResult(
            tuple(
                Mismatch(
                    _pointer(error.absolute_path),
                    safe_text(error.message, MESSAGE_LIMIT),
                    error.schema,
                    error.instance,
                )
                for error in errors
            )
        )
    except SchemaError as error:
        return _failed(f"invalid schema: {safe_text(error.message, MESSAGE_LIMIT)}")
    except Unresolvable as error:
        return _failed(f"cannot resolve a schema reference: {error}")
    except RecursionError:
        return _failed("the received JSON nests too deeply to validate")


@lru_cache(maxsize=128)
def _validator(schema_json: str) -> Draft202012Validator:
    """One validator per distinct schema (given as its canonical JSON), formats checked."""
    schema = json.loads(schema_json)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


# --------------------------------------------------------------------------------------------
# JSON comparison
# --------------------------------------------------------------------------------------------


def _compare_json(
    expected: JSON,
    actual: EventValue,
    *,
    subset: bool,
    ignore: frozenset[str] = frozenset(),
    pointer: str = "",
) -> list[Mismatch]:
    """Every mismatch between ``expected`` (with wildcards) and ``actual``, with pointers."""
    if pointer in ignore:
        return []
    if isinstance(expected, dict) and len(expected) == 1 and next(iter(expected)) in _WILDCARDS:
        key, argument = next(iter(expected.items()))
        return _WILDCARDS[key](argument, actual, pointer)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [_type_mismatch(expected, actual, pointer)]
        return _compare_objects(expected, actual, subset, ignore, pointer)
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [_type_mismatch(expected, actual, pointer)]
        return _compare_arrays(expected, actual, subset, ignore, pointer)
    if _kind(expected) != _kind(actual):
        return [_type_mismatch(expected, actual, pointer)]
    if expected != actual:
        message = f"expected {format_value(expected)}, got {format_value(actual)}"
        return [Mismatch(pointer, message, expected, actual)]
    return []


def _compare_objects(
    expected: dict[str, JSON],
    actual: dict[str, JSON],
    subset: bool,
    ignore: frozenset[str],
    pointer: str,
) -> list[Mismatch]:
    found: list[Mismatch] = []
    for key, value in expected.items():
        child = f"{pointer}/{escape_token(key)}"
        if key not in actual:
            if child not in ignore:
                found.append(Mismatch(child, f"missing key {format_value(key)}", value, None))
            continue
        found += _compare_json(value, actual[key], subset=subset, ignore=ignore, pointer=child)
    if not subset:
        for key, value in actual.items():
            child = f"{pointer}/{escape_token(key)}"
            if key not in expected and child not in ignore:
                found.append(Mismatch(child, f"unexpected key {format_value(key)}", None, value))
    return found


def _compare_arrays(
    expected: list[JSON], actual: list[JSON], subset: bool, ignore: frozenset[str], pointer: str
) -> list[Mismatch]:
    found: list[Mismatch] = []
    for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
        child = f"{pointer}/{index}"
        found += _compare_json(want, got, subset=subset, ignore=ignore, pointer=child)
    for index in range(len(actual), len(expected)):
        child = f"{pointer}/{index}"
        if child not in ignore:
            found.append(Mismatch(child, "missing item", expected[index], None))
    for index in range(len(expected), len(actual)):
        child = f"{pointer}/{index}"
        if child not in ignore:
            found.append(Mismatch(child, "unexpected item", None, actual[index]))
    return found


def _type_mismatch(expected: JSON, actual: EventValue, pointer: str) -> Mismatch:
    message = f"expected {_kind(expected)}, got {_kind(actual)} {format_value(actual)}"
    return Mismatch(pointer, message, expected, actual)


def _kind(value: object) -> str:
    """The JSON type name of a value (``binary`` for bytes)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "binary"


def _any(argument: JSON, actual: EventValue, pointer: str) -> list[Mismatch]:
    if argument is True:
        return []
    if not isinstance(argument, str) or argument not in ANY_TYPES:
        message = (
            f"invalid wildcard {{$any: {format_value(argument)}}}:"
            f" expected true or one of {', '.join(ANY_TYPES)}"
        )
        return [Mismatch(pointer, message, argument, actual)]
    if _is_type(actual, argument):
        return []
    message = f"expected any {argument}, got {_kind(actual)} {format_value(actual)}"
    return [Mismatch(pointer, message, {"$any": argument}, actual)]


def _is_type(value: EventValue, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return _kind(value) == name


def _regex(argument: JSON, actual: EventValue, pointer: str) -> list[Mismatch]:
    if not isinstance(argument, str):
        message = f"invalid wildcard {{$regex: {format_value(argument)}}}: expected a pattern"
        return [Mismatch(pointer, message, argument, actual)]
    try:
        regex = compile_pattern(argument)
    except UnsafePattern as error:
        return [Mismatch(pointer, f"cannot use regex: {error.message}", argument, actual)]
    if not isinstance(actual, str):
        message = (
            f"expected a string matching /{safe_text(argument)}/,"
            f" got {_kind(actual)} {format_value(actual)}"
        )
        return [Mismatch(pointer, message, {"$regex": argument}, actual)]
    if regex.search(actual) is None:
        message = f"{format_value(actual)} does not match regex /{safe_text(argument)}/"
        return [Mismatch(pointer, message, {"$regex": argument}, actual)]
    return []


_WILDCARDS = {"$any": _any, "$regex": _regex}


# --------------------------------------------------------------------------------------------
# JSON Pointers and saving
# --------------------------------------------------------------------------------------------


class PointerError(LookupError):
    """A JSON Pointer is malformed or leads nowhere in a value."""


def escape_token(token: str) -> str:
    """One JSON Pointer reference token, escaped (``~`` as ``~0``, ``/`` as ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(path: Iterable[str | int]) -> str:
    return "".join(f"/{escape_token(str(part))}" for part in path)


def resolve_pointer(value: JSON, pointer: str) -> JSON:
    """The value at ``pointer`` (RFC 6901) inside ``value``.

    Raises:
        PointerError: the pointer is malformed or leads nowhere; the message says where.
    """
    if pointer == "":
        return value
    if not pointer.startswith("/"):
        raise PointerError("a JSON Pointer is empty or starts with '/'")
    current = value
    where = ""
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict):
            if token not in current:
                raise PointerError(f"no key {token!r} at {where or 'the top'}")
            current = current[token]
        elif isinstance(current, list):
            if not (token == "0" or (token.isdigit() and token.isascii() and token[0] != "0")):
                raise PointerError(f"{token!r} is not an array index at {where or 'the top'}")
            if int(token) >= len(current):
                raise PointerError(
                    f"index {token} is out of range at {where or 'the top'} ({len(current)} items)"
                )
            current = current[int(token)]
        else:
            raise PointerError(f"cannot look inside {_kind(current)} at {where or 'the top'}")
        where += f"/{raw}"
    return current


def save_values(save: Mapping[str, str], event: Event) -> dict[str, JSON]:
    """The values ``save`` asks for: each name's JSON Pointer into the event's value.

    For a message, ``""`` is the whole text and any other pointer looks into the text parsed
    as JSON; for other events the pointer looks into the event's value.

    Raises:
        SaveError: a pointer does not resolve (or the message is binary, or not JSON).
    """
    saved: dict[str, JSON] = {}
    for name, pointer in save.items():
        saved[name] = _save_one(name, pointer, event)
    return saved


def _save_one(name: str, pointer: str, event: Event) -> JSON:
    value = event.value
    if isinstance(value, bytes):
        raise SaveError(name, pointer, "a binary message holds no JSON or text to save")
    if event.name in MESSAGE_EVENTS and isinstance(value, str) and pointer != "":
        try:
            value = _parse_json(value)
        except ValueError as error:
            raise SaveError(name, pointer, str(error)) from None
    try:
        return resolve_pointer(value, pointer)
    except PointerError as error:
        raise SaveError(name, pointer, str(error)) from None


# --------------------------------------------------------------------------------------------
# Sending and labels
# --------------------------------------------------------------------------------------------


def encode_payload(
    payload: Payload, variables: Mapping[str, JSON], env: Mapping[str, str]
) -> str | bytes:
    """What goes on the wire for a payload: rendered text, compact JSON text, or bytes.

    Raises:
        TemplateError: a template names a variable with no value.
    """
    if isinstance(payload, TextPayload):
        return render_text(payload.text, variables, env)
    if isinstance(payload, JsonPayload):
        value = render_value(payload.value, variables, env)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return payload.data


def event_label(event: Event) -> str:
    """A short, safe description: ``message 'hello'``, ``close {code: 1000, reason: 'bye'}``."""
    if event.value is None:
        return event.name
    return f"{event.name} {format_value(event.value)}"
