"""A JSON Schema compiled into a plain yes/no check, for telling valid data apart quickly.

``compile_predicate(schema)`` turns a Draft 2020-12 schema into a function that answers what
``Draft202012Validator(schema).is_valid(instance)`` answers, without building errors, evolving
validators or resolving ``$ref`` at validation time. It knows the keywords the scenario schema
uses (and a few more); any other keyword is refused with :class:`UnsupportedSchema` when the
schema is compiled, never silently ignored. Errors are still jsonschema's job: the predicate
only tells where there are none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Predicate = Callable[[Any], bool]

ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
"""Keywords that never make an instance invalid."""

_OBJECT_KEYWORDS = frozenset(
    {
        "properties",
        "additionalProperties",
        "propertyNames",
        "required",
        "minProperties",
        "maxProperties",
        "dependentRequired",
    }
)
_ARRAY_KEYWORDS = frozenset({"items", "minItems", "maxItems"})
_STRING_KEYWORDS = frozenset({"pattern", "minLength", "maxLength"})
_NUMBER_KEYWORDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_ANY_KEYWORDS = frozenset({"type", "enum", "const", "$ref", "allOf", "if", "then", "else", "not"})
KNOWN = ANNOTATIONS | _OBJECT_KEYWORDS | _ARRAY_KEYWORDS | _STRING_KEYWORDS
KNOWN |= _NUMBER_KEYWORDS | _ANY_KEYWORDS
"""Every keyword :func:`compile_predicate` understands."""


class UnsupportedSchema(ValueError):
    """The schema uses a keyword or reference the predicate compiler does not know."""


def compile_predicate(schema: Any, root: Any = None) -> Predicate:
    """A function telling whether an instance is valid under ``schema``.

    ``root`` is the document ``$ref`` fragments (``#/$defs/x``) point into; by default the
    schema itself.

    Raises:
        UnsupportedSchema: an unknown keyword, or a ``$ref`` that is not a local fragment.
    """
    return _Compiler(schema if root is None else root).compile(schema)


def _always(instance: Any) -> bool:
    return True


def _never(instance: Any) -> bool:
    return False


def _all(checks: Sequence[Predicate]) -> Predicate:
    return _combine(checks, ())


def _equal(one: Any, two: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` is ``1.0``, containers compare deeply."""
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(map(_equal, one, two))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(_equal(one[k], two[k]) for k in one)
    if isinstance(one, bool) or isinstance(two, bool):
        return one is two
    return bool(one == two)


def _is_integer(instance: Any) -> bool:
    if isinstance(instance, float):
        return instance.is_integer()
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(instance: Any) -> bool:
    return isinstance(instance, (int, float)) and not isinstance(instance, bool)


_CLASSES: dict[str, type] = {
    "string": str,
    "object": dict,
    "array": list,
    "boolean": bool,
    "null": type(None),
}
"""The JSON types that are exactly one Python class (numbers need more: ``true`` is no 1)."""
_NUMERIC: dict[str, Predicate] = {"integer": _is_integer, "number": _is_number}


class _Compiler:
    def __init__(self, root: Any) -> None:
        self._root = root
        self._refs: dict[str, Predicate] = {}

    def compile(self, schema: Any) -> Predicate:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, Mapping):
            raise UnsupportedSchema(f"a schema must be an object or a boolean, not {schema!r}")
        unknown = sorted(set(schema) - KNOWN)
        if unknown:
            raise UnsupportedSchema(f"unsupported keyword {unknown[0]!r}")
        checks = self._generic(schema)
        typed: list[tuple[type, Predicate]] = []
        for name, keywords, make in (
            ("object", _OBJECT_KEYWORDS, self._object),
            ("array", _ARRAY_KEYWORDS, self._array),
            ("string", _STRING_KEYWORDS, self._string),
        ):
            kind_checks = make(schema) if keywords & schema.keys() else []
            if kind_checks and schema.get("type") == name:
                checks.extend(kind_checks)  # after the type check, which comes first
            elif kind_checks:
                typed.append((_CLASSES[name], _all(kind_checks)))
        if _NUMBER_KEYWORDS & schema.keys():
            checks.append(_number(schema))
        return _combine(checks, typed)

    # -- keywords for any instance ---------------------------------------------------------

    def _generic(self, schema: Mapping[str, Any]) -> list[Predicate]:
        checks: list[Predicate] = []
        if "type" in schema:
            checks.append(_type(schema["type"]))
        if "enum" in schema:
            checks.append(_enum(schema["enum"]))
        if "const" in schema:
            const = schema["const"]
            checks.append(lambda v: _equal(v, const))
        if "$ref" in schema:
            checks.append(self._ref(schema["$ref"]))
        if "allOf" in schema:
            checks.append(self._all_of(schema["allOf"]))
        if "if" in schema:
            checks.append(self._if(schema))
        if "not" in schema:
            negated = self.compile(schema["not"])
            checks.append(lambda v: not negated(v))
        return checks

    def _ref(self, ref: str) -> Predicate:
        if ref in self._refs:
            return self._refs[ref]
        if not ref.startswith("#"):
            raise UnsupportedSchema(f"only local references are supported, not {ref!r}")
        target = self._root
        for token in ref[1:].split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            try:
                target = target[int(token) if isinstance(target, list) else token]
            except (KeyError, IndexError, ValueError, TypeError):
                raise UnsupportedSchema(f"unresolvable reference {ref!r}") from None
        cell: list[Predicate] = []
        self._refs[ref] = lambda v: cell[0](v)  # a reference to itself, while compiling
        cell.append(self.compile(target))
        self._refs[ref] = cell[0]
        return cell[0]

    def _all_of(self, items: list[Any]) -> Predicate:
        keys = [_dispatch_key(item) for item in items]
        if None in keys:
            return _all([self.compile(item) for item in items])
        # every item is "if the object has key k, then ...": look the instance's keys up
        table: dict[str, list[Predicate]] = {}
        for key, item in zip(keys, items, strict=True):
            assert key is not None
            table.setdefault(key, []).append(self.compile(item["then"]))
        every_then = _all([check for checks in table.values() for check in checks])

        def dispatch(instance: Any) -> bool:
            if not isinstance(instance, dict):
                return every_then(instance)  # "required" holds for anything but an object
            for key in instance:
                for check in table.get(key, ()):
                    if not check(instance):
                        return False
            return True

        return dispatch

    def _if(self, schema: Mapping[str, Any]) -> Predicate:
        condition = self.compile(schema["if"])
        then = self.compile(schema.get("then", True))
        otherwise = self.compile(schema.get("else", True))
        return lambda v: then(v) if condition(v) else otherwise(v)

    # -- keywords for one type of instance -------------------------------------------------

    def _object(self, schema: Mapping[str, Any]) -> list[Predicate]:
        checks: list[Predicate] = []
        known = frozenset(schema.get("properties", {}))
        properties = {
            name: self.compile(sub)
            for name, sub in schema.get("properties", {}).items()
            if not _is_trivial(sub)
        }
        if properties:
            checks.append(_properties(properties))
        extra = schema.get("additionalProperties", True)
        if extra is False:
            checks.append(lambda v: known.issuperset(v))
        elif not _is_trivial(extra):
            other = self.compile(extra)
            checks.append(lambda v: all(other(v[name]) for name in v if name not in known))
        if "propertyNames" in schema:
            checks.append(self._names(schema["propertyNames"]))
        required = tuple(schema.get("required", ()))
        if required:
            checks.append(lambda v: all(name in v for name in required))
        if "minProperties" in schema or "maxProperties" in schema:
            checks.append(_size(schema.get("minProperties", 0), schema.get("maxProperties")))
        dependent = schema.get("dependentRequired", {})
        if dependent:
            checks.append(
                lambda v: all(
                    name in v for key, needed in dependent.items() if key in v for name in needed
                )
            )
        return checks

    def _names(self, schema: Any) -> Predicate:
        if isinstance(schema, Mapping) and set(schema) - ANNOTATIONS == {"enum"}:
            allowed = frozenset(item for item in schema["enum"] if isinstance(item, str))
            return lambda v: allowed.issuperset(v)
        check = self.compile(schema)
        return lambda v: all(check(name) for name in v)

    def _array(self, schema: Mapping[str, Any]) -> list[Predicate]:
        checks: list[Predicate] = []
        if "items" in schema and not _is_trivial(schema["items"]):
            item = self.compile(schema["items"])
            checks.append(lambda v: all(map(item, v)))
        if "minItems" in schema or "maxItems" in schema:
            checks.append(_size(schema.get("minItems", 0), schema.get("maxItems")))
        return checks

    def _string(self, schema: Mapping[str, Any]) -> list[Predicate]:
        checks: list[Predicate] = []
        if "pattern" in schema:
            search = re.compile(schema["pattern"]).search
            checks.append(lambda v: search(v) is not None)
        if "minLength" in schema or "maxLength" in schema:
            checks.append(_size(schema.get("minLength", 0), schema.get("maxLength")))
        return checks


def _dispatch_key(schema: Any) -> str | None:
    """``k`` when ``schema`` is exactly ``{"if": {"required": [k]}, "then": ...}``."""
    if not isinstance(schema, Mapping) or set(schema) - ANNOTATIONS != {"if", "then"}:
        return None
    condition = schema["if"]
    if not isinstance(condition, Mapping) or set(condition) - ANNOTATIONS != {"required"}:
        return None
    required = condition["required"]
    return required[0] if isinstance(required, list) and len(required) == 1 else None


def _is_trivial(schema: Any) -> bool:
    """Whether ``schema`` accepts everything: ``true``, or nothing but annotations."""
    return schema is True or (isinstance(schema, Mapping) and set(schema) <= ANNOTATIONS)


def _properties(properties: Mapping[str, Predicate]) -> Predicate:
    def each_known(instance: dict[str, Any]) -> bool:
        for name, value in instance.items():
            check = properties.get(name)
            if check is not None and not check(value):
                return False
        return True

    return each_known


def _size(fewest: int, most: int | None) -> Predicate:
    """How many items, properties or characters an instance may have."""
    return lambda v: fewest <= len(v) and (most is None or len(v) <= most)


def _combine(checks: Sequence[Predicate], typed: Sequence[tuple[type, Predicate]]) -> Predicate:
    """All of ``checks``, and each typed check for instances of its type."""
    if not typed and len(checks) <= 1:
        return checks[0] if checks else _always
    if not checks and len(typed) == 1:
        [(kind, check)] = typed
        return lambda v: not isinstance(v, kind) or check(v)

    def every(instance: Any) -> bool:
        for check in checks:
            if not check(instance):
                return False
        for kind, check in typed:
            if isinstance(instance, kind) and not check(instance):
                return False
        return True

    return every


def _type(expected: str | list[str]) -> Predicate:
    names = [expected] if isinstance(expected, str) else list(expected)
    classes = tuple(_CLASSES[name] for name in names if name in _CLASSES)
    numeric = [_NUMERIC[name] for name in names if name in _NUMERIC]
    if not numeric:
        return lambda v: isinstance(v, classes)
    if not classes and len(numeric) == 1:
        return numeric[0]
    return lambda v: isinstance(v, classes) or any(check(v) for check in numeric)


def _enum(values: list[Any]) -> Predicate:
    texts = frozenset(value for value in values if isinstance(value, str))
    others = [value for value in values if not isinstance(value, str)]
    return lambda v: v in texts if isinstance(v, str) else any(_equal(v, o) for o in others)


def _number(schema: Mapping[str, Any]) -> Predicate:
    low = schema.get("minimum")
    high = schema.get("maximum")
    above = schema.get("exclusiveMinimum")
    below = schema.get("exclusiveMaximum")

    def within(v: Any) -> bool:
        if not _is_number(v):
            return True
        return (
            (low is None or v >= low)
            and (high is None or v <= high)
            and (above is None or v > above)
            and (below is None or v < below)
        )

    return within
