"""``wscenario serve`` as a user runs it: a real process, real clients, signals, exit codes."""

from __future__ import annotations

import json
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
import trustme
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wscenario.core.transcript import TranscriptEvent
from wscenario.engine.server import bound_port, open_listener
from wscenario.engine.transcript_io import open_transcript

pytestmark = pytest.mark.anyio

ECHO = """\
wscenario: 1
name: echo
server:
  path: /echo
steps:
  - expect: connect
  - expect: {messageReceive: hello}
  - send: hello back
rules:
  - "on": {messageReceive: {regex: "^echo (?P<text>.*)$"}}
    send: "{{ text }}"
"""

GREET = """\
wscenario: 1
name: greeter
vars: {token: t.1}
server:
  path: /greet
  handshake:
    require: {header: {authorization: "^Bearer {{ token }}$"}}
    reject: {status: 401, body: no token}
steps:
  - expect: connect
  - send: hi
  - expect: {messageReceive: bye}
  - close: {code: 4000, reason: done}
  - expect: close
"""

CLIENT = """\
wscenario: 1
client: {url: "ws://127.0.0.1:8765/echo"}
steps:
  - connect: {}
"""


@dataclass
class Served:
    """A running ``wscenario serve`` and the address it printed."""

    process: Process
    url: str
    lines: list[str]


def scenario(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@asynccontextmanager
async def serving(*args: str) -> AsyncIterator[Served]:
    """Start ``wscenario serve ARGS --listen 127.0.0.1:0`` and wait for its listening line."""
    command = [sys.executable, "-m", "wscenario", "serve", "--listen", "127.0.0.1:0", *args]
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        lines: list[str] = []
        buffered = ""
        with anyio.fail_after(10):
            async for chunk in TextReceiveStream(process.stdout):
                buffered += chunk
                if "\n" in buffered:
                    break
        first, _, rest = buffered.partition("\n")
        lines.extend([first, *rest.splitlines()])
        if not first.startswith("listening on "):
            assert process.stderr is not None
            with anyio.fail_after(10):
                err = b"".join([chunk async for chunk in process.stderr]).decode()
            pytest.fail(f"serve did not start: {first!r}\n{err}")
        url = first.split()[2]
        try:
            yield Served(process, url, lines)
        finally:
            if process.returncode is None:
                process.terminate()


async def finish(served: Served) -> tuple[int, str, str]:
    """Wait for the process to end; its exit code, the rest of its output, and stderr."""
    assert served.process.stdout is not None
    assert served.process.stderr is not None
    out = "\n".join(served.lines) + "\n"
    err = ""
    with anyio.fail_after(10):
        async for chunk in TextReceiveStream(served.process.stdout):
            out += chunk
        async for chunk in TextReceiveStream(served.process.stderr):
            err += chunk
        code = await served.process.wait()
    return code, out, err


def client(url: str, **kwargs: object) -> connect:
    return connect(url, compression=None, proxy=None, open_timeout=5, **kwargs)  # type: ignore[arg-type]


async def test_once_serves_one_connection_and_reports_it(tmp_path: Path) -> None:
    path = scenario(tmp_path, "echo.yaml", ECHO)
    async with serving(path, "--once") as served:
        assert served.lines[0] == f"listening on {served.url} (paths: /echo)"
        async with client(served.url + "/echo") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello back"
            await ws.send("echo and again")
            assert await ws.recv() == "and again"
        code, out, _ = await finish(served)
    assert code == 0, out
    assert "[#1] echo #1 127.0.0.1:" in out
    assert "PASSED echo #1" in out
    assert "1 passed, 0 failed" in out


async def test_a_connection_off_script_fails_the_run(tmp_path: Path) -> None:
    path = scenario(tmp_path, "echo.yaml", ECHO)
    async with serving(path, "--once") as served:
        async with client(served.url + "/echo") as ws:
            await ws.send("not hello")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        code, out, _ = await finish(served)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1011
    assert code == 1, out
    assert "FAILED echo #1" in out
    assert "received: messageReceive 'not hello'" in out


async def test_sigterm_closes_open_connections_with_1001(tmp_path: Path) -> None:
    path = scenario(tmp_path, "echo.yaml", ECHO)
    async with serving(path) as served:
        async with client(served.url + "/echo") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello back"
            served.process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        code, out, err = await finish(served)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    assert code == 0, out + err
    assert "1 passed, 0 failed" in out
    assert "Traceback" not in err


async def test_a_connection_cut_by_the_stop_mid_script_is_interrupted(tmp_path: Path) -> None:
    path = scenario(tmp_path, "echo.yaml", ECHO)
    async with serving(path) as served:
        async with client(served.url + "/echo") as ws:
            await anyio.sleep(0.2)  # the script waits for 'hello', which never comes
            served.process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        code, out, err = await finish(served)
    assert code == 1, out + err  # it did not follow its script to the end
    assert "INTERRUPTED echo #1" in out
    assert "0 passed, 0 failed, 1 interrupted" in out


FAILING_RULE = """\
wscenario: 1
name: rf
server: {path: /rf}
steps:
  - expect: connect
rules:
  - on: {messageReceive: {json: {}, match: subset}, save: {x: /missing}}
    send: "got {{ x }}"
"""


async def test_a_connection_that_failed_before_the_stop_stays_failed(tmp_path: Path) -> None:
    path = scenario(tmp_path, "rf.yaml", FAILING_RULE)
    async with serving(path) as served:
        async with client(served.url + "/rf") as ws:
            await ws.send('{"a": 1}')  # the rule's save fails; the connection stays open
            await anyio.sleep(0.2)
            served.process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        code, out, err = await finish(served)
    assert code == 1, out + err
    assert "0 passed, 1 failed in" in out
    assert "INTERRUPTED" not in out


async def test_ctrl_c_with_nothing_connected_prints_the_summary(tmp_path: Path) -> None:
    path = scenario(tmp_path, "echo.yaml", ECHO)
    async with serving(path) as served:
        served.process.send_signal(signal.SIGINT)
        code, out, err = await finish(served)
    assert code == 0, err
    assert "0 passed, 0 failed" in out


async def test_routes_by_path_refuses_by_rule_and_writes_reports(tmp_path: Path) -> None:
    echo = scenario(tmp_path, "echo.yaml", ECHO)
    greet = scenario(tmp_path, "greet.yaml", GREET)
    junit = tmp_path / "out.xml"
    report = tmp_path / "out.json"
    reports = ("--junit", str(junit), "--report", str(report))
    args = (echo, greet, "--max-connections", "4", *reports)
    async with serving(*args) as served:
        assert "(paths: /echo, /greet)" in served.lines[0]
        with pytest.raises(InvalidStatus) as refused:
            async with client(served.url + "/greet"):
                pass
        assert refused.value.response.status_code == 401
        assert refused.value.response.body == b"no token"
        near_miss = {"Authorization": "Bearer tx1"}
        with pytest.raises(InvalidStatus) as refused_again:
            async with client(served.url + "/greet", additional_headers=near_miss):
                pass
        assert refused_again.value.response.status_code == 401
        headers = {"Authorization": "Bearer t.1"}
        async with client(served.url + "/greet", additional_headers=headers) as ws:
            assert await ws.recv() == "hi"
            await ws.send("bye")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "done")
        with pytest.raises(InvalidStatus) as missing:
            async with client(served.url + "/nowhere"):
                pass
        assert missing.value.response.status_code == 404
        code, out, _ = await finish(served)
    assert code == 1, out
    assert "handshake refused with 401: missing header authorization" in out
    refusals = [line for line in out.splitlines() if "refused with 401" in line]
    assert len(refusals) == 2
    assert all(f"{greet}:7  " in line for line in refusals), refusals  # the failing check's line
    assert "handshake refused with 404" in out
    assert "does not match the pattern ^Bearer t\\.1$" in out
    assert "3 passed, 1 failed" in out
    assert 'failures="1"' in junit.read_text()
    document = json.loads(report.read_text())
    assert document["summary"] == {
        "total": 4, "passed": 3, "failed": 1, "error": 0, "interrupted": 0}  # fmt: skip


async def test_tls_listener_requires_a_client_certificate(
    tmp_path: Path, trustme_ca: trustme.CA
) -> None:
    server = trustme_ca.issue_cert("127.0.0.1")
    cert, key, ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    server.cert_chain_pems[0].write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    trustme_ca.cert_pem.write_to_path(str(ca))
    context = ssl.create_default_context()
    trustme_ca.configure_trust(context)
    trustme_ca.issue_cert("device@example").configure_cert(context)
    path = scenario(tmp_path, "echo.yaml", ECHO)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key), "--client-ca", str(ca))
    async with serving(path, "--once", *tls) as served:
        assert served.url.startswith("wss://127.0.0.1:")
        async with client(served.url + "/echo", ssl=context) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello back"
        code, out, _ = await finish(served)
    assert code == 0, out


def run_serve(*args: str) -> tuple[int, str]:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "wscenario", "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


async def test_port_in_use_exits_3(tmp_path: Path) -> None:
    path = scenario(tmp_path, "echo.yaml", ECHO)
    taken = await open_listener("127.0.0.1", 0)
    try:
        code, out = await anyio.to_thread.run_sync(
            run_serve, path, "--listen", f"127.0.0.1:{bound_port(taken)}"
        )
    finally:
        await taken.aclose()
    assert code == 3, out
    assert "address already in use" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "0.0.0.0:0"], "add --allow-remote"),
        (["--listen", "nonsense"], "HOST:PORT"),
        (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["--max-connections", "0"], "--max-connections must be 1 or more"),
        (["--var", "novalue"], "NAME=VALUE"),
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    path = scenario(tmp_path, "echo.yaml", ECHO)
    code, out = run_serve(path, *args)
    assert code == 2, out
    assert message in out


def test_a_client_scenario_is_not_served(tmp_path: Path) -> None:
    path = scenario(tmp_path, "client.yaml", CLIENT)
    code, out = run_serve(path)
    assert code == 2
    assert "wscenario run" in out


def test_an_invalid_scenario_exits_2_with_its_position(tmp_path: Path) -> None:
    path = scenario(tmp_path, "bad.yaml", ECHO.replace("path: /echo", "path: echo"))
    code, out = run_serve(path)
    assert code == 2
    assert f"{path}:4:" in out


async def test_allow_remote_listens_with_a_warning(tmp_path: Path) -> None:
    path = scenario(tmp_path, "echo.yaml", ECHO)
    command = [
        sys.executable, "-m", "wscenario", "serve", path,
        "--listen", "0.0.0.0:0", "--allow-remote",
    ]  # fmt: skip
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        with anyio.fail_after(10):
            first = await TextReceiveStream(process.stdout).receive()
        assert first.startswith("listening on ws://0.0.0.0:")
        process.send_signal(signal.SIGTERM)
        served = Served(process, "", [first.rstrip("\n")])
        code, _, err = await finish(served)
    assert code == 0
    assert "warning: 0.0.0.0 lets other machines connect" in err


STOP_READING = """\
wscenario: 1
name: deaf
server:
  path: /deaf
steps:
  - expect: connect
  - stopReading: {}
  - send: not listening any more
"""


async def test_a_script_that_stops_reading_ends_its_connection(tmp_path: Path) -> None:
    path = scenario(tmp_path, "deaf.yaml", STOP_READING)
    async with serving(path, "--once") as served:
        async with client(served.url + "/deaf") as ws:
            assert await ws.recv() == "not listening any more"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        code, out, _ = await finish(served)
    assert closed.value.rcvd is None
    assert code == 0, out
    assert "PASSED deaf #1" in out


COMPRESSING = """\
wscenario: 1
name: compressing echo
server: {path: /z, permessageDeflate: true}
steps:
  - expect: connect
  - expect: {messageReceive: {regex: "^(tick )+$"}}
  - send: {text: "{{ reply }}", fragments: 3}
  - expect: close
vars: {reply: "tock tock tock tock tock tock tock tock"}
"""


async def test_a_scenario_that_asks_for_compression_gets_it_and_records_plain_text(
    tmp_path: Path,
) -> None:
    path = scenario(tmp_path, "z.yaml", COMPRESSING)
    out = tmp_path / "rec"
    async with serving(path, "--once", "--record", str(out)) as served:
        url = served.url + "/z"
        async with connect(url, compression="deflate", proxy=None, open_timeout=5) as ws:
            assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
            await ws.send("tick " * 500)
            assert await ws.recv() == "tock tock tock tock tock tock tock tock"
        code, printed, _ = await finish(served)
    assert code == 0, printed
    (recorded,) = sorted(out.glob("*.jsonl"))
    texts = [
        (e.from_, e.fields["data"])
        for e in open_transcript(recorded)
        if isinstance(e, TranscriptEvent) and e.type == "text"
    ]
    assert texts == [
        ("client", "tick " * 500),
        ("server", "tock tock tock tock tock tock tock tock"),
    ]
