"""Interop with Node's ``ws`` package, an independent implementation on both sides.

``wscenario serve`` plays scripted servers to the ``ws`` client (``tests/node/client.js``), and
``wscenario run`` (both profiles) talks to the ``ws`` echo server (``tests/node/server.js``):
text, binary, a 100 KiB message, fragments both ways, close codes both ways, a refused
handshake, subprotocols and TLS with a client certificate. The ``ws`` version is pinned in
``tests/node/package.json`` and installed once per run; without Node and npm (or when the
install fails) these tests are skipped with the reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme

from wscenario.cli import build_parser, main
from wscenario.commands.serve import plan_from, serve_plan
from wscenario.report.console import Style
from wscenario.report.results import ScenarioResult

NODE_DIR = Path(__file__).resolve().parent / "node"
BIG = bytes(range(256)) * 400
"""A 100 KiB binary message (102400 bytes)."""

NODE_TIMEOUT = 15.0
"""Seconds a Node peer may take for a whole test before it is killed."""

Event = dict[str, Any]


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` executable, with ``ws`` installed in ``tests/node``; skips without them."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("the Node.js interop tests need node and npm on PATH")
    try:
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"npm install in {NODE_DIR} could not run: {exc}")
    if done.returncode != 0:
        pytest.skip(f"npm install in {NODE_DIR} failed: {done.stderr.strip()[-400:]}")
    return node


def events(output: str) -> list[Event]:
    """The JSON lines a Node peer printed."""
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------- our fake server, the ws client


async def serve_to_node(
    node: str,
    scenario_dir: Path,
    plans: Sequence[Event],
    *options: str,
    connections: int | None = None,
) -> tuple[list[ScenarioResult], list[list[Event]], str]:
    """Serve the scenarios in ``scenario_dir`` to one ws client per plan, one after another.

    Each plan's ``path`` is appended to the server's address to make its ``url``. The server
    stops after ``connections`` (default: one per plan) have run a scenario. Returns the
    served connections' results, each client's observed events and the server's output.
    """
    served_count = str(len(plans) if connections is None else connections)
    arguments = ["serve", str(scenario_dir), "--listen", "127.0.0.1:0", *options]
    plan = plan_from(build_parser().parse_args([*arguments, "--max-connections", served_count]))
    out = io.StringIO()
    served: list[ScenarioResult] = []
    observed: list[list[Event]] = []

    async def serve(*, task_status: anyio.abc.TaskStatus[list[str]]) -> None:
        results, _ = await serve_plan(plan, out, Style(), task_status=task_status)
        served.extend(results)

    with anyio.fail_after(NODE_TIMEOUT):
        async with anyio.create_task_group() as tasks:
            (address,) = await tasks.start(serve)
            for client_plan in plans:
                url = address + client_plan["path"]
                given = json.dumps({**client_plan, "url": url}).encode()
                done = await anyio.run_process(
                    [node, str(NODE_DIR / "client.js")], input=given, check=False
                )
                assert done.returncode == 0, done.stderr.decode()
                observed.append(events(done.stdout.decode()))
    return served, observed, out.getvalue()


ECHO_SERVER = """\
wscenario: 1
name: exchange with ws
timeout: 5s
server:
  path: /chat
  handshake: {protocol: chat.v2}
steps:
  - expect: {connect: {path: /chat}}
  - expect: {messageReceive: hello}
  - send: hello back
  - expect: {messageReceive: {binary: {hex: "00ff10"}}}
  - send: {binary: {hex: ff00}}
  - expect: {messageReceive: {binary: {file: big.bin}}}
  - send: {binary: {file: big.bin}}
  - expect: {messageReceive: sent in three frames}
  - send: {text: received in four frames, fragments: 4}
  - close: {code: 4001, reason: server done}
  - expect: {close: {code: 4001}}
"""


@pytest.mark.anyio
async def test_ws_client_exchanges_every_kind_of_message_with_a_fake_server(
    node: str, tmp_path: Path
) -> None:
    write(tmp_path / "chat.server.yaml", ECHO_SERVER)
    (tmp_path / "big.bin").write_bytes(BIG)
    plan = {
        "path": "/chat",
        "protocols": ["chat.v1", "chat.v2"],
        "steps": [
            {"send": {"text": "hello"}},
            {"wait": 1},
            {"send": {"hex": "00ff10"}, "binary": True},
            {"wait": 2},
            {"send": {"hex": BIG.hex()}, "binary": True},
            {"wait": 3},
            {"fragments": [{"text": "sent in "}, {"text": "three "}, {"text": "frames"}]},
            {"wait": 4},
        ],
    }
    served, (seen,), output = await serve_to_node(node, tmp_path, [plan])
    assert [r.outcome for r in served] == ["passed"], output
    assert seen[0] == {"event": "open", "protocol": "chat.v2"}
    messages = [event for event in seen if event["event"] == "message"]
    assert [(m["binary"], m.get("text"), m.get("hex")) for m in messages] == [
        (False, "hello back", None),
        (True, None, "ff00"),
        (True, None, None),
        (False, "received in four frames", None),
    ]
    assert messages[2]["length"] == len(BIG)
    assert messages[2]["sha256"] == hashlib.sha256(BIG).hexdigest()
    assert seen[-1] == {"event": "close", "code": 4001, "reason": "server done"}


CLOSED_BY_CLIENT = """\
wscenario: 1
name: the client closes
timeout: 5s
server:
  path: /bye
steps:
  - expect: {connect: {path: /bye}}
  - expect: {close: {code: 4002, reason: client done}}
"""


@pytest.mark.anyio
async def test_a_close_code_from_the_ws_client_reaches_the_fake_server_and_is_answered(
    node: str, tmp_path: Path
) -> None:
    write(tmp_path / "bye.server.yaml", CLOSED_BY_CLIENT)
    plan = {"path": "/bye", "steps": [{"close": {"code": 4002, "reason": "client done"}}]}
    served, (seen,), output = await serve_to_node(node, tmp_path, [plan])
    assert [r.outcome for r in served] == ["passed"], output
    assert seen == [
        {"event": "open", "protocol": ""},
        {"event": "close", "code": 4002, "reason": "client done"},
    ]


GUARDED = """\
wscenario: 1
name: token required
server:
  path: /guarded
  handshake:
    require: {header: {authorization: "^Bearer s3cret$"}}
    reject: {status: 401, body: no token, headers: {www-authenticate: Bearer}}
steps:
  - expect: {connect: {path: /guarded}}
  - close: {code: 1000, reason: welcome}
  - expect: close
"""


@pytest.mark.anyio
async def test_the_ws_client_sees_the_fake_servers_refusal_and_passes_with_the_token(
    node: str, tmp_path: Path
) -> None:
    write(tmp_path / "guarded.server.yaml", GUARDED)
    without = {"path": "/guarded"}
    with_token = {"path": "/guarded", "headers": {"authorization": "Bearer s3cret"}}
    served, (refused, welcomed), output = await serve_to_node(node, tmp_path, [without, with_token])
    assert [r.outcome for r in served] == ["passed", "passed"], output
    assert refused == [{"event": "refused", "status": 401, "body": "no token"}]
    assert welcomed == [
        {"event": "open", "protocol": ""},
        {"event": "close", "code": 1000, "reason": "welcome"},
    ]


TLS_SERVER = """\
wscenario: 1
name: mutual TLS
timeout: 5s
server:
  path: /secure
steps:
  - expect: {connect: {path: /secure}}
  - expect: {messageReceive: over tls}
  - send: tls answer
  - close: {code: 1000, reason: ""}
  - expect: close
"""


@pytest.mark.anyio
async def test_the_ws_client_with_a_client_certificate_talks_wss_to_the_fake_server(
    node: str, tmp_path: Path, trustme_ca: trustme.CA
) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    write(scenarios / "secure.server.yaml", TLS_SERVER)
    server_cert = trustme_ca.issue_cert("127.0.0.1")
    client_cert = trustme_ca.issue_cert("client.example")
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key", "ccert", "ckey")}
    trustme_ca.cert_pem.write_to_path(str(files["ca"]))
    server_cert.cert_chain_pems[0].write_to_path(str(files["cert"]))
    server_cert.private_key_pem.write_to_path(str(files["key"]))
    client_cert.cert_chain_pems[0].write_to_path(str(files["ccert"]))
    client_cert.private_key_pem.write_to_path(str(files["ckey"]))
    trusted = {"path": "/secure", "ca": str(files["ca"])}
    anonymous = {**trusted, "steps": []}
    with_cert = {
        **trusted,
        "cert": str(files["ccert"]),
        "key": str(files["ckey"]),
        "steps": [{"send": {"text": "over tls"}}, {"wait": 1}],
    }
    tls = ["--tls-cert", str(files["cert"]), "--tls-key", str(files["key"])]
    tls += ["--client-ca", str(files["ca"])]
    served, (refused, accepted), output = await serve_to_node(
        node, scenarios, [anonymous, with_cert], *tls, connections=1
    )
    assert [r.outcome for r in served] == ["passed"], output
    assert [event["event"] for event in refused] == ["error", "close"]  # no certificate
    assert refused[-1]["code"] == 1006
    assert accepted == [
        {"event": "open", "protocol": ""},
        {
            "event": "message",
            "binary": False,
            "length": 10,
            "sha256": hashlib.sha256(b"tls answer").hexdigest(),
            "text": "tls answer",
        },
        {"event": "close", "code": 1000, "reason": ""},
    ]


# ------------------------------------------------------- the ws server, our client


@pytest.fixture
def ws_server(node: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """A running ws echo server for two connections that selects ``chat.v2``: port, process."""
    plan = json.dumps({"protocol": "chat.v2", "connections": 2})
    process = subprocess.Popen(
        [node, str(NODE_DIR / "server.js"), plan],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())
        assert first["event"] == "listening", first
        yield first["port"], process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


ECHO_CLIENT = """\
wscenario: 1
name: echo through ws ({profile})
timeout: 5s
client:
  url: ws://127.0.0.1:{port}/echo
  profile: {profile}
  options: {{protocol: chat.v2}}
steps:
  - connect: {{}}
  - expect: {{open: {{status: 101}}}}
  - send: hello
  - expect: {{message: hello}}
  - send: {{binary: {{hex: "00ff10"}}}}
  - expect: {{message: {{binary: {{hex: "00ff10"}}}}}}
  - send: {{binary: {{file: big.bin}}}}
  - expect: {{message: {{binary: {{file: big.bin}}}}}}
  - send: {{json: {{do: fragments, parts: [{{text: "one "}}, {{text: "two "}}, {{text: three}}]}}}}
  - expect: {{message: one two three}}
  - send: {{json: {{do: fragments, binary: true, parts: [{{hex: "01"}}, {{hex: "0203"}}]}}}}
  - expect: {{message: {{binary: {{hex: "010203"}}}}}}
  - send: {{json: {{do: close, code: 4001, reason: bye}}}}
  - expect: {{close: {{code: 4001, reason: bye}}}}
"""

CLOSING_CLIENT = """\
wscenario: 1
name: close through ws ({profile})
timeout: 5s
client:
  url: ws://127.0.0.1:{port}/bye
  profile: {profile}
steps:
  - connect: {{}}
  - expect: open
  - close: {{code: 4002, reason: client done}}
  - expect: {{close: {{code: {closed}, reason: client done}}}}
"""


@pytest.mark.parametrize(
    ("profile", "closed"),
    [("raw", 4002), ("ohos", 1000)],  # a device clamps close() codes outside 1000..1015 to 1000
)
def test_wscenario_run_talks_to_a_ws_server(
    profile: str,
    closed: int,
    ws_server: tuple[int, subprocess.Popen[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port, process = ws_server
    (tmp_path / "big.bin").write_bytes(BIG)
    write(tmp_path / "a-echo.client.yaml", ECHO_CLIENT.format(profile=profile, port=port))
    closing = CLOSING_CLIENT.format(profile=profile, port=port, closed=closed)
    write(tmp_path / "b-close.client.yaml", closing)
    code = main(["run", str(tmp_path), "--no-color"])
    output = capsys.readouterr().out
    assert code == 0, output
    stdout, stderr = process.communicate(timeout=NODE_TIMEOUT)
    assert process.returncode == 0, stderr
    seen = events(stdout)
    connections = [event for event in seen if event["event"] == "connection"]
    assert connections == [
        {"event": "connection", "path": "/echo", "protocol": "chat.v2"},
        {"event": "connection", "path": "/bye", "protocol": ""},
    ]
    big = [event for event in seen if event.get("length") == len(BIG)]
    assert [event["sha256"] for event in big] == [hashlib.sha256(BIG).hexdigest()]
    texts = [event.get("text") for event in seen if event["event"] == "message"]
    assert texts[0] == "hello"
    closes = [(event["code"], event["reason"]) for event in seen if event["event"] == "close"]
    assert closes == [(4001, "bye"), (closed, "client done")]


def test_the_node_peers_use_the_pinned_ws_version(node: str) -> None:
    pinned = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["ws"]
    installed = json.loads((NODE_DIR / "node_modules" / "ws" / "package.json").read_text())
    assert installed["version"] == pinned
