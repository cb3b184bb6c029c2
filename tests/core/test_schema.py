"""The scenario schema and how its errors become diagnostics; the patterns of every schema."""

from __future__ import annotations

import contextlib
import json
import random
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from wscenario.core.diagnostics import Diagnostic
from wscenario.core.schema import (
    Unusable,
    allowed_hint,
    diagnostics_for,
    pointer_of,
    scenario_predicate,
    scenario_schema,
    unusable_names,
    validate_data,
    validator,
)
from wscenario.core.source import SourceError, load_yaml_file, parse_yaml

HEAD = 'wscenario: 1\nclient: {url: "ws://127.0.0.1:1/"}\n'
RAW_HEAD = 'wscenario: 1\nclient: {url: "ws://127.0.0.1:1/", profile: raw}\n'

SCHEMAS = sorted((Path(__file__).resolve().parents[2] / "schemas").glob("*.json"))

PYTHON_ONLY = re.compile(r"(?<!\\)(?:\\\\)*(?:\\[AZ]|\((?:\?P[<=]|\?#|\?[aiLmsux-]+[:)]))")
"""Regex syntax Python has and ECMA-262 lacks: ``(?P<name>...)``, ``(?P=name)``, ``\\A``,
``\\Z``, comments ``(?#...)`` and inline flags ``(?i)`` / ``(?i:...)`` (not escaped)."""

NODE_CHECK = """
const failed = [];
for (const [where, pattern] of JSON.parse(process.argv[1])) {
  try { new RegExp(pattern, "u"); } catch (error) { failed.push(`${where}: ${error.message}`); }
}
console.log(JSON.stringify(failed));
"""
"""Compiles each (where, pattern) as a JavaScript RegExp (Unicode mode, the stricter one)."""


def check(text: str) -> list[Diagnostic]:
    return validate_data(parse_yaml(text.encode(), "s.yaml"))


def rendered(text: str) -> list[str]:
    return [d.render() for d in check(text)]


def _objects(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{where}/{index}")


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = scenario_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert validator() is validator()


def test_every_property_has_a_description() -> None:
    undocumented = [
        f"{where}/{name}"
        for where, node in _objects(scenario_schema(), "")
        if isinstance(node.get("properties"), dict) and not where.endswith("/properties")
        for name, prop in node["properties"].items()
        if "description" not in prop and "then" not in where
    ]
    assert undocumented == []


def test_every_object_with_properties_refuses_unknown_keys() -> None:
    open_objects = [
        where
        for where, node in _objects(scenario_schema(), "")
        if isinstance(node.get("properties"), dict)
        and not where.endswith("/properties")
        and "/then" not in where
        and node.get("additionalProperties") is not False
    ]
    assert open_objects == []


def test_no_one_of_anywhere() -> None:
    assert [w for w, node in _objects(scenario_schema(), "") if "oneOf" in node] == []


def _schema_patterns() -> list[tuple[str, str]]:
    """(where, regex) for every ``pattern`` and ``patternProperties`` key in the schemas."""
    found: list[tuple[str, str]] = []
    for path in SCHEMAS:
        for where, node in _objects(json.loads(path.read_text(encoding="utf-8")), path.name):
            if where.endswith("/properties"):
                continue
            if isinstance(node.get("pattern"), str):
                found.append((where, node["pattern"]))
            found.extend(
                (f"{where}/patternProperties", key) for key in node.get("patternProperties", {})
            )
    return found


def test_schema_patterns_are_python_regexes_without_python_only_syntax() -> None:
    patterns = _schema_patterns()
    assert len(patterns) >= 8
    for _, pattern in patterns:
        re.compile(pattern)
    assert [(where, p) for where, p in patterns if PYTHON_ONLY.search(p)] == []


def test_schema_patterns_end_where_the_text_ends_in_python_too() -> None:
    # a bare $ lets Python (validate) take "5s\n", which JavaScript (an editor) refuses
    ends = [(where, p) for where, p in _schema_patterns() if p.endswith("$")]
    assert ends == []
    for _, pattern in _schema_patterns():
        if pattern.endswith(r"$(?!\n)"):
            assert re.search(pattern, "x\n") is None


def test_schema_patterns_are_javascript_regexes() -> None:
    # editors check scenarios through the YAML language server, with JavaScript's regexes
    node = shutil.which("node")
    if node is None:
        pytest.skip("checking the schemas' patterns as JavaScript regexes needs node on PATH")
    patterns = json.dumps(_schema_patterns())
    done = subprocess.run(
        [node, "-e", NODE_CHECK, patterns], capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(
    "pattern", [r"(?P<n>\d)", r"(a)(?P=n)", r"\Aa", r"a\Z", r"a(?#note)", r"(?i)a", r"(?s:a.)"]
)
def test_python_only_syntax_is_found(pattern: str) -> None:
    assert PYTHON_ONLY.search(pattern)


@pytest.mark.parametrize(
    "pattern", [r"^(\d+)(ms|s|m)$", r"(?:a)(?=b)(?!c)(?<=d)", r"\\A", r"\(?P<", r"^[A-Z]\\Z"]
)
def test_portable_syntax_is_not_taken_for_python_only(pattern: str) -> None:
    assert not PYTHON_ONLY.search(pattern)


def test_valid_minimal_scenario() -> None:
    assert check(HEAD + "steps: []\n") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            HEAD + "steps:\n  - sned: hi\n",
            (
                "s.yaml:4:5: error: /steps/0/sned: unknown key 'sned'\n"
                "    hint: did you mean 'send'? allowed: close, connect, expect, result, send, "
                "sleep, unordered"
            ),
        ),
        (
            RAW_HEAD + "steps:\n  - sned: hi\n",
            (
                "s.yaml:4:5: error: /steps/0/sned: unknown key 'sned'\n"
                "    hint: did you mean 'send'? allowed: close, connect, drop, expect, frames, "
                "ping, result, send, sleep, unordered"
            ),
        ),
        (
            "wscenario: 1\nserver: {}\nsteps:\n  - sned: hi\n",
            (
                "s.yaml:4:5: error: /steps/0/sned: unknown key 'sned'\n"
                "    hint: did you mean 'send'? allowed: close, drop, expect, frames, ping, "
                "result, send, sleep, stopReading, unordered"
            ),
        ),
        (
            HEAD + "steps:\n  - expect: {message: {txet: hi}}\n",
            (
                "s.yaml:4:24: error: /steps/0/expect/message/txet: unknown key 'txet'\n"
                "    hint: did you mean 'text'? allowed: any, binary, ignore, json, match, regex, "
                "schema, text"
            ),
        ),
        (
            HEAD + "limits: {maxHeadr: 1}\nsteps: []\n",
            (
                "s.yaml:3:10: error: /limits/maxHeadr: unknown key 'maxHeadr'\n"
                "    hint: did you mean 'maxHeaders'? allowed: closeTimeout, handshakeTimeout, "
                "maxConnections, maxFragments, maxHeadSize, maxHeaders, maxMessageSize"
            ),
        ),
        (
            HEAD + "vars: {1x: 2}\nsteps: []\n",
            (
                "s.yaml:3:8: error: /vars/1x: invalid name '1x'\n"
                "    hint: names are letters, digits and _, not starting with a digit"
            ),
        ),
        (
            "wscenario: 1\nclient: {protocol: x}\nsteps: []\n",
            (
                "s.yaml:2:10: error: /client/protocol: unknown key 'protocol'\n"
                "    hint: allowed: api, frames, insecure, options, profile, url\n"
                "s.yaml:2:9: error: /client: missing required key 'url'"
            ),
        ),
        (
            HEAD + "steps:\n  - connect: {options: {clientCert: {certPath: c}}}\n",
            (
                "s.yaml:4:37: error: /steps/0/connect/options/clientCert: "
                "missing required key 'keyPath'"
            ),
        ),
        (
            HEAD + "steps:\n  - expect: {message: {match: subset}}\n",
            "s.yaml:4:24: error: /steps/0/expect/message/match: 'match' needs 'json' next to it",
        ),
        (
            HEAD + "steps:\n  - close: {reason: NO}\n",
            (
                "s.yaml:4:21: error: /steps/0/close/reason: expected a string, got a boolean\n"
                '    hint: quote this value: "NO"'
            ),
        ),
        (
            HEAD + "steps:\n  - close: {reason: [1]}\n",
            "s.yaml:4:21: error: /steps/0/close/reason: expected a string, got a list",
        ),
        (
            HEAD + "steps:\n  - expect: {message: {any: false}}\n",
            (
                "s.yaml:4:29: error: /steps/0/expect/message/any: unexpected value false\n"
                "    hint: allowed: binary, text, true"
            ),
        ),
        (
            "wscenario: 2\nserver: {}\nsteps: []\n",
            "s.yaml:1:12: error: /wscenario: expected 1, got 2",
        ),
        (
            HEAD + "timeout: 2 s\nsteps: []\n",
            (
                's.yaml:3:10: error: /timeout: invalid value "2 s"\n'
                "    hint: a duration: 250ms, 2s, 1m, or a number of seconds"
            ),
        ),
        (
            "wscenario: 1\nserver: {}\nsteps:\n  - close: {code: 70000}\n",
            "s.yaml:4:19: error: /steps/0/close/code: 70000 is greater than the maximum of 65535",
        ),
        (
            (
                "wscenario: 1\nserver: {}\nsteps: []\nrules:\n  - on: messageReceive\n"
                "    send: {echo: false}\n"
            ),
            "s.yaml:6:18: error: /rules/0/send/echo: expected true, got false",
        ),
        (
            HEAD + "steps:\n  - send: {echo: true}\n",
            (
                "s.yaml:4:12: error: /steps/0/send/echo: unknown key 'echo'\n"
                "    hint: allowed: binary, json, text"
            ),
        ),
    ],
)
def test_diagnostics(text: str, expected: str) -> None:
    assert "\n".join(rendered(text)) == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("1", "an integer"),
        ("1.5", "a number"),
        ("{}", "a mapping"),
        ("null", "null"),
        ('"x"', "a string"),
        ("true", "a boolean"),
    ],
)
def test_type_names(value: str, kind: str) -> None:
    found = check(HEAD + f"steps: []\nignorePointers: {value}\n")
    assert [d.message for d in found] == [f"expected a list, got {kind}"]


def test_headline_does_not_depend_on_error_order() -> None:
    doc = parse_yaml(
        (
            HEAD + "timeout: x\nlimits: {maxHeaders: 0, bad: 1}\nsteps:\n  - sned: 1\n"
            "  - close: {code: x}\n"
        ).encode(),
        "s.yaml",
    )
    errors = list(validator().iter_errors(doc.data))
    assert len(errors) >= 4
    first = diagnostics_for(errors, doc.source_map)
    shuffler = random.Random(7)
    for _ in range(20):
        shuffler.shuffle(errors)
        assert diagnostics_for(errors, doc.source_map) == first
        assert diagnostics_for(reversed(errors), doc.source_map) == first


def test_duplicate_errors_are_shown_once() -> None:
    # propertyNames and additionalProperties both refuse 'sned'
    found = check(HEAD + "steps:\n  - sned: 1\n")
    assert [d.message for d in found] == ["unknown key 'sned'"]


def test_pointer_escapes() -> None:
    assert pointer_of(["a/b", "m~n", 0]) == "/a~1b/m~0n/0"
    assert pointer_of([]) == ""


SERVER = frozenset({"connect", "messageReceive"})
OHOS_CANNOT = Unusable(
    frozenset({"ping", "drop", "frames"}), frozenset({"ping", "pong", "frame"}) | SERVER
)


@pytest.mark.parametrize(
    ("text", "unusable"),
    [
        (HEAD, OHOS_CANNOT),
        ("wscenario: 1\nclient: {url: x, profile: ohos}\n", OHOS_CANNOT),
        (RAW_HEAD, Unusable(events=frozenset({"dataEnd", "headerReceive", "frame"}) | SERVER)),
        (
            "wscenario: 1\nclient: {url: x, profile: raw, frames: true}\n",
            Unusable(events=frozenset({"dataEnd", "headerReceive", "message"}) | SERVER),
        ),
        (
            "wscenario: 1\nserver: {}\n",
            Unusable(events=frozenset({"open", "message", "dataEnd", "headerReceive", "frame"})),
        ),
        ("wscenario: 1\nclient: {url: x}\nserver: {}\n", Unusable()),
        ("wscenario: 1\nclient: x\n", Unusable()),
        ("[]\n", Unusable()),
    ],
)
def test_names_a_client_profile_cannot_use(text: str, unusable: Unusable) -> None:
    assert unusable_names(parse_yaml(text.encode(), "s.yaml").data) == unusable


def test_only_hints_for_a_steps_keys_leave_out_unusable_names() -> None:
    names = {"propertyNames": {"enum": ["ping", "send"]}}
    schema = {"properties": {"steps": {"items": names}, "on": names}}
    doc = parse_yaml(b"steps: [{pnig: 1}]\non: {pnig: 1}\n", "s.yaml")
    errors = Draft202012Validator(schema).iter_errors(doc.data)
    found = diagnostics_for(errors, doc.source_map, Unusable(steps=frozenset({"ping"})))
    assert [(d.pointer, d.hint) for d in found] == [
        ("/on/pnig", "did you mean 'ping'? allowed: ping, send"),
        ("/steps/0/pnig", "allowed: send"),
    ]


OHOS_EVENTS = "close, dataEnd, error, headerReceive, message, open"
RAW_EVENTS = "close, error, message, open, ping, pong"


@pytest.mark.parametrize(
    ("client", "events"), [("", OHOS_EVENTS), (", profile: raw", RAW_EVENTS)], ids=["ohos", "raw"]
)
def test_hints_for_what_a_matcher_expects_leave_out_the_events_a_scenario_cannot_see(
    client: str, events: str
) -> None:
    text = (
        f'wscenario: 1\nclient: {{url: "ws://127.0.0.1:1/"{client}}}\nsteps:\n'
        "  - expect: {mesage: hi}\n  - unordered:\n      - expect: {mesage: hi}\n"
        "ignore:\n  - {mesage: hi}\n"
    )
    hint = "did you mean 'message'? allowed: "
    in_steps = f"{hint}{events.replace('open', 'nothing, open')}, save, timeout"
    assert sorted((d.pointer, d.hint) for d in check(text)) == [
        ("/ignore/0/mesage", f"{hint}{events}, save"),
        ("/steps/0/expect/mesage", in_steps),
        ("/steps/1/unordered/0/expect/mesage", in_steps),
    ]


def test_a_bare_event_names_hint_leaves_out_the_events_a_scenario_cannot_see() -> None:
    text = f"{HEAD}steps:\n  - expect: pnog\nignore: [pnog]\n"
    allowed = "allowed: close, dataEnd, error, headerReceive, message, open"
    assert sorted((d.pointer, d.hint) for d in check(text)) == [
        ("/ignore/0", allowed),
        ("/steps/0/expect", allowed),
    ]


def test_a_servers_rule_hint_leaves_out_client_events() -> None:
    text = "wscenario: 1\nserver: {}\nsteps: []\nrules:\n  - on: {mesageReceive: hi}\n"
    [found] = check(text)
    assert found.pointer == "/rules/0/on/mesageReceive"
    assert found.hint is not None
    assert "open" not in found.hint
    assert "messageReceive" in found.hint


def test_allowed_hint_without_a_close_value() -> None:
    assert allowed_hint("zzz", ["b", "a", True]) == "allowed: a, b, true"


def _full(text: str) -> list[Diagnostic]:
    """What validating the whole document with jsonschema alone reports."""
    doc = parse_yaml(text.encode(), "s.yaml")
    errors = validator().iter_errors(doc.data)
    return diagnostics_for(errors, doc.source_map, unusable_names(doc.data))


MANY_STEPS = [
    "  - send: {json: {n: 1}}",
    "  - sned: hi",
    "  - expect: {message: {json: {n: 1}, match: subset}, save: {id: /id}}",
    "  - close: {reason: NO}",
    "  - sleep: 10ms",
    "  - expect: {message: {txet: hi}}",
    "  - unordered: [{expect: open}, {expect: {message: {any: false}}}]",
    "  - ping: {}",
    "  - frames: [{opcode: 99}]",
    "  - {}",
    "  - []",
    "  - connect: {url: 1}",
    "  - send: hi\n    result: {error: {}}",
]


HEADS = [
    HEAD,
    "wscenario: 1\nserver: {}\n",
    "wscenario: 1\n",
    "wscenario: 1\nclient: {url: x}\nserver: {}\n",
    "wscenario: 2\nclient: {url: 1}\ntimeout: x\nbad: 1\n",
]


@pytest.mark.parametrize("head", HEADS)
def test_only_broken_steps_are_given_to_jsonschema_with_the_same_result(head: str) -> None:
    text = head + "steps:\n" + "\n".join(MANY_STEPS * 3) + "\n"
    assert check(text) == _full(text)
    assert len(check(text)) >= 5


@settings(max_examples=150, deadline=None)
@given(head=st.sampled_from(HEADS), steps=st.lists(st.sampled_from(MANY_STEPS), max_size=12))
def test_any_mix_of_steps_is_reported_as_by_jsonschema_alone(head: str, steps: list[str]) -> None:
    text = head + "steps:\n" + "".join(f"{step}\n" for step in steps)
    assert check(text) == _full(text)


@pytest.mark.parametrize(
    "text",
    [
        "[]\n",
        "wscenario: 1\nsteps: {}\n",
        "wscenario: 1\nclient: {url: 1}\n",
        HEAD + "steps:\n  - send: hi\n",
    ],
)
def test_documents_without_a_list_of_steps_are_validated_whole(text: str) -> None:
    assert check(text) == _full(text)


def test_the_predicate_agrees_with_the_validator_on_every_fixture() -> None:
    root = Path(__file__).resolve().parents[2] / "fixtures"
    cases = sorted(root.glob("*/*.yaml"))
    assert len(cases) >= 25
    for case in cases:
        with contextlib.suppress(SourceError):
            data = load_yaml_file(case).data
            assert scenario_predicate()(data) is validator().is_valid(data), case.name


def test_step_errors_point_at_their_own_step() -> None:
    steps = ["  - sleep: 1ms"] * 50 + ["  - sleep: soon"] + ["  - sleep: 1ms"] * 50
    found = check(HEAD + "steps:\n" + "\n".join(steps) + "\n")
    assert [(d.pointer, d.position.line) for d in found] == [("/steps/50/sleep", 54)]


def test_steps_are_reached_only_where_broken_steps_are_looked_for() -> None:
    # schema_errors leaves accepted steps out: that is exact only while the schema reaches
    # steps through properties/steps/items and the sides' allOf branches alone
    schema = scenario_schema()
    assert set(schema["properties"]["steps"]) == {"description", "type", "items"}
    for branch in schema["allOf"]:
        assert set(branch) == {"if", "then"}
        assert set(branch["then"]) == {"properties"}
        assert set(branch["then"]["properties"]) == {"steps"}
        assert set(branch["then"]["properties"]["steps"]) == {"items"}


def test_strict_is_a_boolean() -> None:
    assert check(HEAD + "strict: true\nsteps: []\n") == []
    found = rendered(HEAD + "strict: yes please\nsteps: []\n")
    assert found == ["s.yaml:3:9: error: /strict: expected true or false, got a string"]
