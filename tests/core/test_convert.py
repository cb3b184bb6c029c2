"""Transcript records become scenario steps, model steps and editable YAML."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from wscenario.core import model
from wscenario.core.convert import (
    MIN_SLEEP,
    USERINFO_REMARK,
    StepMaker,
    VolatileFinder,
    convert,
    placed,
    pointers_in,
    render_yaml,
    request_headers,
    selected_protocol,
    target_url,
    to_model,
    volatile_kind,
    wildcarded,
)
from wscenario.core.diagnostics import Position
from wscenario.core.scenario_loader import load_scenario
from wscenario.core.templating import render_text
from wscenario.core.transcript import End, Header, TranscriptEvent, decode_line

HEADER = Header("wscenario 0.1.0", "ws://127.0.0.1:8765/chat", "proxy", "2026-11-25T16:00:00+00:00")
END = End(
    0.92,
    "complete",
    {
        role: dict.fromkeys(("text", "binary", "ping", "pong", "close"), 0)
        for role in ("client", "server")
    },
)
HERE = Position("t.jsonl", 3, 1)
UUID = "3f0c2a9b-1111-2222-3333-444455556666"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def rec(line: dict[str, Any]) -> TranscriptEvent:
    """A record as the transcript reader decodes its line."""
    record = decode_line(json.dumps(line).encode(), 1)
    assert isinstance(record, TranscriptEvent)
    return record


def request(target: str = "/chat", headers: list[list[str]] | None = None) -> TranscriptEvent:
    return rec({"t": 0.001, "from": "client", "type": "request", "target": target,
                "headers": headers if headers is not None else [["host", "h"]]})  # fmt: skip


def response(status: int = 101, protocol: str | None = None) -> TranscriptEvent:
    headers = [["upgrade", "websocket"]]
    if protocol is not None:
        headers.append(["Sec-WebSocket-Protocol", protocol])
    return rec({"t": 0.002, "from": "server", "type": "response", "status": status,
                "reason": "x", "headers": headers})  # fmt: skip


def ev(t: float, who: str, type_: str, **fields: Any) -> TranscriptEvent:
    return rec({"t": t, "from": who, "type": type_, **fields})


CHAT: list[TranscriptEvent | End] = [
    request("/chat?room=1", [["Host", "h"], ["Authorization", "<redacted:authorization:8d1e44c0>"],
                             ["Sec-WebSocket-Key", "k"], ["Sec-WebSocket-Protocol", "chat"],
                             ["X-A", "1"], ["x-a", "2"]]),
    response(101, "chat"),
    ev(0.01, "client", "text", data='{"type":"hello"}'),
    ev(0.02, "server", "text", data=f'{{"type":"welcome","id":"{UUID}","n":1}}'),
    ev(0.03, "server", "text", data='{"type":"tick","n":2}'),
    ev(0.04, "server", "ping", data=b64(b"p")),
    ev(0.04, "client", "pong", data=b64(b"p")),
    ev(0.30, "client", "binary", data=b64(b"\x00\xff")),
    ev(0.31, "server", "binary", data=b64(b"\x00\xff")),
    ev(0.32, "client", "text", data="{ \"spaced\": true }"),
    ev(0.33, "server", "text", data="plain {{ not a template }}"),
    ev(0.34, "client", "ping", data=b64(b"c")),
    ev(0.35, "server", "pong", data=b64(b"c")),
    ev(0.9, "client", "close", code=1000, reason="bye"),
    ev(0.91, "server", "close", code=1000, reason="bye"),
    END,
]  # fmt: skip


# ------------------------------------------------------------------------- helpers


def test_request_headers_leave_the_library_its_own() -> None:
    headers = [("Host", "h"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "k"),
               ("Sec-WebSocket-Protocol", "a"), ("sec-websocket-protocol", "b"),
               ("Cookie", "c=1"), ("cookie", "d=2")]  # fmt: skip
    kept, protocol = request_headers(headers)
    assert kept == {"cookie": "c=1, d=2"}
    assert protocol == "a, b"
    assert request_headers([]) == ({}, None)
    assert selected_protocol([("X", "1"), ("Sec-WebSocket-Protocol", "chat")]) == "chat"
    assert selected_protocol([]) is None


@pytest.mark.parametrize(
    ("url", "target", "expected"),
    [
        ("ws://h:1", "/chat?a=1", "ws://h:1/chat?a=1"),
        ("ws://h:1/", "chat", "ws://h:1/chat"),
        ("ws://h:1/other", "/chat", "ws://h:1/other"),
        ("ws://h:1/?x=1", "/chat", "ws://h:1/?x=1"),
    ],
)
def test_target_url_appends_the_recorded_target_only_to_a_bare_url(
    url: str, target: str, expected: str
) -> None:
    assert target_url(url, target) == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("3f0c2a9b-1111-2222-3333-444455556666", "uuid"),
        ("2026-11-25T16:00:00.123+00:00", "timestamp"),
        ("2026-11-25 16:00", "timestamp"),
        ("deadbeefdeadbeef00", "hex token"),
        ("eyJhbGciOiJIUzI1NiJ9abc", "token"),
        ("abcdefghijklmnopqrstuvwxyz", None),
        ("12345678901234567890x", "token"),
        ("hello", None),
        (1764086400, "epoch time"),
        (1764086400123, "epoch time"),
        (-1764086400.5, "epoch time"),
        (42, None),
        (True, None),
        (None, None),
    ],
)
def test_volatile_kinds(value: model.JSON, kind: str | None) -> None:
    assert volatile_kind(value) == kind


def test_counters_are_numbers_that_grow_at_one_pointer() -> None:
    finder = VolatileFinder(max_pointers=2)
    assert finder.find("server", {"n": 1, "a": [5]}) == []
    assert finder.find("server", {"n": 2, "a": [4], "b": 1}) == [("/n", "counter")]
    assert finder.find("client", {"n": 3}) == []  # each side counts on its own
    # no room left: a new pointer is not remembered, known ones still are
    assert finder.find("server", {"m": 1, "n": 3}) == [("/n", "counter")]
    assert finder.find("server", {"m": 2}) == []
    assert finder.find("server", {"a/b~c": "3f0c2a9b-1111-2222-3333-444455556666"}) == [
        ("/a~1b~0c", "uuid")
    ]


def test_wildcarded_replaces_only_the_pointers_found() -> None:
    value: model.JSON = {"a/b": [1, {"t": 1764086400}], "k": "v"}
    loose = wildcarded(value, [("/a~1b/1/t", "epoch time"), ("/k", "token")])
    assert loose == {"a/b": [1, {"t": {"$any": "number"}}], "k": {"$any": "string"}}
    assert wildcarded(5, [("", "counter")]) == {"$any": "number"}


def test_pointers_in_says_which_pointers_lead_somewhere_in_a_json_text() -> None:
    pointers = ["/a~1b/1/t", "/k", "/missing", "/k/x", ""]
    assert pointers_in('{"a/b": [1, {"t": 2}], "k": "v"}', pointers) == {"/a~1b/1/t", "/k", ""}
    assert pointers_in("[0]", ["/0", "/1"]) == {"/0"}
    for not_a_document in ("plain text", '"a string"', "42", "{broken"):
        assert pointers_in(not_a_document, pointers) == set(), not_a_document


def test_placed_puts_each_wildcard_where_its_pointer_leads_and_nowhere_else() -> None:
    any_number: model.JSON = {"$any": "number"}
    value: model.JSON = {"a/b": [1, {"t": 2}], "k": "v"}
    assert placed(value, {"/a~1b/1/t": any_number, "/k": any_number}) == {
        "a/b": [1, {"t": any_number}],
        "k": any_number,
    }
    for nowhere in ("/missing", "/a~1b/x", "/a~1b/9", "/a~1b/01", "/a~1b/²", "/k/x", "/a~1b/0/t"):
        assert placed(value, {nowhere: any_number}) == value, nowhere
    assert placed([1, 2], {"": any_number}) == any_number  # the whole message


def test_a_step_maker_puts_its_wildcards_into_expected_json_only() -> None:
    wildcards = {"/ts": {"$any": "number"}}
    records = [
        ev(1, "server", "text", data='{"ts": 5, "v": 1}'),
        ev(2, "server", "text", data="plain 5"),
        ev(3, "client", "text", data='{"ts": 6}'),
    ]
    assert made("client", records, wildcards=wildcards) == [
        {"expect": {"message": {"json": {"ts": {"$any": "number"}, "v": 1}}}},
        {"expect": {"message": {"text": "plain 5"}}},
        {"send": {"text": '{"ts": 6}'}},  # sent as recorded, byte for byte
    ]


# ------------------------------------------------------------------------- steps


def made(side: str, records: Sequence[TranscriptEvent | End], **kw: Any) -> list[dict[str, Any]]:
    maker = StepMaker(side, **kw)  # type: ignore[arg-type]
    return [step.data for record in records for step in maker.steps(record)]


def test_client_side_of_a_chat() -> None:
    steps = made("client", CHAT, url="ws://127.0.0.1:9", env={})
    assert steps == [
        {"connect": {"url": "ws://127.0.0.1:9/chat?room=1",
                     "options": {"header": {"authorization": "<redacted:authorization:8d1e44c0>",
                                            "x-a": "1, 2"}, "protocol": "chat"}}},
        {"expect": {"open": {"status": 101}}},
        {"send": {"json": {"type": "hello"}}},
        {"expect": {"message": {"json": {"type": "welcome",
                                         "id": "3f0c2a9b-1111-2222-3333-444455556666", "n": 1}},
                    "save": {"id": "/id"}}},
        {"expect": {"message": {"json": {"type": "tick", "n": 2}}}},
        {"expect": {"ping": {"binary": {"base64": b64(b"p")}}}},
        {"send": {"binary": {"base64": b64(b"\x00\xff")}}},
        {"expect": {"message": {"binary": {"base64": b64(b"\x00\xff")}}}},
        {"send": {"text": '{ "spaced": true }'}},
        {"expect": {"message": {"text": "{{ text1 }}"}}},
        {"ping": {"base64": b64(b"c")}},  # the raw client driver a replay uses sends it
        {"expect": {"pong": {"binary": {"base64": b64(b"c")}}}},
        {"close": {"code": 1000, "reason": "bye"}},
        {"expect": {"close": {"code": 1000, "reason": "bye"}}},
    ]  # fmt: skip


def test_server_side_of_a_chat() -> None:
    steps = made("server", CHAT)
    assert steps[0] == {"expect": {"connect": {"path": "/chat"}}}
    assert steps[1] == {"expect": {"messageReceive": {"json": {"type": "hello"}}}}
    assert steps[2] == {"send": {"json": {"type": "welcome",
                        "id": "3f0c2a9b-1111-2222-3333-444455556666", "n": 1}}}  # fmt: skip
    assert {"expect": {"pong": {"binary": {"base64": b64(b"p")}}}} in steps
    assert {"ping": {"base64": b64(b"c")}} not in steps  # the client's ping is expected
    assert {"expect": {"ping": {"binary": {"base64": b64(b"c")}}}} in steps
    assert {"send": {"text": "{{ text1 }}"}} in steps
    assert steps[-1] == {"expect": {"close": {"code": 1000, "reason": "bye"}}}
    assert {"close": {"code": 1000, "reason": "bye"}} not in steps  # answered by the engine


def test_closes_the_engine_answers_are_not_replayed() -> None:
    records = [ev(1, "server", "close", code=None, reason=""),
               ev(1.1, "client", "close", code=1005, reason="")]  # fmt: skip
    assert made("client", records) == [{"expect": {"close": {"code": 1005, "reason": ""}}}]
    assert made("server", [ev(1, "server", "close", code=None, reason="")]) == [
        {"close": {"noPayload": True}}
    ]
    assert made("client", [ev(1, "client", "close", code=None, reason="")]) == [{"close": {}}]


def test_disconnects_and_errors() -> None:
    drop = ev(1, "server", "disconnect", kind="reset", message="")
    assert made("server", [drop]) == [{"drop": {"mode": "rst"}}]
    assert made("client", [drop]) == [{"expect": {"close": {"code": 1006}}}]
    fin = ev(1, "client", "disconnect", kind="eof", message="")
    assert made("client", [fin]) == [{"drop": {}}]
    assert made("server", [fin]) == [{"expect": {"close": {"code": 1006}}}]
    maker = StepMaker("client")
    (error,) = maker.steps(ev(1, "server", "error", message="x\ny"))
    assert (error.data, error.call) == ({}, False)
    assert error.notes == ("recorded error from the server: x\ny",)
    assert maker.steps(END) == []
    assert maker.left_out == set()


def test_an_ohos_client_leaves_its_pings_and_drops_out_with_notes() -> None:
    maker = StepMaker("client", profile="ohos")
    records = [
        ev(0.1, "client", "ping", data=b64(b"a")),
        ev(0.3, "server", "pong", data=b64(b"a")),  # a device does not report pongs
        ev(0.5, "client", "disconnect", kind="reset", message=""),
        ev(0.6, "server", "text", data="too late"),
        ev(0.7, "server", "close", code=1000, reason=""),
    ]
    steps = [step for record in records for step in maker.steps(record)]
    assert [step.data for step in steps] == [{}, {}, {}]
    assert steps[0].notes == (
        (
            "the client sent a ping here (payload YQ== in base64); left out with the server's"
            " pong: an ohos app cannot send pings (the device's heartbeat does: pingInterval)"
        ),
    )
    assert steps[1].notes == (
        (
            "the client dropped the connection here without a close frame; left out, so this "
            "scenario ends with a close instead: an ohos app cannot drop a connection"
        ),
    )
    assert steps[2].notes == ("what the server did after that is left out too",)
    assert maker.left_out == {"ping", "drop"}


def test_an_ohos_client_cannot_ping_or_drop_even_in_a_replay() -> None:
    maker = StepMaker("client", profile="ohos")
    (ping,) = maker.steps(ev(0.1, "client", "ping", data=""))
    assert ping.data == {}
    assert ping.notes[0].endswith(
        "an ohos app cannot send pings (the device's heartbeat does: pingInterval)"
    )
    (drop,) = maker.steps(ev(0.2, "client", "disconnect", kind="eof", message=""))
    assert drop.notes[0].endswith("an ohos app cannot drop a connection")


PROXY_STOPPED: list[TranscriptEvent | End] = [
    ev(0.2, "server", "error", message="the proxy, not the upstream, sent the next close: stop"),
    ev(0.2, "server", "close", code=1001, reason="proxy shutting down"),
    ev(0.2, "client", "error", message="the proxy, not the client, sent the next close: stop"),
    ev(0.2, "client", "close", code=1001, reason="proxy shutting down"),
    ev(0.3, "client", "close", code=1001, reason="proxy shutting down"),  # the client's answer
    ev(0.3, "server", "close", code=1001, reason="proxy shutting down"),  # the upstream's
]


def test_closes_a_recording_proxy_sent_on_its_own_are_played_as_their_peer_saw_them() -> None:
    client = StepMaker("client")
    steps = [step for record in PROXY_STOPPED for step in client.steps(record)]
    assert [step.data for step in steps if step.data] == [
        {"close": {"code": 1001, "reason": "proxy shutting down"}},  # what the upstream got
        {"expect": {"close": {"code": 1001, "reason": "proxy shutting down"}}},
    ]
    assert steps[1].notes == ("left out: the recording proxy sent this close, not the server",)
    server = made("server", PROXY_STOPPED)
    assert [step for step in server if step] == [
        {"close": {"code": 1001, "reason": "proxy shutting down"}},  # what the client got
        {"expect": {"close": {"code": 1001, "reason": "proxy shutting down"}}},
    ]


@pytest.mark.parametrize("side", ["client", "server"])
def test_a_protocol_break_is_left_out_with_what_the_peer_did_after_it(side: str) -> None:
    peer = "server" if side == "client" else "client"
    maker = StepMaker(side)  # type: ignore[arg-type]
    broke = ev(0.1, side, "disconnect", kind="protocol", message="bad opcode 3")
    (note,) = maker.steps(broke)
    assert note.data == {}
    assert note.notes == (
        (
            f"the {side} broke the connection here (protocol: bad opcode 3): left out, it is "
            "not in the transcript"
        ),
    )
    (after,) = maker.steps(ev(0.2, peer, "close", code=1002, reason=""))
    assert after.notes == (f"what the {peer} did after that is left out too",)
    assert maker.steps(ev(0.3, peer, "text", data="x")) == []
    assert maker.left_out == {"protocol break"}


def test_handshake_steps() -> None:
    assert made("client", [request()]) == [{"connect": {}}]
    assert made("client", [response(404)]) == [{"expect": {"error": {"status": 404}}}]
    assert made("client", [response(404)], profile="ohos") == [{"expect": {"error": {"code": 200}}}]
    assert made("server", [response()]) == []
    assert made("server", [request("")]) == [{"expect": {"connect": {"path": "/"}}}]
    plain = made("client", [request("/", [])], url="ws://h/")
    assert plain == [{"connect": {"url": "ws://h/", "options": {"header": {}}}}]


def test_secrets_in_a_replay_are_restored_and_missing_ones_collected() -> None:
    maker = StepMaker("client", url="ws://h", env={"WSCENARIO_SECRET_TOKEN": "s3"})
    record = request(
        "/c?token=<redacted:token:1f0c2a9b>", [["Cookie", "<redacted:cookie:2a2a2a2a>"]]
    )
    (step,) = maker.steps(record)
    connect: Any = step.data["connect"]
    assert connect["url"] == "ws://h/c?token=s3"
    assert connect["options"]["header"] == {"cookie": "<redacted:cookie:2a2a2a2a>"}
    assert maker.missing == {"WSCENARIO_SECRET_COOKIE"}


def test_secrets_in_a_conversion_become_env_templates() -> None:
    (step,) = StepMaker("client").steps(ev(0, "client", "text", data="<redacted:token:1f0c2a9b>"))
    assert step.data == {"send": {"text": "{{ env.WSCENARIO_SECRET_TOKEN }}"}}
    mixed = ev(0, "client", "text", data="{{ x }} <redacted:token:1f0c2a9b>{<redacted:a:0000000a>}")
    (step,) = StepMaker("client").steps(mixed)
    sent = "{{ text1 }}{{ env.WSCENARIO_SECRET_TOKEN }}{{ text2 }}{{ env.WSCENARIO_SECRET_A }}}"
    assert step.data == {"send": {"text": sent}}
    assert step.variables == {"text1": "{{ x }} ", "text2": "{"}  # "{" and a template: "{{{"
    env = {"WSCENARIO_SECRET_TOKEN": "s3cr3t", "WSCENARIO_SECRET_A": "b"}
    assert render_text(sent, step.variables, env) == "{{ x }} s3cr3t{b}"


def test_a_conversion_remarks_which_secret_variables_to_set_in_order() -> None:
    records = [
        request("/c?token=<redacted:token:1f0c2a9b>", [["Cookie", "<redacted:cookie:2a2a2a2a>"]]),
        response(),
        ev(0.01, "client", "text", data='{"a":"<redacted:token-10:0000000a>"}'),
        ev(0.02, "client", "text", data='{"b":"<redacted:token-2:00000002>"}'),
        ev(0.03, "server", "text", data='{"c":"<redacted:token-2:00000002>"}'),
    ]
    converted = convert(HEADER, records, side="client", name="secrets")
    (remark,) = converted.remarks
    assert remark == (
        "redacted secrets are read from the environment: WSCENARIO_SECRET_COOKIE, "
        "WSCENARIO_SECRET_TOKEN, WSCENARIO_SECRET_TOKEN_2, WSCENARIO_SECRET_TOKEN_10"
    )
    steps: Any = converted.data["steps"]
    assert {"send": {"text": '{"b":"{{ env.WSCENARIO_SECRET_TOKEN_2 }}"}'}} in steps
    server = convert(HEADER, records, side="server", name="secrets")
    (remark,) = server.remarks
    assert remark == (
        "redacted secrets are read from the environment: WSCENARIO_SECRET_TOKEN_2, "
        "WSCENARIO_SECRET_TOKEN_10"
    )
    assert convert(HEADER, records[1:2], side="client", name="plain").remarks == ()


def test_verbatim_texts_share_one_variable_in_a_replay() -> None:
    maker = StepMaker("client")
    maker.reuse_variable()
    first, second = (maker.steps(ev(0, "client", "text", data=f"{{{{{n}"))[0] for n in "ab")
    assert first.data == second.data == {"send": {"text": "{{ text }}"}}
    assert second.variables == {"text": "{{b"}


def test_json_that_a_matcher_would_misread_is_expected_as_text() -> None:
    for data in ['{"$any": true}', '[{"a": {"$regex": "x"}}]', '"just a string"', "null"]:
        (step,) = StepMaker("client").steps(ev(0, "server", "text", data=data))
        assert step.data == {"expect": {"message": {"text": data}}}
    (step,) = StepMaker("client").steps(ev(0, "server", "text", data='{"a": {"b": 1, "$c": 2}}'))
    assert step.data == {"expect": {"message": {"json": {"a": {"b": 1, "$c": 2}}}}}


def test_loose_expectations_wildcard_volatile_values_and_notes_point_them_out() -> None:
    record = ev(0, "server", "text", data='{"ts":"2026-11-25T16:00:00Z","v":1}')
    (strict,) = StepMaker("client").steps(record)
    assert strict.notes == (
        (
            "/ts looks volatile (timestamp): wildcard it with "
            "{$regex: '^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}'} or list it in ignorePointers"
        ),
    )
    (loose,) = StepMaker("client", loose=True).steps(record)
    expect: Any = loose.data["expect"]
    ts = expect["message"]["json"]["ts"]
    assert ts == {"$regex": "^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}"}
    (calm,) = StepMaker("client", loose=True).steps(ev(0, "server", "text", data='{"v":1}'))
    assert calm.data == {"expect": {"message": {"json": {"v": 1}}}}


# ------------------------------------------------------------------------- correlation

HEX = "deadbeefdeadbeef00"
TOKEN = "eyJhbGciOiJIUzI1NiJ9abc"


def test_the_client_sends_back_the_identifiers_the_server_issued_as_variables() -> None:
    welcome = {"type": "welcome", "session": UUID, "n": 1764086400, "at": "2026-11-25T16:00:00Z",
               "name": "short", "auth": {"token": TOKEN}}  # fmt: skip
    ack = {"type": "ack", "session": UUID, "refs": [f"s:{UUID}", TOKEN], UUID: "key",
           "n": 1764086400, "at": "2026-11-25T16:00:00Z", "name": "short"}  # fmt: skip
    records = [
        ev(1, "server", "text", data=json.dumps(welcome)),
        ev(2, "client", "text", data=json.dumps(ack, separators=(",", ":"))),
        ev(3, "client", "text", data=f"bye {UUID}, {TOKEN} x{UUID} {TOKEN}{UUID} {UUID}/1"),
    ]
    maker = StepMaker("client", loose=True)
    expect, send, text = [step for record in records for step in maker.steps(record)]
    assert expect.data["expect"]["save"] == {  # type: ignore[index, call-overload]
        "session": "/session", "token": "/auth/token"}  # fmt: skip
    assert expect.saved == ("session", "token")
    assert expect.data["expect"]["message"]["json"]["session"] == {  # type: ignore[index, call-overload]
        "$regex": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    }
    assert send.data == {"send": {"json": {
        "type": "ack", "session": "{{ session }}", "refs": ["s:{{ session }}", "{{ token }}"],
        UUID: "key", "n": 1764086400, "at": "2026-11-25T16:00:00Z", "name": "short"}}}  # fmt: skip
    assert text.data == {  # a value inside a longer word is left as it is
        "send": {"text": f"bye {{{{ session }}}}, {{{{ token }}}} x{UUID} {TOKEN}{UUID} "
                         "{{ session }}/1"}}  # fmt: skip
    assert maker.echoed == {"session", "token"}


def test_the_server_sends_back_the_identifiers_the_client_sent() -> None:
    records = [
        ev(1, "client", "text", data=f'{{"op":"get","id":"{HEX}"}}'),
        ev(2, "server", "text", data=f'{{ "re": "{HEX}" }}'),
        ev(3, "server", "text", data=f"{{{{ {HEX}"),  # through a variable: sent as recorded
    ]
    maker = StepMaker("server")
    steps = [step for record in records for step in maker.steps(record)]
    assert [step.data for step in steps] == [
        {"expect": {"messageReceive": {"json": {"op": "get", "id": HEX}}, "save": {"id": "/id"}}},
        {"send": {"text": '{ "re": "{{ id }}" }'}},
        {"send": {"text": "{{ text1 }}"}},
    ]
    assert steps[2].variables == {"text1": f"{{{{ {HEX}"}


def test_saved_names_come_from_the_pointer_and_are_unique() -> None:
    ids = [f"{n}f0c2a9b-1111-2222-3333-444455556666" for n in range(8)]
    first = {"a": {"session": ids[0]}, "b": {"session": ids[1]}, "session-id": ids[2],
             "list": [ids[3]], "": ids[4], "text": ids[5], "x/y": {"a~b": ids[6]},
             "again": ids[0]}  # fmt: skip
    maker = StepMaker("client")
    (step,) = maker.steps(ev(1, "server", "text", data=json.dumps(first)))
    assert step.data["expect"]["save"] == {  # type: ignore[index, call-overload]
        "session": "/a/session", "session_2": "/b/session", "session_id": "/session-id",
        "value0": "/list/0", "value": "/", "text_2": "/text", "a_b": "/x~1y/a~0b",
    }  # fmt: skip
    (later,) = maker.steps(ev(2, "server", "text", data=json.dumps({"session": ids[7]})))
    assert later.data["expect"]["save"] == {"session_3": "/session"}  # type: ignore[index, call-overload]
    (again,) = maker.steps(ev(3, "server", "text", data=json.dumps({"session": ids[0]})))
    assert "save" not in again.data["expect"]  # type: ignore[operator]
    assert again.saved == ()


def test_values_at_ignored_pointers_are_not_saved() -> None:
    data = json.dumps({"meta": {"id": UUID}, "metadata": HEX, "m": TOKEN})
    (step,) = StepMaker("client", ignore=("/meta", "/m")).steps(ev(1, "server", "text", data=data))
    assert step.data["expect"]["save"] == {"metadata": "/metadata"}  # type: ignore[index, call-overload]


def test_values_under_a_wildcard_are_not_saved() -> None:
    # '--match /data=any:object' accepts {"data": {}}, where a save of /data/id would fail
    data = json.dumps({"data": {"id": UUID}, "other": HEX})
    maker = StepMaker("client", wildcards={"/data": {"$any": "object"}})
    (step,) = maker.steps(ev(1, "server", "text", data=data))
    assert step.data["expect"] == {
        "message": {"json": {"data": {"$any": "object"}, "other": HEX}},
        "save": {"other": "/other"},
    }


def test_the_latest_used_values_are_remembered() -> None:
    maker = StepMaker("client", max_saved=2)
    ids = [f"{n}f0c2a9b-1111-2222-3333-444455556666" for n in range(3)]

    def sent(value: str) -> Any:
        (step,) = maker.steps(ev(1, "client", "text", data=f'{{"id":"{value}"}}'))
        return step.data["send"]["json"]["id"]  # type: ignore[index, call-overload]

    for value in ids[:2]:
        maker.steps(ev(1, "server", "text", data=f'{{"id":"{value}"}}'))
    assert sent(ids[0]) == "{{ id }}"  # the first is now the latest used
    (third,) = maker.steps(ev(1, "server", "text", data=f'{{"id":"{ids[2]}"}}'))
    assert third.data["expect"]["save"] == {"id_3": "/id"}  # type: ignore[index, call-overload]
    assert sent(ids[1]) == ids[1]  # the least recently used is forgotten
    assert [sent(ids[0]), sent(ids[2])] == ["{{ id }}", "{{ id_3 }}"]


def test_secret_templates_stay_around_a_value_sent_back() -> None:
    maker = StepMaker("client")
    maker.steps(ev(1, "server", "text", data=f'{{"session":"{UUID}"}}'))
    data = f'{{"auth":"<redacted:token:1f0c2a9b>","session":"{UUID}"}}'
    (step,) = maker.steps(ev(2, "client", "text", data=data))
    assert step.data == {"send": {"text": (
        '{"auth":"{{ env.WSCENARIO_SECRET_TOKEN }}","session":"{{ session }}"}')}}  # fmt: skip


def test_a_conversion_keeps_only_the_saves_a_send_uses(tmp_path: Path) -> None:
    records = [
        request(),
        response(),
        ev(0.01, "server", "text", data=f'{{"session":"{UUID}","trace":"{HEX}"}}'),
        ev(0.02, "server", "text", data=f'{{"trace":"{TOKEN}"}}'),
        ev(0.03, "client", "text", data=f'{{"type":"ack","session":"{UUID}"}}'),
    ]
    converted = convert(HEADER, records, side="client", name="n", loose=True)
    steps: Any = converted.data["steps"]
    assert steps[2]["expect"]["save"] == {"session": "/session"}
    assert steps[3]["expect"].keys() == {"message"}
    assert steps[4] == {"send": {"json": {"type": "ack", "session": "{{ session }}"}}}
    path = tmp_path / "n.yaml"
    path.write_text(render_yaml(converted, source="n.jsonl", schema="s.json"))
    expect = load_scenario(path).steps[2]
    assert isinstance(expect, model.Expect)
    assert expect.save == {"session": "/session"}


# ------------------------------------------------------------------------- the model


def test_model_steps_match_the_scenario_language() -> None:
    maker = StepMaker("client", url="ws://h", env={})
    steps = [to_model(s, HERE, "/steps/0") for r in CHAT for s in maker.steps(r)]
    connect = steps[0]
    assert isinstance(connect, model.Connect)
    assert connect.url == "ws://h/chat?room=1"
    assert connect.options == model.ConnectOptions(
        header={"authorization": "<redacted:authorization:8d1e44c0>", "x-a": "1, 2"},
        protocol="chat",
    )
    assert steps[1] == model.Expect(
        matcher=model.EventMatcher("open", fields={"status": 101}), position=HERE,
        pointer="/steps/0")  # fmt: skip
    assert isinstance(steps[2], model.Send)
    assert steps[2].payload == model.JsonPayload({"type": "hello"})
    assert isinstance(steps[6], model.Send)
    assert steps[6].payload == model.BinaryPayload(b"\x00\xff")
    assert isinstance(steps[7], model.Expect)
    assert steps[7].matcher.payload == model.BinaryMatcher(b"\x00\xff")
    assert isinstance(steps[8], model.Send)
    assert steps[8].payload == model.TextPayload('{ "spaced": true }')
    assert isinstance(steps[9], model.Expect)
    assert steps[9].matcher.payload == model.TextMatcher("{{ text1 }}")
    assert steps[10] == model.Ping(data=b"c", position=HERE, pointer="/steps/0")
    assert isinstance(steps[3], model.Expect)
    assert isinstance(steps[3].matcher.payload, model.JsonMatcher)
    assert steps[-2] == model.Close(code=1000, reason="bye", position=HERE, pointer="/steps/0")
    server = StepMaker("server")
    ping = server.steps(ev(0, "server", "ping", data=b64(b"x")))[0]
    assert to_model(ping, HERE, "") == model.Ping(data=b"x", position=HERE, pointer="")
    drop = server.steps(ev(0, "server", "disconnect", kind="eof", message=""))[0]
    assert to_model(drop, HERE, "") == model.Drop(position=HERE, pointer="")
    rst = server.steps(ev(0, "server", "disconnect", kind="reset", message=""))[0]
    assert to_model(rst, HERE, "") == model.Drop(mode="rst", position=HERE, pointer="")
    note = StepMaker("client", profile="ohos").steps(ev(0, "client", "ping", data=""))[0]
    assert to_model(note, HERE, "") is None
    saving = StepMaker("client").steps(ev(0, "server", "text", data=f'{{"id":"{UUID}"}}'))[0]
    assert to_model(saving, HERE, "") == model.Expect(
        matcher=model.EventMatcher("message", payload=model.JsonMatcher({"id": UUID})),
        save={"id": "/id"}, position=HERE, pointer="")  # fmt: skip
    bare = StepMaker("client").steps(request())[0]
    connect = to_model(bare, HERE, "")
    assert isinstance(connect, model.Connect)
    assert connect.url is None


# ------------------------------------------------------------------------- whole scenarios


def test_a_converted_scenario_validates_and_reads_well(tmp_path: Path) -> None:
    converted = convert(HEADER, CHAT, side="client", name="chat")
    text = render_yaml(converted, source="chat.jsonl", schema="s.json")
    lines = text.splitlines()
    assert lines[0] == "# yaml-language-server: $schema=s.json"
    assert "  # /id looks volatile (uuid)" in "\n".join(lines)
    assert "left out" not in text
    data = yaml.safe_load(text)
    ping = data["steps"].index({"ping": {"base64": b64(b"c")}})
    assert data["steps"][ping + 1] == {"expect": {"pong": {"binary": {"base64": b64(b"c")}}}}
    assert data["client"] == {
        "url": "ws://127.0.0.1:8765/chat?room=1",
        "profile": "raw",
        "options": {
            "header": {"authorization": "{{ env.WSCENARIO_SECRET_AUTHORIZATION }}", "x-a": "1, 2"},
            "protocol": "chat",
        },
    }
    assert data["vars"] == {"text1": "plain {{ not a template }}"}
    sleeps = [step["sleep"] for step in data["steps"] if "sleep" in step]
    assert sleeps == ["260ms", "550ms"]  # 0.04 -> 0.30 (a short gap to the ping) -> 0.90
    assert {"send": {"json": {"type": "hello"}}} in data["steps"]
    path = tmp_path / "chat.yaml"
    path.write_text(text)
    scenario = load_scenario(path)
    assert scenario.client is not None
    assert scenario.client.profile == "raw"


def test_text_that_reads_like_an_environment_default_is_still_sent_as_recorded(
    tmp_path: Path,
) -> None:
    records = [request(), response(), ev(0.01, "client", "text", data="{{ env.HOME }}")]
    converted = convert(HEADER, records, side="client", name="n")
    path = tmp_path / "env.yaml"
    path.write_text(render_yaml(converted, source="n.jsonl", schema="s.json"))
    scenario = load_scenario(path, env={"HOME": "/home/someone"})
    assert converted.data["steps"] == [
        {"connect": {}},
        {"expect": {"open": {"status": 101}}},
        {"send": {"text": "{{ text1 }}}}"}},
    ]
    assert render_text("{{ text1 }}}}", scenario.vars, {}) == "{{ env.HOME }}"


def test_short_gaps_are_not_slept_and_notes_at_the_end_are_kept(tmp_path: Path) -> None:
    records = [request(), response(), ev(0.002 + MIN_SLEEP / 2, "client", "text", data="a"),
               ev(0.5, "client", "disconnect", kind="eof", message="")]  # fmt: skip
    converted = convert(HEADER, records, side="client", name="n", loose=True)
    assert converted.data["steps"] == [
        {"connect": {}},
        {"expect": {"open": {"status": 101}}},
        {"send": {"text": "a"}},
        {"sleep": "470ms"},
        {"drop": {}},
    ]
    ohos = convert(HEADER, records, side="client", name="n", profile="ohos")
    text = render_yaml(ohos, source="n.jsonl", schema="s.json")
    assert text.endswith(
        "  - {sleep: 470ms}\n  # the client dropped the connection here without a close frame;"
        " left out, so this scenario ends with a close instead: an ohos app cannot drop a"
        " connection\n"
    )


def test_a_wildcard_used_twice_is_written_out_twice_without_yaml_aliases() -> None:
    twins = ev(0.1, "server", "text", data=f'{{"a":"{UUID}","b":"{UUID}"}}')
    converted = convert(HEADER, [request(), twins], side="client", name="n", loose=True)
    text = render_yaml(converted, source="n.jsonl", schema="s.json")
    assert "&id" not in text
    assert "*id" not in text
    assert text.count("$regex") == 2


def test_comments_stay_one_line_whatever_the_transcript_holds(tmp_path: Path) -> None:
    error = ev(0.1, "server", "error", message="a\nsteps: [{send: x}]\r\u2028b\x85\x1b[2J")
    converted = convert(HEADER, [request(), error], side="client", name="n")
    text = render_yaml(converted, source="x\ny: 1.jsonl", schema="s\n.json")
    assert (
        "  # recorded error from the server: a\\nsteps: [{send: x}]\\r\\u2028b\\x85\\x1b[2J" in text
    )
    assert "# Converted from x\\ny: 1.jsonl; edit freely." in text
    path = tmp_path / "n.yaml"
    path.write_text(text)
    assert [step.pointer for step in load_scenario(path).steps] == ["/steps/0"]


def test_a_server_scenario_selects_the_recorded_subprotocol(tmp_path: Path) -> None:
    converted = convert(HEADER, CHAT, side="server", name="chat")
    assert converted.data["server"] == {
        "listen": "127.0.0.1:8765",
        "path": "/chat",
        "handshake": {"protocol": "chat"},
    }
    without = convert(HEADER, [request(), response()], side="server", name="x")
    assert without.data["server"] == {"listen": "127.0.0.1:8765", "path": "/chat"}
    path = tmp_path / "chat.server.yaml"
    path.write_text(render_yaml(converted, source="chat.jsonl", schema="s.json"))
    assert load_scenario(path).server is not None


def test_a_transcript_without_a_request_still_converts() -> None:
    converted = convert(HEADER, [], side="client", name="empty")
    assert converted.data["client"] == {"url": "ws://127.0.0.1:8765/", "profile": "raw"}
    assert converted.data["steps"] == []
    assert json.loads(json.dumps(converted.data)) == converted.data


def test_an_ohos_client_expects_what_a_device_reports() -> None:
    records = [
        ev(0.1, "server", "ping", data=b64(b"p")),
        ev(0.1, "server", "pong", data=b64(b"p")),
        ev(0.2, "server", "close", code=4000, reason="done"),
    ]
    maker = StepMaker("client", profile="ohos")
    steps = [step for record in records for step in maker.steps(record)]
    assert [step.data for step in steps] == [{"expect": "close"}]
    assert steps[0].notes == (
        "recorded: close 4000 'done'; a device reports its own code and reason",
    )
    assert to_model(steps[0], HERE, "") == model.Expect(
        matcher=model.EventMatcher("close"), position=HERE, pointer=""
    )
    lost = ev(0.3, "server", "disconnect", kind="reset", message="")
    assert made("client", [lost], profile="ohos") == [
        {"expect": {"error": {"code": 200}}},
        {"expect": "close"},
    ]


def test_an_ohos_conversion_validates(tmp_path: Path) -> None:
    converted = convert(HEADER, CHAT, side="client", name="chat", profile="ohos")
    path = tmp_path / "chat.yaml"
    path.write_text(render_yaml(converted, source="chat.jsonl", schema="s.json"))
    scenario = load_scenario(path)
    assert scenario.client is not None
    assert scenario.client.profile == "ohos"


def test_no_steps_are_written_as_an_empty_list(tmp_path: Path) -> None:
    converted = convert(HEADER, [], side="client", name="empty")
    text = render_yaml(converted, source="empty.jsonl", schema="s.json")
    assert text.endswith("\nsteps: []\n")
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    assert load_scenario(path).steps == ()


@pytest.mark.parametrize("side", ["client", "server"])
def test_the_recorded_urls_userinfo_is_left_out_and_remarked(tmp_path: Path, side: str) -> None:
    header = Header(HEADER.tool, "ws://u:p@127.0.0.1:8765/chat", HEADER.side, HEADER.started)
    converted = convert(header, CHAT, side=side, name="chat")  # type: ignore[arg-type]
    assert converted.remarks[0] == USERINFO_REMARK
    assert (
        converted.data["description"] == "Converted from a transcript of ws://127.0.0.1:8765/chat"
    )
    text = render_yaml(converted, source="chat.jsonl", schema="s.json")
    assert "u:p@" not in text
    assert text.splitlines()[2] == f"# {USERINFO_REMARK}"
    path = tmp_path / "chat.yaml"
    path.write_text(text)
    load_scenario(path)
    assert USERINFO_REMARK not in convert(HEADER, CHAT, side="client", name="chat").remarks
