"""The compiled predicate answers exactly what jsonschema's ``is_valid`` answers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from wscenario.core.schema_predicate import UnsupportedSchema, compile_predicate

_KEYS = ["a", "b", "c", "x y"]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, 1.5, -2.5]),
    st.sampled_from(["", "a", "b", "ab", "ba", "12", "x y", "/x"]),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3)
    ),
    max_leaves=8,
)

SCHEMAS: list[Any] = [
    True,
    False,
    {"description": "anything"},
    {"type": "integer"},
    {"type": "number"},
    {"type": ["string", "null"]},
    {"type": ["integer", "number"]},
    {"type": ["boolean", "number"]},
    {"type": "boolean"},
    {"type": "object"},
    {"type": "array"},
    {"enum": ["a", 1, True, None, [1], {"a": 1}]},
    {"enum": [False, 0.0]},
    {"const": 1},
    {"const": [True, {"a": "b"}]},
    {"const": {"a": 1}},
    {"pattern": "^a", "minLength": 1, "maxLength": 2},
    {"maxLength": 1},
    {"minimum": 0, "maximum": 1.5},
    {"exclusiveMinimum": -1, "exclusiveMaximum": 2},
    {"items": {"type": "integer"}, "minItems": 1, "maxItems": 2},
    {"items": True, "minItems": 0},
    {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"description": "any"}},
        "additionalProperties": False,
        "required": ["a"],
    },
    {"additionalProperties": {"type": "integer"}, "properties": {"a": True}},
    {"additionalProperties": {"description": "any"}, "minProperties": 1, "maxProperties": 2},
    {"propertyNames": {"enum": ["a", "b", 3]}},
    {"propertyNames": {"pattern": "^[a-z]$"}},
    {"dependentRequired": {"a": ["b"]}},
    {"allOf": [{"type": "object"}, {"required": ["b"]}]},
    {
        "allOf": [
            {"if": {"required": ["a"]}, "then": {"properties": {"a": {"type": "integer"}}}},
            {"if": {"required": ["b"]}, "then": {"properties": {"b": {"type": "string"}}}},
            {"if": {"required": ["a"]}, "then": {"required": ["c"]}},
            {"if": {"required": ["c"]}, "then": False},
        ]
    },
    {"allOf": [{"if": {"required": ["a", "b"]}, "then": False}]},
    {"allOf": [{"if": {"required": ["a"]}, "then": False, "else": True}]},
    {"allOf": [{"if": {"type": "object"}, "then": False}]},
    {"allOf": [{"if": {"required": ["a"], "type": "object"}, "then": False}]},
    {"allOf": [True, {"not": {"type": "string"}}]},
    {"if": {"type": "string"}, "then": {"enum": ["a"]}, "else": {"type": "array"}},
    {"if": {"type": "string"}},
    {"then": False, "else": False},
    {"required": ["a"], "not": {"required": ["b"]}},
    {"$ref": "#/$defs/small", "$defs": {"small": {"maximum": 1}}},
    {"$ref": "#/$defs/a~1b/items", "$defs": {"a/b": {"items": {"type": "string"}}}},
    {"$ref": "#/allOf/0", "allOf": [{"type": ["null", "integer"]}]},
    {
        "$defs": {"tree": {"type": ["object", "integer"], "additionalProperties": {"$ref": "#"}}},
        "$ref": "#/$defs/tree",
    },
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[str(i) for i in range(len(SCHEMAS))])
def test_the_predicate_agrees_with_jsonschema(schema: Any) -> None:
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    check = compile_predicate(schema)

    @settings(max_examples=100, deadline=None)
    @given(instance=_JSON)
    def agrees(instance: Any) -> None:
        assert check(instance) is validator.is_valid(instance)

    agrees()


def test_references_resolve_in_the_root_given() -> None:
    root = {"$defs": {"word": {"type": "string"}}}
    check = compile_predicate({"items": {"$ref": "#/$defs/word"}}, root)
    assert check(["a", "b"]) is True
    assert check(["a", 1]) is False


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"anyOf": [True]}, "unsupported keyword 'anyOf'"),
        ({"properties": {"a": {"format": "email"}}}, "unsupported keyword 'format'"),
        ({"$ref": "other.json#/x"}, "only local references are supported"),
        ({"$ref": "#/$defs/missing"}, "unresolvable reference '#/$defs/missing'"),
        ({"$ref": "#/$defs/list/x", "$defs": {"list": []}}, "unresolvable reference"),
        ({"items": 3}, "a schema must be an object or a boolean, not 3"),
    ],
)
def test_unknown_keywords_and_references_are_refused(schema: Any, message: str) -> None:
    with pytest.raises(UnsupportedSchema, match=message.replace("$", r"\$")):
        compile_predicate(schema)


@pytest.mark.parametrize(
    ("schema", "instance", "valid"),
    [
        ({"const": "a"}, "a", True),
        ({"const": "a"}, "b", False),
        ({"const": "1"}, 1, False),
        ({"enum": [1, "x"]}, "x", True),
        ({"const": [1, "a"]}, [1.0, "a"], True),
        ({"const": {"k": True}}, {"k": 1}, False),
    ],
)
def test_equality_cases_agree_with_jsonschema(schema: Any, instance: Any, valid: bool) -> None:
    assert compile_predicate(schema)(instance) is valid
    assert Draft202012Validator(schema).is_valid(instance) is valid
