"""Semantic checks after the schema: one table of (scenario, exact diagnostics)."""

# ruff: noqa: E501 - expected messages are kept whole, as the command prints them

from __future__ import annotations

from pathlib import Path

import pytest

from wscenario.core.checks import check_data
from wscenario.core.schema import validate_data
from wscenario.core.source import parse_yaml

CLIENT = 'wscenario: 1\nclient: {url: "ws://127.0.0.1:1/"}\n'
RAW = 'wscenario: 1\nclient: {url: "ws://127.0.0.1:1/", profile: raw}\n'
SERVER = "wscenario: 1\nserver: {}\n"
FIRST_NOT_CONNECT = (
    "a connection's first event is 'connect', which this step does not expect | every "
    "connection starts with a connect event: add '- expect: connect' before this step"
)


def problems(text: str, base_dir: Path) -> list[str]:
    doc = parse_yaml(text.encode(), "s.yaml")
    assert validate_data(doc) == [], "the case must pass the schema"
    return [
        f"{d.severity} {d.pointer}: {d.message}" + (f" | {d.hint}" if d.hint else "")
        for d in check_data(doc, base_dir=base_dir)
    ]


CASES = [
    (
        (
            'wscenario: 1\nclient: {url: "http://u:p@h/"}\ntimeout: 1s\nsteps:\n  - connect: {}\n'
            "  - expect: open\n    result: {error: {code: 1}}\n"
            "  - expect: {message: {json: {$regx: 1}}}\n"
        ),
        [
            (
                "error /client/url: url must start with ws:// or wss://, not 'http://u:p@h/' | "
                "write ws://host:port/path or wss://host:port/path"
            ),
            (
                "error /steps/1/result: 'expect' is not a call | only calls (connect, send, close) "
                "have a result"
            ),
            (
                "error /steps/2/expect/message/json/$regx: unknown wildcard '$regx' | "
                "did you mean '$regex'?"
            ),
        ],
    ),
    (
        'wscenario: 1\nclient: {url: "wss://u:p@h/"}\nsteps: []\n',
        [
            (
                "error /client/url: url must not hold user:password@ | send credentials in a "
                "header: options: {header: {authorization: ...}}"
            )
        ],
    ),
    (SERVER + "steps:\n  - ping: {}\n  - ping: null\n", []),
    # a raw client may ping, drop and write raw frames; an ohos app may not
    (
        RAW + "steps:\n  - ping: {data: x}\n  - frames: [{opcode: 1}]\n  - drop: {mode: rst}\n",
        [],
    ),
    (
        CLIENT + "steps:\n  - ping: {}\n  - drop: null\n  - frames: [{opcode: 1}]\n",
        [
            (
                "error /steps/0/ping: an ohos app cannot send a ping | "
                "the device pings on its own (pingInterval); 'profile: raw' can ping"
            ),
            (
                "error /steps/1/drop: an ohos app cannot drop TCP | "
                "the device always closes properly; 'profile: raw' can drop"
            ),
            "error /steps/2/frames: an ohos app cannot write raw frames | 'profile: raw' can write raw frames",
        ],
    ),
    # sides
    (
        "wscenario: 1\nsteps: []\n",
        [
            (
                "error : missing 'client' or 'server' | "
                "a scenario plays one side: client (connects to a server) or server (a fake server)"
            )
        ],
    ),
    (
        CLIENT + "server: {}\nsteps: []\n",
        [
            (
                "error /server: 'client' and 'server' cannot both be "
                "given | a scenario plays one side: client (connects to a server) or server (a fake server)"
            )
        ],
    ),
    (
        CLIENT + "steps: []\nrules: []\n",
        [
            (
                "error /rules: rules are for a fake server only | "
                "remove 'rules', or make this a server scenario"
            )
        ],
    ),
    # urls
    ('wscenario: 1\nclient: {url: "wss://h:443/x"}\nsteps: []\n', []),
    ('wscenario: 1\nclient: {url: "ws://{{ host }}/"}\nvars: {host: h}\nsteps: []\n', []),
    (
        'wscenario: 1\nclient: {url: "ws:///x"}\nsteps: []\n',
        ["error /client/url: url has no host | write ws://host:port/path or wss://host:port/path"],
    ),
    (
        'wscenario: 1\nclient: {url: "ws://h:99999/"}\nsteps: []\n',
        [
            (
                "error /client/url: invalid url: port out of range 0-65535 | "
                "write ws://host:port/path or wss://host:port/path"
            )
        ],
    ),
    # headers and files
    (
        CLIENT.replace("}", ", options: {header: {'a b': x}, caPath: /etc/ca}}") + "steps: []\n",
        [
            (
                "error /client/options/header/a b: invalid header name 'a b' | "
                "header names are letters, digits and !#$%&'*+-.^_`|~"
            ),
            (
                "error /client/options/caPath: file reference must be a relative path: /etc/ca | "
                "write the path relative to the folder that holds the scenario"
            ),
        ],
    ),
    (
        CLIENT + "steps:\n  - connect: {url: 'http://x', options: {clientCert: "
        "{certPath: ../c, keyPath: k}}}\n",
        [
            (
                "error /steps/0/connect/options/clientCert/certPath: file reference leaves the "
                "scenario's folder: ../c | copy the file into the scenario's folder (or a subfolder) "
                "and refer to it there"
            )
        ],
    ),
    # durations
    (
        CLIENT + "timeout: 0\nlimits: {closeTimeout: 0s}\nsteps:\n  - expect: {open: null, "
        "timeout: 0ms}\n  - expect: {nothing: 0}\n",
        [
            "error /timeout: must be longer than 0",
            "error /limits/closeTimeout: must be longer than 0",
            "error /steps/0/expect/timeout: must be longer than 0",
            "error /steps/1/expect/nothing: must be longer than 0",
        ],
    ),
    (
        CLIENT + "steps:\n  - expect: {nothing: 1s, save: {a: ''}}\n",
        ["error /steps/0/expect/save: 'save' does not go with 'nothing'"],
    ),
    # kinds
    (
        CLIENT + "steps:\n  - result: {error: {code: 1}}\n",
        ["error /steps/0: a step needs one of: connect, send, close, expect, unordered, sleep"],
    ),
    (
        CLIENT + "steps:\n  - send: {}\n",
        ["error /steps/0/send: a message needs one of: text, binary, json"],
    ),
    (
        CLIENT + "steps:\n  - send: {binary: {hex: '00', file: x}}\n",
        [
            (
                "error /steps/0/send/binary/file: bytes takes only one of 'hex' and 'file' | "
                "one of: hex, base64, file"
            )
        ],
    ),
    (
        CLIENT + "steps:\n  - expect: {save: {a: ''}}\n",
        [
            (
                "error /steps/0/expect: an event needs one of: open, message, close, error, dataEnd, "
                "headerReceive, nothing"
            )
        ],
    ),
    (
        CLIENT + "steps:\n  - expect: {ping: null}\n",
        [
            (
                "error /steps/0/expect/ping: 'ping' is not an event of the ohos profile | events of "
                "the ohos profile: open, message, close, error, dataEnd, headerReceive"
            )
        ],
    ),
    (
        RAW + "steps:\n  - expect: dataEnd\n  - expect: {pong: {any: true}}\n",
        [
            (
                "error /steps/0/expect: 'dataEnd' is not an event of the raw profile | events of "
                "the raw profile: open, message, close, error, ping, pong"
            )
        ],
    ),
    # matchers and wildcards
    (
        CLIENT + "steps:\n  - expect: {message: {}}\n",
        [
            (
                "error /steps/0/expect/message: a message matcher needs one of: text, regex, json, "
                "schema, binary, any"
            )
        ],
    ),
    (
        CLIENT + "steps:\n  - expect: {message: {schema: missing.json}}\n",
        [
            (
                "error /steps/0/expect/message/schema: file not found: missing.json | "
                "check the name and the folder"
            )
        ],
    ),
    (
        CLIENT + "steps:\n  - expect: {message: {schema: {type: object}}}\n"
        "  - expect: {message: {binary: {base64: AA==}}}\n  - expect: {message: null}\n",
        [],
    ),
    (
        CLIENT + "steps:\n  - expect: {close: {code: 1000, reason: {$regex: '(x'}}}\n",
        [
            (
                "error /steps/0/expect/close/reason/$regex: invalid regex: missing ), unterminated "
                "subpattern at position 0"
            )
        ],
    ),
    (
        CLIENT + "steps:\n  - expect: {message: {json: [{$regex: 1}, {$any: true}, {$any: 1}, "
        "{$ref: x}, {a: 1, $any: 2}]}}\n",
        [
            (
                "error /steps/0/expect/message/json/0/$regex: $regex needs a string (a regular "
                "expression)"
            ),
            (
                "error /steps/0/expect/message/json/2/$any: unknown $any type 1 | allowed: true, "
                "string, integer, number, boolean, object, array, null"
            ),
        ],
    ),
    # templates
    (
        CLIENT + "vars: {a: 1}\nsteps:\n  - send: '{{ b }}'\n  - send: '{{ a'\n"
        "  - send: '{{ env.HOME }}'\n",
        [
            (
                "error /steps/0/send: undefined variable 'b' | declare it in vars, or save it in an "
                "earlier step"
            ),
            "error /steps/1/send: unclosed '{{' at offset 0 | write {{ name }} or {{ env.NAME }}",
        ],
    ),
    (
        CLIENT + "steps:\n  - expect: {message: {regex: '(?P<n>x)'}, save: {s: ''}}\n"
        "  - unordered:\n      - expect: {message: '{{ n }}', save: {u: /u}}\n"
        "      - expect: {message: '{{ u }}'}\n  - send: '{{ s }}{{ u }}'\n"
        "  - expect: {message: {regex: '(a+)+'}}\n  - close: {reason: '{{ s }}'}\n",
        [
            (
                "error /steps/1/unordered/1/expect/message: undefined variable 'u' | "
                "declare it in vars, or save it in an earlier step"
            ),
            (
                "error /steps/3/expect/message/regex: regex can backtrack catastrophically: a repeated "
                "part can be split in many ways, as in (a+)+ | use a possessive quantifier (a++) or an "
                "atomic group (?>...)"
            ),
        ],
    ),
    # server
    (
        SERVER.replace(
            "{}",
            "{listen: '[::1]:0', handshake: {require: {header: {'x y': '(a+)+'}}, "
            'reject: {headers: {a: "b\\0"}}}}',
        )
        + "steps: []\n",
        [
            (
                "error /server/handshake/require/header/x y: invalid header name 'x y' | header names "
                "are letters, digits and !#$%&'*+-.^_`|~"
            ),
            (
                "error /server/handshake/require/header/x y: regex can backtrack catastrophically: a "
                "repeated part can be split in many ways, as in (a+)+ | use a possessive quantifier "
                "(a++) or an atomic group (?>...)"
            ),
            (
                "error /server/handshake/reject/headers/a: header value holds a line break or NUL | "
                "header values cannot hold CR, LF or NUL characters"
            ),
        ],
    ),
    (SERVER.replace("{}", "{listen: 'localhost:80'}") + "steps: []\n", []),
    (
        SERVER.replace("{}", "{listen: 'example.com:80'}") + "steps: []\n",
        [
            (
                "warning /server/listen: listening on example.com lets other machines connect to the "
                "fake server | listen on 127.0.0.1 unless other machines must connect"
            )
        ],
    ),
    (
        SERVER.replace("{}", "{listen: '8765'}") + "steps: []\n",
        [
            (
                "error /server/listen: invalid listen address '8765' | write host:port, e.g. "
                "127.0.0.1:8765 or [::1]:0 (port 0 picks a free one)"
            )
        ],
    ),
    (
        SERVER + "steps:\n  - ping: {data: a, hex: '00'}\n  - frames: [{opcode: 1, data: a, "
        "base64: YQ==}]\n  - expect: {connect: {path: /}}\n  - drop: {}\n  - stopReading: {}\n"
        "  - sleep: 1s\n",
        [
            (
                "error /steps/0/ping/hex: a ping takes only one of 'data' and 'hex' | one of: data, "
                "hex, base64"
            ),
            (
                "error /steps/1/frames/0/base64: a frame takes only one of 'data' and 'base64' | one "
                "of: data, hex, base64"
            ),
        ],
    ),
    (
        SERVER + "steps: []\nrules:\n  - 'on': {messageReceive: {regex: '(?P<g>x)'}, save: "
        "{i: /i}}\n    send: '{{ i }}{{ g }}{{ k }}'\n  - 'on': close\n    do:\n"
        "      - {close: {reason: '{{ i }}'}}\n      - {close: {}, drop: {}}\n  - 'on': {close: null}\n"
        "  - 'on': error\n    do: [{drop: {}}]\n    drop: {}\n",
        [
            (
                "error /rules/0/send: undefined variable 'k' | declare it in vars, or save it in an "
                "earlier step"
            ),
            (
                "error /rules/1/do/0/close/reason: undefined variable 'i' | declare it in vars, or "
                "save it in an earlier step"
            ),
            (
                "error /rules/1/do/1/drop: an action takes only one of 'close' and 'drop' | one of: "
                "send, close, sleep, ping, drop, frames"
            ),
            (
                "error /rules/2: a rule's action needs one of: send, close, sleep, ping, drop, frames, "
                "do"
            ),
            (
                "error /rules/3/drop: a rule's action takes only one of 'do' and 'drop' | one of: send, "
                "close, sleep, ping, drop, frames, do"
            ),
        ],
    ),
    (
        SERVER + "ignore: [{message: null}, dataEnd]\nsteps: []\n",
        [
            (
                "error /ignore/0/message: 'message' is not an event of a fake server | events of a "
                "fake server: connect, messageReceive, close, error, ping, pong"
            ),
            (
                "error /ignore/1: 'dataEnd' is not an event of a fake server | events of a fake "
                "server: connect, messageReceive, close, error, ping, pong"
            ),
        ],
    ),
    (
        (
            'wscenario: 1\nclient: {url: "ws://127.0.0.1:1/", profile: raw, frames: true}\n'
            "steps:\n  - expect: {frame: {opcode: 1, fin: false}}\n  - expect: message\n"
        ),
        [
            (
                "error /steps/1/expect: 'message' is not an event of the raw profile with 'frames: "
                "true' | events of the raw profile with 'frames: true': open, frame, close, error, "
                "ping, pong"
            ),
        ],
    ),
    (
        CLIENT.replace("}", ", frames: true}") + "steps:\n  - expect: {frame: {fin: true}}\n",
        [
            (
                "error /client/frames: an ohos app sees whole messages | add 'profile: raw' to see "
                "each frame as it came, or leave 'frames' out"
            ),
            (
                "error /steps/0/expect/frame: 'frame' is not an event of the ohos profile | events "
                "of the ohos profile: open, message, close, error, dataEnd, headerReceive"
            ),
        ],
    ),
    (RAW.replace("raw}", "raw, frames: false}") + "steps:\n  - expect: message\n", []),
    # each connection of a fake server starts with connect: the first wait must take it
    (
        SERVER + "steps:\n  - send: hi\n  - sleep: 1s\n  - expect: {nothing: 1s}\n",
        [f"error /steps/2/expect: {FIRST_NOT_CONNECT}"],
    ),
    (
        SERVER + "steps:\n  - unordered: [{expect: messageReceive}, {expect: close}]\n",
        [f"error /steps/0/unordered: {FIRST_NOT_CONNECT}"],
    ),
    (SERVER + "steps:\n  - unordered: [{expect: messageReceive}, {expect: connect}]\n", []),
    (SERVER + "steps:\n  - expect: {connect: {path: /chat}, timeout: 1s}\n", []),
    (SERVER + "ignore: [{connect: {path: /}}]\nsteps:\n  - expect: messageReceive\n", []),
    (
        SERVER + "steps:\n  - expect: {nothing: 1s}\nrules:\n  - 'on': ping\n    ping: {}\n"
        "  - 'on': connect\n    send: welcome\n",
        [],
    ),
    (
        SERVER + "steps:\n  - expect: {messageReceive: hi, close: null}\n",
        [
            (
                "error /steps/0/expect/close: an event takes only one of 'messageReceive' and "
                "'close' | one of: connect, messageReceive, close, error, ping, pong, nothing"
            )
        ],
    ),
]


def test_echo_only_answers_a_message_that_fired_a_rule(tmp_path: Path) -> None:
    text = SERVER + (
        "steps:\n  - expect: connect\n  - expect: messageReceive\n  - send: {echo: true}\nrules:\n"
        "  - 'on': {messageReceive: {any: binary}}\n    send: {echo: true, fragments: 2}\n"
        "  - 'on': messageReceive\n    do: [{send: {echo: true}}]\n"
        "  - 'on': ping\n    do: [{sleep: 1s}, {send: {echo: true}}]\n"
        "  - 'on': {close: {code: 1000}}\n    send: {echo: true}\n"
        "  - 'on': {ping: null, pong: null}\n    send: {echo: true}\n"
    )
    assert problems(text, tmp_path) == [
        "error /steps/2/send/echo: 'echo' sends back the message that fired a rule; a step has none | answer messages with a rule: on: messageReceive, send: {echo: true}",
        "error /rules/2/do/1/send/echo: 'echo' sends back a received message; this rule is on 'ping', not a message | use it in a rule on messageReceive, or send a message of its own",
        "error /rules/3/send/echo: 'echo' sends back a received message; this rule is on 'close', not a message | use it in a rule on messageReceive, or send a message of its own",
        "error /rules/4/on/pong: an event takes only one of 'ping' and 'pong' | one of: connect, messageReceive, close, error, ping, pong",
    ]


def test_templates_deep_in_a_value_are_reported_in_order_where_they_are(tmp_path: Path) -> None:
    text = CLIENT + (
        "vars: {v: 1}\nsteps:\n  - send: {json: {a/b: ['{{ v }}', ['{{ x }}', {m~n: '{{ y'}]],"
        " c: '{{ z }}', d: [], e: {}, f: 1}}\n"
    )
    assert problems(text, tmp_path) == [
        "error /steps/0/send/json/a~1b/1/0: undefined variable 'x' | declare it in vars, or save it in an earlier step",
        "error /steps/0/send/json/a~1b/1/1/m~0n: unclosed '{{' at offset 0 | write {{ name }} or {{ env.NAME }}",
        "error /steps/0/send/json/c: undefined variable 'z' | declare it in vars, or save it in an earlier step",
    ]


def test_a_default_reads_the_environment_and_takes_any_other_template_as_written(
    tmp_path: Path,
) -> None:
    text = CLIENT + (
        "vars: {a: 1, b: '{{ a }}', c: {d: ['Bearer {{ env.Y }}', '{{ e', 'x{{ c }}{{ a']},"
        " f: ' {{ env.X }} '}\nsteps:\n  - send: '{{ b }}'\n"
    )
    part = (
        "' here is taken as written, not read | a default reads the environment only when it"
        ' is exactly {{ env.NAME }}: put the rest where the variable is used ("Bearer {{ token }}")'
    )
    assert problems(text, tmp_path) == [
        "warning /vars/b: a default cannot use variable 'a'; it is taken as written | vars cannot refer to other variables; write the value, or read the environment with {{ env.NAME }}",
        "warning /vars/c/d/0: '{{ env.Y }}" + part,
        "warning /vars/c/d/2: a default cannot use variable 'c'; it is taken as written | vars cannot refer to other variables; write the value, or read the environment with {{ env.NAME }}",
        "warning /vars/f: '{{ env.X }}" + part,
    ]
    assert problems(CLIENT + "vars: {t: '{{ env.T }}'}\nsteps: []\n", tmp_path) == []


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_checks(text: str, expected: list[str], tmp_path: Path) -> None:
    assert problems(text, tmp_path) == expected


def test_existing_files_pass(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text("{}")
    (tmp_path / "b.bin").write_bytes(b"x")
    text = CLIENT + (
        "steps:\n  - expect: {message: {schema: s.json}}\n  - send: {binary: {file: b.bin}}\n"
    )
    assert problems(text, tmp_path) == []
