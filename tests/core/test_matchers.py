"""Matching events and payloads, saving values, encoding payloads and labelling events."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from wscenario.core.events import Event
from wscenario.core.matchers import (
    MatchResult,
    Mismatch,
    SaveError,
    encode_payload,
    escape_token,
    event_label,
    match_event,
    match_payload,
    resolve_pointer,
    save_values,
)
from wscenario.core.model import (
    JSON,
    AnyMatcher,
    BinaryMatcher,
    BinaryPayload,
    EventMatcher,
    JsonMatcher,
    JsonPayload,
    PayloadMatcher,
    RegexMatcher,
    SchemaMatcher,
    TextMatcher,
    TextPayload,
)

VARIABLES: dict[str, JSON] = {"name": "ada", "n": 3}
ENV = {"HOST": "example.org"}

keys = st.text(max_size=5).filter(lambda k: not k.startswith("$"))
texts = st.text(max_size=5).filter(lambda t: "{{" not in t)  # an expected "{{x}}" is a template
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=10,
)


def payload(matcher: PayloadMatcher, data: str | bytes, **kwargs: tuple[str, ...]) -> MatchResult:
    return match_payload(matcher, data, VARIABLES, ENV, **kwargs)


def mismatches(matcher: PayloadMatcher, data: str | bytes) -> list[tuple[str, str]]:
    return [(m.pointer, m.message) for m in payload(matcher, data).mismatches]


def json_mismatches(
    expected: JSON, actual: JSON, mode: str = "exact", ignore: tuple[str, ...] = ()
) -> list[tuple[str, str]]:
    matcher = JsonMatcher(expected, "subset" if mode == "subset" else "exact", ignore)
    return mismatches(matcher, json.dumps(actual))


# -- events -----------------------------------------------------------------------------------


def test_event_name_must_match() -> None:
    result = match_event(EventMatcher("close"), Event("message", "hi"), VARIABLES, ENV)
    assert not result.ok
    assert result.mismatches == (
        Mismatch("", "expected a 'close' event, got 'message'", "close", "message"),
    )
    assert result.explanation == "expected a 'close' event, got 'message'"


def test_message_without_payload_matcher_matches_any_message() -> None:
    assert match_event(EventMatcher("message"), Event("message", b"\x00"), VARIABLES, ENV).ok
    assert match_event(
        EventMatcher("messageReceive", TextMatcher("hi")), Event("messageReceive", "hi"), {}, {}
    ).ok


def test_message_event_without_a_payload_value_is_a_mismatch() -> None:
    result = match_event(EventMatcher("message", TextMatcher("x")), Event("message", None), {}, {})
    assert result.explanation == "expected a message payload, got null"


def test_scenario_ignore_pointers_reach_json_payloads() -> None:
    matcher = EventMatcher("message", JsonMatcher({"a": 1, "ts": 5}))
    event = Event("message", '{"a": 1, "ts": 99}')
    assert not match_event(matcher, event, {}, {}).ok
    assert match_event(matcher, event, variables={}, env={}, ignore_pointers=("/ts",)).ok


def test_event_fields_are_a_subset_match_with_wildcards_and_templates() -> None:
    matcher = EventMatcher("close", fields={"code": "{{ n }}", "reason": {"$regex": "^by"}})
    assert match_event(
        matcher, Event("close", {"code": 3, "reason": "bye", "x": 1}), VARIABLES, {}
    ).ok
    result = match_event(matcher, Event("close", {"code": 1006, "reason": ""}), VARIABLES, {})
    assert (
        result.explanation == "/code: expected 3, got 1006\n/reason: '' does not match regex /^by/"
    )


def test_fields_against_a_binary_event_value() -> None:
    result = match_event(EventMatcher("ping", fields="hi"), Event("ping", b"hi"), {}, {})
    assert result.explanation == "expected string, got binary <binary 2 bytes: 6869>"


def test_event_without_fields_matches_any_value() -> None:
    assert match_event(EventMatcher("dataEnd"), Event("dataEnd", None), {}, {}).ok
    assert match_event(EventMatcher("open"), Event("open", {"status": 101}), {}, {}).ok


def test_fields_against_an_event_without_value() -> None:
    result = match_event(EventMatcher("dataEnd", fields={}), Event("dataEnd", None), {}, {})
    assert result.explanation == "expected object, got null null"


def test_fields_with_an_unknown_variable_is_a_mismatch_not_an_exception() -> None:
    matcher = EventMatcher("close", fields={"reason": "{{ nmae }}"})
    result = match_event(matcher, Event("close", {"reason": "x"}), VARIABLES, {})
    assert result.explanation == (
        "cannot render the expected fields: undefined variable 'nmae'; did you mean 'name'?"
    )


# -- kinds of payload -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matcher", "data", "message"),
    [
        (TextMatcher("x"), b"\x00\x01\x02", "expected text, got binary (3 bytes)"),
        (JsonMatcher({}), b"{}", "expected text, got binary (2 bytes)"),
        (RegexMatcher("."), b"a", "expected text, got binary (1 bytes)"),
        (SchemaMatcher(True), b"1", "expected text, got binary (1 bytes)"),
        (BinaryMatcher(b"x"), "hello", "expected binary, got text (5 chars)"),
        (AnyMatcher("text"), b"", "expected text, got binary (0 bytes)"),
        (AnyMatcher("binary"), "", "expected binary, got text (0 chars)"),
    ],
)
def test_text_and_binary_are_not_interchangeable(
    matcher: PayloadMatcher, data: str | bytes, message: str
) -> None:
    assert mismatches(matcher, data) == [("", message)]


@pytest.mark.parametrize(
    ("kind", "data"), [("any", "t"), ("any", b"b"), ("text", "t"), ("binary", b"b")]
)
def test_any_matcher(kind: str, data: str | bytes) -> None:
    assert payload(AnyMatcher(kind), data).ok  # type: ignore[arg-type]


def test_text_matcher_renders_templates_then_compares_exactly() -> None:
    assert payload(TextMatcher("hi {{ name }} @{{ env.HOST }}"), "hi ada @example.org").ok
    assert mismatches(TextMatcher("hi {{ name }}"), "hi bob\x1b") == [
        ("", "expected text 'hi ada', got 'hi bob\\x1b'")
    ]


def test_unknown_variable_in_a_payload_matcher_is_a_mismatch() -> None:
    assert mismatches(TextMatcher("{{ env.NOPE }}"), "x") == [
        ("", "cannot render the expectation: environment variable 'NOPE' is not set")
    ]


def test_binary_matcher_shows_the_first_differing_byte() -> None:
    assert payload(BinaryMatcher(b"\x00\xff"), b"\x00\xff").ok
    assert mismatches(BinaryMatcher(b"\x00\xff\x10"), b"\x00\xfe\x10") == [
        (
            "",
            (
                "expected <binary 3 bytes: 00ff10>, got <binary 3 bytes: 00fe10>:"
                " first difference at byte 1"
            ),
        )
    ]
    assert mismatches(BinaryMatcher(b"\x00\xff"), b"\x00\xff\x01")[0][1].endswith("at byte 2")
    assert mismatches(BinaryMatcher(b"\x00\xff"), b"")[0][1].endswith("at byte 0")


# -- regex ------------------------------------------------------------------------------------


def test_regex_named_groups_are_captured() -> None:
    result = payload(RegexMatcher(r"^ok (?P<n>\d+)(?: (?P<rest>x))?"), "ok 42 and more")
    assert result.ok
    assert result.captures == {"n": "42", "rest": None}


def test_regex_pattern_is_rendered_before_use() -> None:
    assert payload(RegexMatcher("^{{ name }}:"), "ada: hi").ok
    assert not payload(RegexMatcher("^{{ name }}:"), "bob: hi").ok


def test_regex_that_does_not_match() -> None:
    assert mismatches(RegexMatcher(r"^ok \d+$"), "nope\n") == [
        ("", r"text 'nope\n' does not match regex /^ok \d+$/")
    ]


def test_unsafe_regex_is_a_mismatch() -> None:
    [(pointer, message)] = mismatches(RegexMatcher("(a+)+$"), "aaaa")
    assert pointer == ""
    assert message.startswith("cannot use regex: regex can backtrack catastrophically")


# -- json -------------------------------------------------------------------------------------


@given(json_values)
def test_any_json_value_matches_itself_exactly(value: JSON) -> None:
    assert json_mismatches(value, value) == []


@given(json_values, st.data())
def test_a_pruned_value_matches_the_original_as_a_subset(value: JSON, data: st.DataObject) -> None:
    def prune(v: JSON) -> JSON:
        if isinstance(v, dict):
            kept = data.draw(st.lists(st.sampled_from(sorted(v)), unique=True)) if v else []
            return {k: prune(v[k]) for k in kept}
        if isinstance(v, list):
            return [prune(item) for item in v]
        return v

    assert json_mismatches(prune(value), value, "subset") == []


@given(st.dictionaries(keys, json_values, max_size=3), keys, json_values)
def test_an_extra_key_fails_exact_but_not_subset(
    base: dict[str, JSON], key: str, extra: JSON
) -> None:
    assume(key not in base)
    actual = {**base, key: extra}
    [(pointer, message)] = json_mismatches(base, actual)
    assert pointer == "/" + key.replace("~", "~0").replace("/", "~1")
    assert message.startswith("unexpected key ")
    assert json_mismatches(base, actual, "subset") == []


def test_every_json_mismatch_is_reported_with_its_pointer() -> None:
    expected: JSON = {
        "type": "welcome",
        "a/b": {"m~n": 1},
        "list": [1, 2, 3],
        "short": [1],
        "gone": True,
        "flag": True,
        "none": None,
    }
    actual: JSON = {
        "type": "bye",
        "a/b": {"m~n": 2},
        "list": [1, 2],
        "short": [1, {"x": 1}],
        "flag": 1,
        "none": "null",
        "extra": 0,
    }
    assert json_mismatches(expected, actual) == [
        ("/type", "expected 'welcome', got 'bye'"),
        ("/a~1b/m~0n", "expected 1, got 2"),
        ("/list/2", "missing item"),
        ("/short/1", "unexpected item"),
        ("/gone", "missing key 'gone'"),
        ("/flag", "expected boolean, got number 1"),
        ("/none", "expected null, got string 'null'"),
        ("/extra", "unexpected key 'extra'"),
    ]


def test_subset_mode_still_compares_arrays_element_wise() -> None:
    expected: JSON = {"items": [{"id": 1}, {"id": 2}]}
    actual: JSON = {"items": [{"id": 1, "x": 0}, {"id": 3}], "more": 1}
    assert json_mismatches(expected, actual, "subset") == [("/items/1/id", "expected 2, got 3")]
    assert json_mismatches({"items": [1]}, {"items": [1, 2]}, "subset") == [
        ("/items/1", "unexpected item")
    ]


def test_containers_against_other_types() -> None:
    assert json_mismatches({"a": {}}, {"a": []}) == [("/a", "expected object, got array []")]
    assert json_mismatches([1], "x") == [("", "expected array, got string 'x'")]


def test_numbers_compare_by_value_but_booleans_are_not_numbers() -> None:
    assert json_mismatches({"n": 1}, {"n": 1.0}) == []
    assert json_mismatches(0, False) == [("", "expected number, got boolean false")]


def test_ignored_pointers_are_never_compared() -> None:
    expected: JSON = {"id": 1, "ts": 0, "gone": 1, "items": [1, {"at": 5}, 3]}
    actual: JSON = {"id": 1, "ts": 12345, "new": {"x": 1}, "items": [1, {"at": 6}], "x": 0}
    ignore = ("/ts", "/gone", "/new", "/items/1/at", "/items/2")
    assert json_mismatches(expected, actual, ignore=ignore) == [("/x", "unexpected key 'x'")]
    assert json_mismatches({"a": [1]}, {"a": [1, 2]}, ignore=("/a/1",)) == []
    assert json_mismatches({"a": 1}, {"a": 2}, ignore=("",)) == []


def test_matcher_ignore_and_scenario_ignore_add_up() -> None:
    matcher = JsonMatcher({"a": 1, "b": 1, "c": 1}, ignore=("/a",))
    result = payload(matcher, '{"a": 0, "b": 0, "c": 0}', ignore_pointers=("/b",))
    assert [m.pointer for m in result.mismatches] == ["/c"]


def test_json_templates_keep_their_type() -> None:
    assert payload(
        JsonMatcher({"n": "{{ n }}", "who": "hi {{ name }}"}), '{"n":3,"who":"hi ada"}'
    ).ok


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "{'a': 1}",
            (
                "expected JSON, got invalid JSON (Expecting property name enclosed in double quotes"
                " at line 1 column 2): '{''a'': 1}'"
            ),
        ),
        ("", "expected JSON, got invalid JSON (Expecting value at line 1 column 1): ''"),
        (
            "1" * 5000,
            "expected JSON, got JSON that cannot be read: Exceeds the limit (4300 digits)",
        ),
        (
            "[" * 100_000 + "]" * 100_000,
            "expected JSON, got JSON that cannot be read: maximum recursion depth exceeded",
        ),
    ],
)
def test_text_that_is_not_json(data: str, message: str) -> None:
    for matcher in (JsonMatcher({}), SchemaMatcher(True)):
        [(pointer, found)] = mismatches(matcher, data)
        assert pointer == ""
        assert found.startswith(message)


def test_json_too_deep_to_compare_is_a_mismatch() -> None:
    depth = sys.getrecursionlimit() * 3 // 4
    expected: JSON = []
    for _ in range(depth):
        expected = [expected]
    assert mismatches(JsonMatcher(expected), "[" * depth + "]" * depth) == [
        ("", "the JSON nests too deeply to compare")
    ]


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("string", ["", "x"], [1, None, [], {}]),
        ("integer", [0, -5], [1.5, True, "1"]),
        ("number", [0, 1.5], [False, "1", None]),
        ("boolean", [True, False], [0, "true"]),
        ("object", [{}, {"a": 1}], [[], "x"]),
        ("array", [[], [1]], [{}, "[]"]),
        ("null", [None], [0, "", False]),
    ],
)
def test_typed_any_wildcards(kind: str, good: list[JSON], bad: list[JSON]) -> None:
    for value in good:
        assert json_mismatches({"v": {"$any": kind}}, {"v": value}) == [], value
        assert json_mismatches({"v": {"$any": True}}, {"v": value}) == []
    for value in bad:
        [(pointer, message)] = json_mismatches({"v": {"$any": kind}}, {"v": value})
        assert pointer == "/v"
        assert message.startswith(f"expected any {kind}, got ")


def test_regex_wildcard() -> None:
    uuid: JSON = {"$regex": "^[0-9a-f-]{36}$"}
    assert json_mismatches({"id": uuid}, {"id": "0" * 8 + "-" + "a" * 27}) == []
    assert json_mismatches({"id": uuid}, {"id": "nope"}) == [
        ("/id", "'nope' does not match regex /^[0-9a-f-]{36}$/")
    ]
    assert json_mismatches({"id": uuid}, {"id": 7}) == [
        ("/id", "expected a string matching /^[0-9a-f-]{36}$/, got number 7")
    ]


@pytest.mark.parametrize(
    ("wildcard", "message"),
    [
        (
            {"$any": "str"},
            "invalid wildcard {$any: 'str'}: expected true or one of string, integer",
        ),
        ({"$any": False}, "invalid wildcard {$any: false}"),
        ({"$regex": 1}, "invalid wildcard {$regex: 1}: expected a pattern"),
        ({"$regex": "(a*)*"}, "cannot use regex: regex can backtrack catastrophically"),
    ],
)
def test_invalid_wildcards_are_mismatches(wildcard: JSON, message: str) -> None:
    [(pointer, found)] = json_mismatches([wildcard], ["x"])
    assert pointer == "/0"
    assert found.startswith(message)


def test_an_object_with_more_keys_is_not_a_wildcard() -> None:
    expected: JSON = {"$any": True, "b": 1}
    assert json_mismatches(expected, {"$any": True, "b": 1}) == []
    assert json_mismatches(expected, {"b": 1}) == [("/$any", "missing key '$any'")]


# -- schema -----------------------------------------------------------------------------------

SCHEMA: dict[str, JSON] = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def test_schema_valid_text() -> None:
    assert payload(SchemaMatcher(SCHEMA), '{"id": 1, "tags": ["a"]}').ok
    assert payload(SchemaMatcher(True), "null").ok


def test_schema_errors_each_become_a_mismatch_with_a_pointer() -> None:
    found = mismatches(SchemaMatcher(SCHEMA), '{"tags": ["a", 2, "\\u001b"], "id": "x"}')
    assert found == [
        ("/id", "'x' is not of type 'integer'"),
        ("/tags/1", "2 is not of type 'string'"),
    ]


def test_schema_missing_property_points_at_the_object() -> None:
    assert mismatches(SchemaMatcher(SCHEMA), "{}") == [("", "'id' is a required property")]
    assert mismatches(SchemaMatcher(False), "1") == [("", "False schema does not allow 1")]


def test_schema_error_text_is_made_safe_and_short() -> None:
    [(pointer, message)] = mismatches(SchemaMatcher({"type": "integer"}), json.dumps("\x1b" * 1000))
    assert pointer == ""
    assert "\x1b" not in message
    assert message.endswith("chars)")


def test_schema_formats_are_checked() -> None:
    schema: dict[str, JSON] = {"format": "ipv4"}
    assert payload(SchemaMatcher(schema), '"127.0.0.1"').ok
    assert mismatches(SchemaMatcher(schema), '"999.1.1.1"') == [("", "'999.1.1.1' is not a 'ipv4'")]


def test_invalid_schema_and_unresolvable_reference_are_mismatches() -> None:
    assert mismatches(SchemaMatcher({"type": "nope"}), "1")[0][1].startswith("invalid schema: ")
    assert mismatches(SchemaMatcher({"$ref": "#/$defs/missing"}), "1")[0][1].startswith(
        "cannot resolve a schema reference: "
    )


def test_json_too_deep_to_validate_is_a_mismatch() -> None:
    depth = sys.getrecursionlimit() // 2
    schema: dict[str, JSON] = {"items": {"$ref": "#"}}
    assert mismatches(SchemaMatcher(schema), "[" * depth + "]" * depth) == [
        ("", "the received JSON nests too deeply to validate")
    ]


# -- save -------------------------------------------------------------------------------------


def test_save_from_a_json_message() -> None:
    event = Event("message", '{"session": {"id": "s1", "a/b": [10, 20]}, "~": 1}')
    assert save_values(
        {"sid": "/session/id", "second": "/session/a~1b/1", "tilde": "/~0", "all": ""}, event
    ) == {"sid": "s1", "second": 20, "tilde": 1, "all": event.value}


def test_save_whole_text_of_a_plain_message() -> None:
    assert save_values({"t": ""}, Event("messageReceive", "not json")) == {"t": "not json"}


def test_save_from_other_events() -> None:
    assert save_values({"code": "/code"}, Event("close", {"code": 1000})) == {"code": 1000}
    assert save_values({"v": ""}, Event("dataEnd", None)) == {"v": None}


@pytest.mark.parametrize(
    ("event", "pointer", "message"),
    [
        (Event("message", '{"a": 1}'), "/b", "no key 'b' at the top"),
        (Event("message", '{"a": {"b": 1}}'), "/a/c", "no key 'c' at /a"),
        (Event("message", '{"a": [1]}'), "/a/1", "index 1 is out of range at /a (1 items)"),
        (Event("message", '{"a": [1]}'), "/a/01", "'01' is not an array index at /a"),
        (Event("message", '{"a": [1]}'), "/a/-", "'-' is not an array index at /a"),
        (Event("message", "[1]"), "/0/x", "cannot look inside number at /0"),
        (Event("message", '{"a": 1}'), "a", "a JSON Pointer is empty or starts with '/'"),
        (Event("message", "text"), "/a", "expected JSON, got invalid JSON"),
        (Event("message", b"\x00"), "", "a binary message holds no JSON or text to save"),
        (Event("dataEnd", None), "/x", "cannot look inside null at the top"),
    ],
)
def test_save_errors_say_why(event: Event, pointer: str, message: str) -> None:
    with pytest.raises(SaveError) as caught:
        save_values({"v": pointer}, event)
    assert caught.value.name == "v"
    assert caught.value.pointer == pointer
    assert caught.value.message.startswith(message)
    assert str(caught.value).startswith(f"cannot save 'v' from {pointer!r}: {message}")


# -- encoding and labels ----------------------------------------------------------------------


def test_encode_payload() -> None:
    assert encode_payload(TextPayload("hi {{ name }}"), VARIABLES, ENV) == "hi ada"
    assert encode_payload(JsonPayload({"n": "{{ n }}", "é": [True, None]}), VARIABLES, ENV) == (
        '{"n":3,"é":[true,null]}'
    )
    assert encode_payload(BinaryPayload(b"\x00\xff"), VARIABLES, ENV) == b"\x00\xff"


@pytest.mark.parametrize(
    ("event", "label"),
    [
        (Event("message", "hello"), "message 'hello'"),
        (Event("message", "\x1b[2J"), "message '\\x1b[2J'"),
        (Event("message", b"\x00\xff\x10"), "message <binary 3 bytes: 00ff10>"),
        (Event("close", {"code": 1000, "reason": "bye"}), "close {code: 1000, reason: 'bye'}"),
        (Event("dataEnd", None), "dataEnd"),
        (Event("ping", b""), "ping <binary 0 bytes>"),
    ],
)
def test_event_label(event: Event, label: str) -> None:
    assert event_label(event) == label


def test_mismatch_text() -> None:
    assert str(Mismatch("/a", "bad")) == "/a: bad"
    assert str(Mismatch("", "bad")) == "bad"
    assert MatchResult().ok
    assert MatchResult().explanation == ""


@given(st.text(), json_values)
def test_an_escaped_key_resolves_back_to_its_value(key: str, value: JSON) -> None:
    assert resolve_pointer({key: value, "other": 0}, "/" + escape_token(key)) == value
