"""The scenario JSON Schema, and its errors as diagnostics that point at the right place.

One ``Draft202012Validator`` is built the first time it is needed and reused. Valid data is
told apart first by the schema compiled into a plain predicate
(:mod:`wscenario.core.schema_predicate`), so a large valid scenario never pays for jsonschema's
error machinery; when data is invalid, jsonschema validates it, with the steps the predicate
accepts left out (they have no errors to report), so the cost follows the broken steps. Errors
come out as :class:`~wscenario.core.diagnostics.Diagnostic` values: the headline is jsonschema's
``best_match``, the others follow by relevance. Keys are pointed at where they were written
("unknown key 'txet'", "did you mean 'text'?"), never parsed from jsonschema's messages.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match, relevance

from wscenario.core.diagnostics import Diagnostic
from wscenario.core.model import (
    ALL_CLIENT_EVENTS,
    JSON,
    RAW_CLIENT_ONLY_STEPS,
    SERVER_EVENTS,
    client_events,
)
from wscenario.core.schema_predicate import Predicate, compile_predicate
from wscenario.core.source import Document, SourceMap
from wscenario.core.templating import suggest

SCHEMA_NAME = "scenario.schema.json"

_TYPE_NAMES = {
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def schema_path() -> Path:
    """Where ``scenario.schema.json`` is: inside the installed package, or in the checkout."""
    packaged = resources.files("wscenario") / "schemas" / SCHEMA_NAME
    if packaged.is_file():  # pragma: no cover - only in an installed wheel
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "schemas" / SCHEMA_NAME


@functools.cache
def scenario_schema() -> Mapping[str, Any]:
    """The scenario schema as loaded from ``schemas/scenario.schema.json``."""
    loaded: Mapping[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    return loaded


@functools.cache
def validator() -> Draft202012Validator:
    """The one validator for scenarios, built (and its schema checked) on first use."""
    schema = scenario_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@functools.cache
def scenario_predicate() -> Predicate:
    """The scenario schema as a predicate: whether data is a valid scenario (no errors)."""
    return compile_predicate(scenario_schema())


@functools.cache
def _step_predicates() -> tuple[Predicate, tuple[tuple[Predicate, Predicate], ...]]:
    """What every step must be, and (condition on the document, what its steps must be)."""
    schema = scenario_schema()
    always = compile_predicate(schema["properties"]["steps"]["items"], schema)
    sides = tuple(
        (
            compile_predicate(branch["if"], schema),
            compile_predicate(branch["then"]["properties"]["steps"]["items"], schema),
        )
        for branch in schema["allOf"]
    )
    return always, sides


def validate_data(doc: Document) -> list[Diagnostic]:
    """Every way ``doc.data`` breaks the schema; an empty list when it is valid."""
    if scenario_predicate()(doc.data):
        return []
    return diagnostics_for(schema_errors(doc.data), doc.source_map, unusable_names(doc.data))


class Unusable(NamedTuple):
    """Names the schema allows a client that its profile cannot use: hints leave them out
    (the checks refuse them, each with its own reason)."""

    steps: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()


NOTHING_UNUSABLE = Unusable()


def unusable_names(data: JSON) -> Unusable:
    """The steps and events a scenario cannot use: a server has no client events, a client
    no server events, nor the events of its profile's others (an ohos client has no pings,
    pongs or frames, a raw one no ``dataEnd``...); an ohos client has no raw steps."""
    if not isinstance(data, dict) or ("client" in data) == ("server" in data):
        return NOTHING_UNUSABLE
    if "server" in data:
        return Unusable(events=_ALL_EVENTS - frozenset(SERVER_EVENTS))
    client = data["client"]
    if not isinstance(client, dict):
        return NOTHING_UNUSABLE
    steps = frozenset() if client.get("profile") == "raw" else frozenset(RAW_CLIENT_ONLY_STEPS)
    return Unusable(steps, _ALL_EVENTS - frozenset(client_events(client)))


_ALL_EVENTS = ALL_CLIENT_EVENTS | frozenset(SERVER_EVENTS)


def schema_errors(data: JSON) -> list[ValidationError]:
    """The errors jsonschema finds in ``data``, validating only the steps that have some.

    Steps the predicate accepts are left out of what jsonschema sees; the paths of the
    errors in the others are put back to their own index. The schema reaches a step only
    through ``steps/items`` and its side's ``allOf`` branch, so a step that both accept
    has no error to report, and the rest of the document is validated as it is.
    """
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(steps, list):
        return list(validator().iter_errors(data))
    always, sides = _step_predicates()
    checks = [always, *(step for condition, step in sides if condition(data))]
    broken = [i for i, step in enumerate(steps) if not all(check(step) for check in checks)]
    kept = {**data, "steps": [steps[i] for i in broken]}
    errors = list(validator().iter_errors(kept))
    for error in errors:
        if len(error.path) >= 2 and error.path[0] == "steps":
            error.path[1] = broken[cast(int, error.path[1])]
    return errors


def diagnostics_for(
    errors: Iterable[ValidationError],
    source_map: SourceMap,
    unusable: Unusable = NOTHING_UNUSABLE,
) -> list[Diagnostic]:
    """Turn validation errors into diagnostics: ``best_match`` first, then by relevance.

    The result does not depend on the order the errors come in; duplicates (the same message
    at the same place) are shown once. Hints for a step's keys, and for the keys of what an
    event matcher expects, leave out the names in ``unusable`` (:func:`unusable_names`).
    """
    ordered = sorted(errors, key=_stable_key)
    if not ordered:
        return []
    head = best_match(ordered)
    rest = sorted((e for e in ordered if e is not head), key=relevance)
    diagnostics: dict[tuple[str, str], Diagnostic] = {}
    for error in [head, *rest]:
        for diagnostic in _convert(error, source_map, unusable):
            diagnostics.setdefault((diagnostic.pointer, diagnostic.message), diagnostic)
    return list(diagnostics.values())


def pointer_of(path: Iterable[str | int]) -> str:
    """The RFC 6901 JSON Pointer for a path of keys and indexes."""
    pointer = ""
    for part in path:
        token = part if isinstance(part, str) else str(part)
        if "~" in token or "/" in token:
            token = token.replace("~", "~0").replace("/", "~1")
        pointer += "/" + token
    return pointer


def allowed_hint(value: str, allowed: Iterable[object]) -> str:
    """``did you mean 'x'? allowed: a, b`` (the first part only when a value is close)."""
    shown = sorted(_show(item) for item in allowed)
    close = suggest(value, shown)
    listed = f"allowed: {', '.join(shown)}"
    return f"{close} {listed}" if close else listed


def _rule(error: ValidationError) -> Any:
    """The failed keyword's value in the schema (``validator_value``)."""
    return cast(Any, error.validator_value)


def _instance(error: ValidationError) -> Any:
    return cast(Any, error.instance)


def _schema(error: ValidationError) -> Mapping[str, Any]:
    schema = error.schema
    return schema if isinstance(schema, Mapping) else {}


_EVENT_MATCHER = re.compile(r"/(?:steps/\d+(?:/unordered/\d+)?/expect|ignore/\d+|rules/\d+/on)")
"""Where an event matcher is: the keys there are the events it expects."""


def _hidden_here(error: ValidationError, pointer: str, unusable: Unusable) -> frozenset[str]:
    """The names a hint at ``pointer`` leaves out: a step's keys, or the events a matcher
    (a bare event name, or the keys of its mapping) may name."""
    if len(error.absolute_path) == 2 and error.absolute_path[0] == "steps":
        return unusable.steps
    return unusable.events if _EVENT_MATCHER.fullmatch(pointer) else frozenset()


def _stable_key(error: ValidationError) -> tuple[str, str, str]:
    return (pointer_of(error.absolute_path), pointer_of(error.schema_path), error.message)


def _show(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _convert(
    error: ValidationError, source_map: SourceMap, unusable: Unusable
) -> Iterator[Diagnostic]:
    pointer = pointer_of(error.absolute_path)
    keyword = error.validator
    schema_path = list(error.schema_path)
    hidden = _hidden_here(error, pointer, unusable)
    if len(schema_path) >= 2 and schema_path[-2] == "propertyNames":
        yield _name_error(error, pointer, source_map, hidden)
    elif keyword == "additionalProperties":
        yield from _unknown_keys(error, pointer, source_map, hidden)
    elif keyword == "required":
        instance: Mapping[str, JSON] = _instance(error)
        for key in _rule(error):
            if key not in instance:
                message = f"missing required key '{key}'"
                yield Diagnostic(source_map.value_position(pointer), message, pointer)
    elif keyword == "dependentRequired":
        yield from _dependent_keys(error, pointer, source_map)
    elif keyword == "type":
        yield _type_error(error, pointer, source_map)
    elif keyword == "enum":
        shown = _show(_instance(error))
        hint = allowed_hint(shown, [name for name in _rule(error) if name not in hidden])
        message = f"unexpected value {json.dumps(error.instance)}"
        yield Diagnostic(source_map.value_position(pointer), message, pointer, hint)
    elif keyword == "const":
        message = f"expected {json.dumps(_rule(error))}, got {json.dumps(error.instance)}"
        yield Diagnostic(source_map.value_position(pointer), message, pointer)
    elif keyword == "pattern":
        message = f"invalid value {json.dumps(error.instance)}"
        about = _schema(error).get("description")
        yield Diagnostic(source_map.value_position(pointer), message, pointer, about)
    else:
        message = error.message[:1].lower() + error.message[1:]
        yield Diagnostic(source_map.value_position(pointer), message.rstrip("."), pointer)


def _name_error(
    error: ValidationError, pointer: str, source_map: SourceMap, unusable: Collection[str]
) -> Diagnostic:
    key = str(_instance(error))
    key_pointer = f"{pointer}{pointer_of([key])}"
    position = source_map.key_position(key_pointer)
    if error.validator == "enum":
        hint = allowed_hint(key, [name for name in _rule(error) if name not in unusable])
        return Diagnostic(position, f"unknown key '{key}'", key_pointer, hint)
    hint = "names are letters, digits and _, not starting with a digit"
    return Diagnostic(position, f"invalid name '{key}'", key_pointer, hint)


def _unknown_keys(
    error: ValidationError, pointer: str, source_map: SourceMap, unusable: Collection[str]
) -> Iterator[Diagnostic]:
    known = _schema(error).get("properties", {})
    shown = [name for name in known if name not in unusable]
    for key in _instance(error):
        if key not in known:
            key_pointer = f"{pointer}{pointer_of([key])}"
            yield Diagnostic(
                source_map.key_position(key_pointer),
                f"unknown key '{key}'",
                key_pointer,
                allowed_hint(key, shown),
            )


def _dependent_keys(
    error: ValidationError, pointer: str, source_map: SourceMap
) -> Iterator[Diagnostic]:
    instance: Mapping[str, JSON] = _instance(error)
    for key, needed in _rule(error).items():
        missing = [name for name in needed if key in instance and name not in instance]
        for name in missing:
            key_pointer = f"{pointer}{pointer_of([key])}"
            message = f"'{key}' needs '{name}' next to it"
            yield Diagnostic(source_map.key_position(key_pointer), message, key_pointer)


def _type_error(error: ValidationError, pointer: str, source_map: SourceMap) -> Diagnostic:
    expected = _rule(error)
    types = [expected] if isinstance(expected, str) else list(expected)
    names = [_TYPE_NAMES[name] for name in types]
    wanted = names[-1] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    message = f"expected {wanted}, got {_type_of(error.instance)}"
    hint = None
    text = source_map.source_text(pointer)
    if "string" in types and source_map.is_plain_scalar(pointer) and text is not None:
        hint = f'quote this value: "{text}"'
    return Diagnostic(source_map.value_position(pointer), message, pointer, hint)


def _type_of(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null"
