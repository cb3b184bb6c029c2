"""Building the typed model from the valid fixtures, and the problems found while building."""

# ruff: noqa: E501 - expected messages are kept whole, as the command prints them

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wscenario.core import model
from wscenario.core.build import BuildError, build_scenario
from wscenario.core.diagnostics import Position
from wscenario.core.source import load_yaml_file, parse_yaml

VALID = Path(__file__).resolve().parents[2] / "fixtures" / "valid"


def build(name: str) -> model.Scenario:
    return build_scenario(load_yaml_file(VALID / name), base_dir=VALID)


def test_client_scenario() -> None:
    scenario = build("client_full.yaml")
    assert (scenario.name, scenario.side, scenario.timeout) == ("login and echo", "client", 2.0)
    assert scenario.vars == {"user": "alice", "token": "abc", "n": 3}
    assert scenario.limits.max_message_size == 64 * 1024
    assert scenario.limits.handshake_timeout == 5.0
    assert scenario.ignore_pointers == ("/ts",)
    assert scenario.ignore[0].payload == model.JsonMatcher({"type": "heartbeat"}, mode="subset")
    client = scenario.client
    assert client is not None
    assert client.options.header == {"authorization": "Bearer {{ token }}"}
    assert client.options.ca_path == (VALID / "data" / "ca.pem").resolve()
    assert client.options.client_cert == model.ClientCert(
        (VALID / "data/c.pem").resolve(), (VALID / "data/k.pem").resolve(), "{{ env.KEY_PW }}"
    )
    assert (client.options.ping_interval, client.api, client.profile) == (30, 20, "ohos")
    steps = scenario.steps
    assert steps[0] == model.Connect(
        position=Position(str(VALID / "client_full.yaml"), 21, 5), pointer="/steps/0"
    )
    assert steps[1] == model.Expect(
        matcher=model.EventMatcher("open", fields={"status": 101}),
        position=steps[1].position,
        pointer="/steps/1",
    )
    payloads = [s.payload for s in steps[2:7] if isinstance(s, model.Send)]
    assert payloads == [
        model.TextPayload("hello"),
        model.BinaryPayload(b"\x00\xff\x10"),
        model.BinaryPayload(b"\x00\x01"),
        model.BinaryPayload(b"\x00\x01\x02"),
        model.JsonPayload({"type": "join", "user": "{{ user }}", "n": "{{ n }}"}),
    ]
    expect = steps[8]
    assert isinstance(expect, model.Expect)
    assert expect.save == {"sid": "/session/id"}
    assert expect.timeout == 1.0
    assert expect.matcher.payload == model.JsonMatcher(
        {"type": "welcome", "id": {"$any": "string"}}, mode="subset", ignore=("/ts",)
    )
    matchers = [s.matcher.payload for s in steps[9:15] if isinstance(s, model.Expect)]
    assert matchers == [
        model.RegexMatcher("^ok (?P<count>\\d+)$"),
        model.SchemaMatcher({"type": "object", "required": ["id"]}),
        model.SchemaMatcher({"type": "object"}),
        model.BinaryMatcher(b"\x00"),
        model.AnyMatcher("text"),
    ]
    assert isinstance(steps[16], model.ExpectNothing)
    assert steps[16].duration == 0.3
    group = steps[17]
    assert isinstance(group, model.Unordered)
    assert [e.pointer for e in group.expects] == ["/steps/17/unordered/0", "/steps/17/unordered/1"]
    assert isinstance(steps[18], model.Sleep)
    assert steps[18].duration == 0.1
    assert steps[19] == model.Close(
        code=1000, reason="bye", position=steps[19].position, pointer="/steps/19"
    )
    last = steps[21]
    assert isinstance(last, model.Send)
    assert last.result == model.ExpectedError(-1, "bad")


def test_server_scenario() -> None:
    scenario = build("server_full.yaml")
    server = scenario.server
    assert server is not None
    assert (scenario.name, server.listen, server.path, server.answer_close) == (
        "server_full",
        "127.0.0.1:0",
        "/chat",
        False,
    )
    assert server.handshake == model.Handshake(
        require_headers={"authorization": "^Bearer .+"},
        origins=("https://app.example",),
        protocol="chat.v1",
        reject=model.Reject(401, "unauthorized", {"www-authenticate": "Bearer"}),
        delay=0.01,
    )
    steps = scenario.steps
    send = steps[3]
    assert isinstance(send, model.Send)
    assert (send.fragments, send.fragment_delay, send.ping_between) == (4, 0.01, True)
    assert [s.data for s in steps[4:7] if isinstance(s, model.Ping)] == [b"hi", b"\x01\x02", b""]
    frames = steps[7]
    assert isinstance(frames, model.Frames)
    assert frames.frames == (
        model.RawFrame(1, b"he", fin=False, rsv=(True, False, False), delay=0.01),
        model.RawFrame(0, b"llo"),
    )
    assert steps[8] == model.Expect(
        matcher=model.EventMatcher("ping"), position=steps[8].position, pointer="/steps/8"
    )
    pong = steps[9]
    assert isinstance(pong, model.Expect)
    assert pong.matcher.payload == model.AnyMatcher("any")
    close = steps[10]
    assert isinstance(close, model.Close)
    assert (close.code, close.reason, close.no_payload) == (4000, "", True)
    assert isinstance(steps[11], model.Drop)
    assert steps[11].mode == "rst"
    assert isinstance(steps[12], model.StopReading)
    first, second = scenario.rules
    assert first.save == {"id": "/id"}
    assert not first.once
    assert [type(a) for a in first.actions] == [model.Send]
    assert second.once
    assert [a.pointer for a in second.actions] == [
        "/rules/1/do/0",
        "/rules/1/do/1",
        "/rules/1/do/2",
    ]


def test_variables_replace_vars() -> None:
    doc = load_yaml_file(VALID / "client_full.yaml")
    built = build_scenario(doc, base_dir=VALID, variables={"user": "bob"})
    assert built.vars == {"user": "bob"}


HEAD = 'wscenario: 1\nclient: {url: "ws://h/"}\n'


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ("  - send: {binary: {hex: '0g'}}\n", ["/steps/0/send/binary/hex: invalid hex"]),
        (
            "  - send: {binary: {base64: 'A'}}\n",
            ["/steps/0/send/binary/base64: invalid base64"],
        ),
        (
            "  - send: {binary: {file: big.bin}}\n",
            ["/steps/0/send/binary/file: file is too large: big.bin (11 bytes, the limit is 10)"],
        ),
        (
            "  - expect: {message: {schema: {type: 1}}}\n",
            [
                (
                    "/steps/0/expect/message/schema: not a valid JSON Schema: /type: 1 is not valid under "
                    "any of the given schemas"
                )
            ],
        ),
        (
            "  - expect: {message: {schema: list.yaml}}\n",
            ["/steps/0/expect/message/schema: a JSON Schema is a mapping (or true/false)"],
        ),
        ("  - expect: {message: {schema: bad.yaml}}\n", ["invalid YAML"]),
        (
            "  - expect: {message: {schema: missing.json}}\n",
            ["/steps/0/expect/message/schema: file not found: missing.json"],
        ),
    ],
)
def test_build_errors(steps: str, expected: list[str], tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(b"x" * 11)
    (tmp_path / "list.yaml").write_text("[1]\n")
    (tmp_path / "bad.yaml").write_text("a: [\n")
    doc = parse_yaml((HEAD + "limits: {maxMessageSize: 10}\nsteps:\n" + steps).encode(), "s.yaml")
    with pytest.raises(BuildError) as caught:
        build_scenario(doc, base_dir=tmp_path)
    found = [f"{d.pointer}: {d.message}" for d in caught.value.diagnostics]
    assert len(found) == len(expected)
    for line, start in zip(found, expected, strict=True):
        assert line.startswith(start) or start in line


def test_limits_given_from_outside_replace_the_files_and_cap_its_payload_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "big.bin").write_bytes(b"x" * 11)
    text = HEAD + "limits: {maxMessageSize: 10, maxHeaders: 3.0}\nsteps:\n"
    doc = parse_yaml((text + "  - send: {binary: {file: big.bin}}\n").encode(), "s.yaml")
    with pytest.raises(BuildError):
        build_scenario(doc, base_dir=tmp_path)
    built = build_scenario(doc, base_dir=tmp_path, limits={"max_message_size": 11})
    assert built.limits.max_message_size == 11
    assert built.limits.max_headers == 3
    assert isinstance(built.limits.max_headers, int)


def test_ping_data_is_at_most_125_bytes(tmp_path: Path) -> None:
    doc = parse_yaml(
        f"wscenario: 1\nserver: {{}}\nsteps:\n  - ping: {{data: {'x' * 126}}}\n".encode(), "s.yaml"
    )
    with pytest.raises(BuildError) as caught:
        build_scenario(doc, base_dir=tmp_path)
    assert caught.value.diagnostics[0].message == "a ping carries at most 125 bytes, this one 126"
    assert str(caught.value).startswith("s.yaml:4:11: error: /steps/0/ping:")


def test_defaults(tmp_path: Path) -> None:
    shutil.copy(VALID / "client_full.yaml", tmp_path)
    doc = parse_yaml(
        b"wscenario: 1\nserver: {}\nsteps:\n  - drop: null\n  - close: null\n",
        str(tmp_path / "x.yaml"),
    )
    built = build_scenario(doc, base_dir=tmp_path)
    assert built.server == model.ServerSpec()
    assert built.limits == model.Limits()
    assert isinstance(built.steps[0], model.Drop)
    assert built.steps[0].mode == "fin"
    assert isinstance(built.steps[1], model.Close)
    assert built.steps[1].code is None
    client = build_scenario(
        parse_yaml(
            HEAD.encode() + b"steps:\n  - connect: {url: x, "
            b"options: {}}\n  - expect: {message: null}\n",
            "c.yaml",
        ),
        base_dir=tmp_path,
    )
    assert client.client == model.ClientSpec(url="ws://h/")
    assert client.steps[0] == model.Connect(
        url="x",
        options=model.ConnectOptions(),
        position=client.steps[0].position,
        pointer="/steps/0",
    )
    assert isinstance(client.steps[1], model.Expect)
    assert client.steps[1].matcher.payload is None


def test_echo_is_a_payload_of_its_own(tmp_path: Path) -> None:
    doc = parse_yaml(
        b"wscenario: 1\nserver: {}\nsteps: []\nrules:\n"
        b"  - on: messageReceive\n    send: {echo: true, fragments: 3}\n",
        "s.yaml",
    )
    built = build_scenario(doc, base_dir=tmp_path)
    send = built.rules[0].actions[0]
    assert isinstance(send, model.Send)
    assert send.payload == model.EchoPayload()
    assert send.fragments == 3


@pytest.mark.parametrize(("value", "strict"), [("true", True), ("false", False), (None, False)])
def test_strict_keeps_where_it_was_written(tmp_path: Path, value: str | None, strict: bool) -> None:
    text = HEAD + (f"strict: {value}\n" if value else "") + "steps: []\n"
    built = build_scenario(parse_yaml(text.encode(), "s.yaml"), base_dir=tmp_path)
    where = model.SourceRef("/strict", Position("s.yaml", 3, 1))
    assert built.strict == (where if strict else None)
