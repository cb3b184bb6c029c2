"""The fake server against a real client (the ``websockets`` library) over loopback.

Each test starts a ``FakeServer`` on port 0 with hand-written sessions that drive the
``ServerDriver`` directly, so the listener, routing, containment and the driver's calls and
events are checked without the step runner.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme
from anyio.abc import ByteStream, Listener, SocketAttribute, SocketListener
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from wscenario.core.diagnostics import Position
from wscenario.core.events import Event
from wscenario.core.model import (
    ConnectOptions,
    EchoPayload,
    EventMatcher,
    Handshake,
    Limits,
    RawFrame,
    Reject,
    Rule,
    Scenario,
    Send,
    ServerSpec,
)
from wscenario.engine import event_queue, server_driver
from wscenario.engine.frames import encode_frame
from wscenario.engine.server import (
    FakeServer,
    Route,
    bound_port,
    is_loopback,
    listener_limits,
    open_listener,
    parse_listen,
)
from wscenario.engine.server_driver import Peer, ServerDriver, new_event
from wscenario.engine.steps import StepRunner
from wscenario.engine.tls import server_context
from wscenario.errors import CannotRun, UsageError
from wscenario.report.results import StepResult

pytestmark = pytest.mark.anyio

Session = Callable[[ServerDriver], Awaitable[None]]
WAIT = 2.0


async def next_event(driver: ServerDriver, name: str | None = None) -> Event:
    """The driver's next event (of that name, when given), failing the test if none comes."""
    event = await driver.next_event(WAIT)
    assert event is not None, "an event arrived"
    if name is not None:
        assert event.name == name, event
    return event


async def echo(driver: ServerDriver) -> None:
    """Echo every message until the client closes."""
    await next_event(driver, "connect")
    while (event := await driver.next_event(WAIT)) is not None and event.name == "messageReceive":
        assert isinstance(event.value, str | bytes)
        await driver.send(event.value)


@asynccontextmanager
async def running(
    routes: dict[str, Session] | None = None,
    *,
    specs: dict[str, ServerSpec] | None = None,
    limits: Limits | None = None,
    route_limits: dict[str, Limits] | None = None,
    tls: ssl.SSLContext | None = None,
    listener: Listener[ByteStream] | None = None,
) -> AsyncIterator[tuple[FakeServer, int]]:
    """A fake server on 127.0.0.1:0 serving ``routes``; yields it and its port."""
    routes = routes if routes is not None else {"/": echo}
    specs = specs or {}
    route_limits = route_limits or {}
    table = {
        path: Route(specs.get(path, ServerSpec(path=path)), session, route_limits.get(path))
        for path, session in routes.items()
    }
    server = FakeServer(table, limits=limits or Limits(handshake_timeout=1.0), tls=tls)
    listener = listener or await open_listener("127.0.0.1", 0)
    port = bound_port(listener)
    async with anyio.create_task_group() as tasks:
        await tasks.start(server.serve, listener)
        yield server, port
        server.stop()


def client(port: int, path: str = "/", **kwargs: Any) -> connect:
    """A websockets client for the fake server (no compression, no proxy)."""
    scheme = "wss" if "ssl" in kwargs else "ws"
    kwargs.setdefault("open_timeout", WAIT)
    kwargs.setdefault("close_timeout", WAIT)
    return connect(f"{scheme}://127.0.0.1:{port}{path}", compression=None, proxy=None, **kwargs)


async def talk(connecting: connect) -> None:
    """Connect, send a message and wait for the answer."""
    async with connecting as ws:
        await ws.send("anyone?")
        await ws.recv()


async def settle(condition: Callable[[], bool]) -> None:
    """Wait up to 2 s for ``condition`` to hold."""
    for _ in range(200):
        if condition():
            return
        await anyio.sleep(0.01)
    raise AssertionError("the condition never held")


async def served(port: int) -> None:
    """A well-behaved client gets its echo within 2 s."""
    with anyio.fail_after(2):
        async with client(port) as ws:
            await ws.send("still there?")
            assert await ws.recv() == "still there?"


# ---------------------------------------------------------------------------- messages


@pytest.fixture(params=["bare task", "anyio task"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each connection's reader as on asyncio (a bare task) or as on other anyio backends."""
    if request.param == "anyio task":
        monkeypatch.setattr(server_driver, "asyncio_loop", lambda: None)
        monkeypatch.setattr(event_queue, "asyncio_loop", lambda: None)
    return str(request.param)


@pytest.mark.usefixtures("reader")
async def test_text_and_binary_echo_and_connect_event() -> None:
    seen: list[Event] = []

    async def session(driver: ServerDriver) -> None:
        seen.append(await next_event(driver, "connect"))
        for _ in range(2):
            event = await next_event(driver, "messageReceive")
            assert isinstance(event.value, str | bytes)
            await driver.send(event.value)

    headers = {"X-Token": "t1"}
    async with (
        running({"/chat": session}) as (_, port),
        client(port, "/chat?room=1", additional_headers=headers) as ws,
    ):
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"
    value = seen[0].value
    assert isinstance(value, dict)
    assert value["clientIP"] == "127.0.0.1"
    assert isinstance(value["clientPort"], int)
    assert value["clientPort"] > 0
    assert value["path"] == "/chat"
    received = value["headers"]
    assert isinstance(received, dict)
    assert received["x-token"] == "t1"


async def test_large_message_both_ways() -> None:
    big = "x" * (100 * 1024)
    async with running() as (_, port), client(port) as ws:
        await ws.send(big)
        assert await ws.recv() == big


async def test_fragments_are_reassembled_and_sent() -> None:
    got: list[Event] = []

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        got.append(await next_event(driver, "messageReceive"))
        await driver.send("abcdefgh", fragments=4, fragment_delay=0.01, ping_between=True)
        await driver.send(b"0123456789", fragments=3)
        await next_event(driver, "close")

    async with running({"/": session}) as (_, port), client(port) as ws:
        await ws.send(["part one, ", "part two"])
        assert await ws.recv() == "abcdefgh"
        assert await ws.recv() == b"0123456789"
    assert got[0].value == "part one, part two"


async def test_raw_frames_are_written_as_described() -> None:
    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        await driver.write_frames(
            (
                RawFrame(opcode=1, data=b"he", fin=False),
                RawFrame(opcode=0, data=b"llo", delay=0.01),
            )
        )
        await next_event(driver, "close")

    async with running({"/": session}) as (_, port), client(port) as ws:
        assert await ws.recv() == "hello"


async def test_ping_is_answered_and_reported_and_server_ping_gets_pong() -> None:
    events: list[str] = []

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        events.append((await next_event(driver)).name)
        await driver.ping(b"srv")
        events.append((await next_event(driver)).name)
        await driver.send("done")
        await next_event(driver, "close")

    async with running({"/": session}) as (_, port), client(port) as ws:
        pong = await ws.ping(b"cli")
        with anyio.fail_after(WAIT):
            await pong
        assert await ws.recv() == "done"
    assert events == ["ping", "pong"]


# ---------------------------------------------------------------------------- closing


@pytest.mark.parametrize(
    ("code", "reason", "no_payload", "expected"),
    [
        (4000, "bye", False, (4000, "bye")),
        (1000, "", False, (1000, "")),
        (1000, "é" * 61 + "x", False, (1000, "é" * 61 + "x")),
        (None, None, True, (1005, "")),
    ],
)
async def test_server_close_codes_reach_the_client(
    code: int | None, reason: str | None, no_payload: bool, expected: tuple[int, str]
) -> None:
    closes: list[Event] = []

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        assert await driver.close(code, reason, no_payload=no_payload) is None
        closes.append(await next_event(driver, "close"))

    async with running({"/": session}) as (_, port), client(port) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == expected
    assert closes[0].value == {"code": expected[0], "reason": expected[1]}


async def test_client_close_is_answered_and_reported() -> None:
    closes: list[Event] = []

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        closes.append(await next_event(driver, "close"))

    async with running({"/": session}) as (_, port):
        async with client(port) as ws:
            await ws.close(4001, "leaving")
        assert ws.close_code == 4001
    assert closes[0].value == {"code": 4001, "reason": "leaving"}


@pytest.mark.parametrize("code", [1004, 1005, 1006, 1016, 1100, 2000, 2999])
async def test_a_close_code_the_client_may_not_send_is_answered_with_1002(code: int) -> None:
    closes: list[Event] = []

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        closes.append(await next_event(driver, "close"))

    async with running({"/": session}) as (_, port):
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(UPGRADE)
        received = await stream.receive()
        assert received.startswith(b"HTTP/1.1 101")
        await stream.send(b"\x88\x82\x00\x00\x00\x00" + code.to_bytes(2, "big"))
        with anyio.fail_after(WAIT):
            while True:
                try:
                    received += await stream.receive()
                except anyio.EndOfStream:
                    break
        await stream.aclose()
    answer = received[received.index(b"\r\n\r\n") + 4 :]
    assert answer[0] == 0x88, answer
    assert int.from_bytes(answer[2:4], "big") == 1002
    assert closes[0].value == {"code": code, "reason": ""}


@pytest.mark.parametrize(("code", "written"), [(0, 0), (None, 1000)])
async def test_a_close_code_is_written_as_given_and_only_a_missing_one_is_1000(
    code: int | None, written: int
) -> None:
    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        assert await driver.close(code, "zero") is None

    async with running({"/": session}) as (_, port):
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(UPGRADE)
        received = b""
        with anyio.fail_after(WAIT):
            while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < 4:
                received += await stream.receive()
        await stream.aclose()
    frame = received.split(b"\r\n\r\n", 1)[1]
    assert frame[0] == 0x88, frame
    assert int.from_bytes(frame[2:4], "big") == written


async def test_answer_close_false_leaves_the_client_waiting() -> None:
    spec = ServerSpec(path="/", answer_close=False)

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        await next_event(driver, "close")
        assert await driver.next_event(0.6) is None

    async with running({"/": session}, specs={"/": spec}) as (_, port):
        ws = await client(port, close_timeout=0.3)
        await ws.close(1000, "bye")
        assert ws.protocol.close_sent is not None
        assert ws.protocol.close_rcvd is None, "the server never answered the close"


@pytest.mark.parametrize("rst", [False, True])
async def test_drop_cuts_without_close_frame(rst: bool) -> None:
    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        await driver.drop(rst=rst)
        assert driver.ended

    async with running({"/": session}) as (_, port), client(port) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is None


async def test_client_vanishing_is_reported_as_1006() -> None:
    closes: list[Event] = []

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        closes.append(await next_event(driver, "close"))

    async with running({"/": session}) as (_, port):
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(UPGRADE)
        assert (await stream.receive()).startswith(b"HTTP/1.1 101")
        await stream.aclose()
        await settle(lambda: bool(closes))
    assert closes[0].value == {"code": 1006, "reason": ""}


ECHO_SCENARIO = Scenario(
    path=Path("echo.yaml"),
    name="echo",
    steps=(),
    server=ServerSpec(),
    rules=(
        Rule(
            position=Position("echo.yaml", 1, 1),
            pointer="/rules/0",
            on=EventMatcher("messageReceive"),
            actions=(
                Send(payload=EchoPayload(), position=Position("echo.yaml", 2, 1), pointer=""),
            ),
        ),
    ),
)
"""A fake server that sends every message back unchanged (``send: {echo: true}``)."""


async def test_echo_rule_sends_text_and_binary_back_unchanged() -> None:
    async def session(driver: ServerDriver) -> None:
        runner = StepRunner(ECHO_SCENARIO, driver, variables={}, env={})
        await runner.serve_rules(poll=WAIT)

    messages: list[str | bytes] = ["héllo {{ x }}", b"\x00\xff\x80" * 1000, b"", "x" * 70_000]
    async with running({"/": session}) as (_, port), client(port) as ws:
        for message in messages:
            await ws.send(message)
            assert await ws.recv() == message


async def test_after_the_client_is_gone_one_failed_answer_drops_the_queued_messages() -> None:
    names: list[str] = []
    failures: list[StepResult] = []

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        await settle(lambda: driver.ended)
        runner = StepRunner(
            ECHO_SCENARIO, driver, variables={}, env={}, on_step=failures.append, streaming=True
        )
        await runner.serve_rules(poll=WAIT)
        names.extend(seen.name for seen in runner.result().events)

    async with running({"/": session}) as (_, port):
        async with client(port) as ws:
            for number in range(50):
                await ws.send(f"message {number}")
        await settle(lambda: bool(names))
    assert len(failures) == 1, failures
    assert failures[0].kind == "rule"
    assert names == ["messageReceive", "close"]


@pytest.mark.parametrize("rst", [True, False], ids=["rst", "fin"])
async def test_a_client_vanishing_while_a_rule_answers_is_reported_as_lost_by_the_client(
    rst: bool,
) -> None:
    failures: list[StepResult] = []
    done = anyio.Event()

    async def session(driver: ServerDriver) -> None:
        runner = StepRunner(
            ECHO_SCENARIO, driver, variables={}, env={}, on_step=failures.append, streaming=True
        )
        await runner.serve_rules(poll=WAIT)
        done.set()

    limits = Limits(handshake_timeout=1.0, max_message_size=2_000_000)
    async with running({"/": session}, limits=limits) as (_, port):
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(UPGRADE)
        assert (await stream.receive()).startswith(b"HTTP/1.1 101")
        frame = encode_frame(0x1, b"x" * 1_000_000, masked=True)
        for _ in range(8):  # never read: the answers fill the socket buffers
            await stream.send(frame)
        await anyio.sleep(0.2)
        if rst:
            raw = stream.extra(SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()
        with anyio.fail_after(WAIT):
            await done.wait()
    assert len(failures) == 1, failures  # the answers still queued are dropped
    assert failures[0].failure is not None
    message = failures[0].failure.message
    assert "reset" in message.lower(), message
    assert "this side" not in message, message


@pytest.mark.usefixtures("reader")
async def test_stop_closes_open_connections_with_1001() -> None:
    connected = anyio.Event()

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        connected.set()
        await anyio.sleep_forever()

    async with running({"/": session}) as (server, port), client(port) as ws:
        await connected.wait()
        server.stop()
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001


# ---------------------------------------------------------------------------- handshake


async def test_rejection_answers_401_with_body_and_headers() -> None:
    spec = ServerSpec(
        path="/chat",
        handshake=Handshake(
            require_headers={"authorization": "^Bearer .+"},
            reject=Reject(status=401, body="unauthorized", headers={"WWW-Authenticate": "Bearer"}),
        ),
    )
    async with running({"/chat": echo}, specs={"/chat": spec}) as (server, port):
        with pytest.raises(InvalidStatus) as rejected:
            async with client(port, "/chat"):
                pass
        response = rejected.value.response
        assert response.status_code == 401
        assert response.body == b"unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"
        async with client(port, "/chat", additional_headers={"Authorization": "Bearer x"}) as ws:
            await ws.send("in")
            assert await ws.recv() == "in"
    assert server.stats.refused == 1
    assert server.stats.refusals[0][1].why == "missing header authorization"


async def test_subprotocol_is_selected_when_offered() -> None:
    spec = ServerSpec(path="/", handshake=Handshake(protocol="chat.v1"))
    async with running(specs={"/": spec}) as (_, port):
        async with client(port, subprotocols=["other", "chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1"
        async with client(port, subprotocols=["other"]) as ws:
            assert ws.subprotocol is None


async def test_unknown_path_is_404_and_paths_are_routed() -> None:
    async def hello(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        await driver.send(driver.handshake.path)
        await next_event(driver, "close")

    async with running({"/a": hello, "/b": hello}) as (_, port):
        for path in ("/a", "/b"):
            async with client(port, path) as ws:
                assert await ws.recv() == path
        with pytest.raises(InvalidStatus) as missing:
            async with client(port, "/c"):
                pass
        assert missing.value.response.status_code == 404
        assert b"/a, /b" in missing.value.response.body


async def test_past_max_connections_new_clients_get_503() -> None:
    async with running(limits=Limits(max_connections=1, handshake_timeout=1.0)) as (server, port):
        async with client(port) as first:
            await first.send("hold")
            assert await first.recv() == "hold"
            with pytest.raises(InvalidStatus) as busy:
                async with client(port):
                    pass
            assert busy.value.response.status_code == 503
        await settle(lambda: server.open_connections == 0)
        await served(port)


# ---------------------------------------------------------------------------- isolation


@pytest.mark.usefixtures("reader")
async def test_a_failing_session_costs_only_its_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(driver: ServerDriver) -> None:
        raise RuntimeError("script bug")

    async with running({"/": echo, "/broken": broken}) as (_, port):
        with pytest.raises(ConnectionClosed):
            async with client(port, "/broken") as ws:
                await ws.recv()
        await served(port)
    assert "script bug" in caplog.text


async def test_a_reader_fault_costs_only_its_connection(caplog: pytest.LogCaptureFixture) -> None:
    async def faulty_reader(driver: ServerDriver) -> None:
        async def receive() -> Any:
            raise RuntimeError("reader bug")

        driver.connection.receive = receive  # type: ignore[method-assign]
        assert await driver.next_event(5.0) is not None  # the connect event
        assert await driver.next_event(5.0) is None  # the reader is gone: nothing more

    async with running({"/": echo, "/faulty": faulty_reader}) as (_, port):
        with pytest.raises(ConnectionClosed):
            async with client(port, "/faulty") as ws:
                await ws.recv()
        await served(port)
    assert "reader bug" in caplog.text


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param(b"\x00\xff garbage \r\n\r\n" * 4, id="garbage"),
        pytest.param(
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, id="tls-hello"
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", id="oversized"
        ),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n", id="slowloris"),
    ],
)
async def test_hostile_peer_costs_only_itself(hostile: bytes) -> None:
    limits = Limits(handshake_timeout=0.5)
    async with running(limits=limits) as (server, port):
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(hostile)
        await served(port)
        with anyio.fail_after(WAIT):
            answer = b""
            try:
                while chunk := await stream.receive():
                    answer += chunk
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass
        await stream.aclose()
        assert not answer.startswith(b"HTTP/1.1 101")
        await settle(lambda: server.open_connections == 0)


class FlakyListener(Listener[ByteStream]):
    """A listener whose first ``accept()`` calls fail like a process out of descriptors."""

    def __init__(self, inner: SocketListener, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    async def accept(self) -> ByteStream:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return await self.inner.accept()

    async def serve(self, handler: Any, task_group: Any = None) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def extra_attributes(self) -> Any:
        return self.inner.extra_attributes


async def test_accept_errors_back_off_and_recover(caplog: pytest.LogCaptureFixture) -> None:
    inner = await open_listener("127.0.0.1", 0)
    (first,) = inner.listeners
    assert isinstance(first, SocketListener)
    flaky = FlakyListener(first, failures=3)
    caplog.set_level(logging.WARNING)
    begin = anyio.current_time()
    async with running(listener=flaky) as (_, port):
        await served(port)
    assert anyio.current_time() - begin >= 0.3
    assert caplog.text.count("Too many open files") == 3


async def test_two_hundred_clients_each_run_their_own_script() -> None:
    count = 200

    async def numbered(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        event = await next_event(driver, "messageReceive")
        assert isinstance(event.value, str)
        await anyio.sleep(0.05)
        await driver.send(f"you are {event.value}")
        await next_event(driver, "close")

    answers: dict[int, str] = {}

    async def one(port: int, number: int) -> None:
        async with client(port, open_timeout=10) as ws:
            await ws.send(str(number))
            answer = await ws.recv()
            assert isinstance(answer, str)
            answers[number] = answer

    async with running({"/": numbered}) as (server, port):
        with anyio.fail_after(30):
            async with anyio.create_task_group() as clients:
                for number in range(count):
                    clients.start_soon(one, port, number)
    assert answers == {number: f"you are {number}" for number in range(count)}
    assert server.stats.accepted == count


# ---------------------------------------------------------------------------- TLS


async def test_tls_with_client_certificate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("client@example")
    paths = {}
    for name, blob in (
        ("server.pem", server_cert.cert_chain_pems[0].bytes()),
        ("server.key", server_cert.private_key_pem.bytes()),
        ("ca.pem", ca.cert_pem.bytes()),
    ):
        (tmp_path / name).write_bytes(blob)
        paths[name] = str(tmp_path / name)
    context = server_context(paths["server.pem"], paths["server.key"], paths["ca.pem"])

    good = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(good)
    client_cert.configure_cert(good)
    anonymous = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(anonymous)

    async with running(tls=context) as (_, port):
        with pytest.raises((ssl.SSLError, OSError, ConnectionClosed, InvalidHandshake)):
            await talk(client(port, ssl=anonymous))
        vanishing = await anyio.connect_tcp("127.0.0.1", port)
        await vanishing.aclose()
        plain = await anyio.connect_tcp("127.0.0.1", port)
        await plain.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with anyio.fail_after(2):
            async with client(port, ssl=good) as ws:
                await ws.send("secure")
                assert await ws.recv() == "secure"
        await plain.aclose()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


# ---------------------------------------------------------------------------- helpers


async def test_port_in_use_cannot_run() -> None:
    first = await open_listener("127.0.0.1", 0)
    try:
        with pytest.raises(CannotRun, match="already in use"):
            await open_listener("127.0.0.1", bound_port(first))
    finally:
        await first.aclose()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8765", ("127.0.0.1", 8765)),
        (":9000", ("127.0.0.1", 9000)),
        ("[::1]:80", ("::1", 80)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8765", "host:", "host:port", "h:70000"])
def test_parse_listen_rejects_bad_addresses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_listen(text)


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("localhost")
    assert is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.2")


async def test_each_route_keeps_its_own_limits_on_a_shared_listener() -> None:
    small = Limits(max_message_size=1024)
    async with running(
        {"/small": echo, "/large": echo},
        limits=Limits(handshake_timeout=1.0),
        route_limits={"/small": small},
    ) as (_, port):
        async with client(port, "/large") as ws:
            await ws.send("x" * 2048)
            assert await ws.recv() == "x" * 2048
        async with client(port, "/small") as ws:
            await ws.send("x" * 2048)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009


def test_listener_limits_take_the_most_generous() -> None:
    merged = listener_limits([Limits(max_message_size=10), Limits(max_connections=5)])
    assert merged.max_message_size == Limits().max_message_size
    assert merged.max_connections == Limits().max_connections
    assert listener_limits([]) == Limits()
    assert listener_limits([Limits(handshake_timeout=30.0)]).handshake_timeout == 30.0


def test_peer_prints_ipv6_in_brackets() -> None:
    assert str(Peer("::1", 5)) == "[::1]:5"
    assert str(Peer("10.0.0.1", 5)) == "10.0.0.1:5"


# ---------------------------------------------------------------------------- more calls


async def test_handshake_delay_holds_the_101_back() -> None:
    spec = ServerSpec(path="/", handshake=Handshake(delay=0.3))
    async with running(specs={"/": spec}) as (_, port):
        begin = anyio.current_time()
        async with client(port) as ws:
            assert anyio.current_time() - begin >= 0.3
            await ws.send("late")
            assert await ws.recv() == "late"


@pytest.mark.usefixtures("reader")
async def test_stop_reading_leaves_the_clients_data_unread() -> None:
    after: list[Event | None] = []
    sent = anyio.Event()

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        await driver.stop_reading()
        await driver.send("stopped")
        await sent.wait()
        after.append(await driver.next_event(0.3))

    async with running({"/": session}) as (_, port), client(port) as ws:
        assert await ws.recv() == "stopped"
        await ws.send("unheard")
        sent.set()
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert after == [None]


@pytest.mark.usefixtures("reader")
async def test_once_reading_stopped_waiting_for_an_event_ends_at_once() -> None:
    after: list[Event | None] = []

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        await driver.stop_reading()  # before the reader has read anything
        with anyio.fail_after(WAIT):
            after.append(await driver.next_event(60))

    async with running({"/": session}) as (_, port), client(port) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert after == [None]


async def test_calls_after_the_close_are_errors_and_connect_is_refused() -> None:
    results: list[object] = []

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        results.append(await driver.connect("ws://elsewhere/", ConnectOptions()))
        await driver.close(1000, "bye")
        await next_event(driver, "close")
        results.append(await driver.send("too late"))
        results.append(await driver.close(1000, "again"))

    async with running({"/": session}) as (_, port), client(port) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert [getattr(result, "code", None) for result in results] == [-1, -1, -1]


async def test_a_message_over_the_limit_is_an_error_then_a_close() -> None:
    events: list[Event] = []

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        events.append(await next_event(driver))
        events.append(await next_event(driver))

    limits = Limits(max_message_size=1000, handshake_timeout=1.0)
    async with running({"/": session}, limits=limits) as (_, port), client(port) as ws:
        await ws.send("x" * 2000)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    assert [event.name for event in events] == ["error", "close"]
    assert isinstance(events[0].value, dict)
    assert events[0].value["kind"] == "protocol"
    assert events[1].value == {"code": 1006, "reason": ""}


UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def test_a_close_left_unanswered_is_cut_after_the_close_timeout() -> None:
    closes: list[Event] = []

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        await driver.close(1000, "bye")
        closes.append(await next_event(driver, "close"))

    limits = Limits(close_timeout=0.3, handshake_timeout=1.0)
    async with running({"/": session}, limits=limits) as (server, port):
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(UPGRADE)
        begin = anyio.current_time()
        await settle(lambda: bool(closes))
        assert anyio.current_time() - begin >= 0.3
        await settle(lambda: server.open_connections == 0)
        await stream.aclose()
    assert closes[0].value == {"code": 1006, "reason": ""}


async def test_a_fault_at_the_close_deadline_costs_only_its_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        abort = driver.connection.abort
        faults = [RuntimeError("cut bug")]

        async def faulty_abort(*, rst: bool = False) -> None:
            if faults:
                raise faults.pop()
            await abort(rst=rst)

        driver.connection.abort = faulty_abort  # type: ignore[method-assign]
        await driver.close(1000, "bye")  # left unanswered: the deadline cuts the connection

    limits = Limits(close_timeout=0.3, handshake_timeout=1.0)
    async with running({"/": echo, "/faulty": session}, limits=limits) as (server, port):
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(UPGRADE.replace(b"GET / ", b"GET /faulty "))
        await settle(lambda: "cut bug" in caplog.text)
        await settle(lambda: server.open_connections == 0)
        await served(port)
        await stream.aclose()


def test_new_event_is_the_same_frozen_event() -> None:
    made = new_event("messageReceive", "hello", 1.5)
    assert made == Event("messageReceive", "hello", 1.5)
    assert made != Event("messageReceive", "hello", 2.0)
    assert hash(made) == hash(Event("messageReceive", "hello", 1.5))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.name = "other"  # type: ignore[misc]


# ---------------------------------------------------------------------------- hostile frames


def close_code_in(answer: bytes) -> int | None:
    """The code of the close frame the server wrote after its 101 (None: no close frame).

    Frames before the close (none are expected) are skipped; the server's frames are unmasked.
    """
    frames = answer[answer.index(b"\r\n\r\n") + 4 :]
    while len(frames) >= 2:
        opcode, length = frames[0] & 0x0F, frames[1] & 0x7F
        head = 2 + {126: 2, 127: 8}.get(length, 0)
        if length >= 126:
            length = int.from_bytes(frames[2:head], "big")
        if opcode == 0x8:
            assert length >= 2, frames
            return int.from_bytes(frames[head : head + 2], "big")
        frames = frames[head + length :]
    return None


async def upgraded(port: int, path: str = "/") -> tuple[anyio.abc.SocketStream, bytes]:
    """A raw TCP connection to ``path`` through the handshake; the stream and what it read."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    received = b""
    with anyio.fail_after(WAIT):
        await stream.send(UPGRADE.replace(b"GET / ", f"GET {path} ".encode()))
        while b"\r\n\r\n" not in received:
            received += await stream.receive()
    assert received.startswith(b"HTTP/1.1 101"), received
    return stream, received


async def read_to_the_end(stream: anyio.abc.SocketStream, received: bytes) -> bytes:
    """``received`` and everything the server writes until it ends the connection."""
    with anyio.fail_after(WAIT):
        try:
            while True:
                received += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass
    return received


LIMIT = 1000
"""The route's max message size in the hostile frame tests."""


@pytest.mark.parametrize(
    ("hostile", "code"),
    [
        pytest.param(encode_frame(0x1, b"hello", masked=False), 1002, id="unmasked"),
        pytest.param(encode_frame(0x3, b"hello", masked=True), 1002, id="reserved-opcode"),
        pytest.param(encode_frame(0xB, b"", masked=True), 1002, id="reserved-control-opcode"),
        pytest.param(encode_frame(0x1, b"ok \xff\xfe", masked=True), 1007, id="invalid-utf8"),
        pytest.param(encode_frame(0x1, b"ok \xed\xa0\x80", masked=True), 1007, id="utf8-surrogate"),
        pytest.param(encode_frame(0x2, b"x" * (LIMIT + 1), masked=True), 1009, id="too-big"),
        pytest.param(
            encode_frame(0x2, b"x" * 600, masked=True, fin=False)
            + encode_frame(0x0, b"x" * 600, masked=True),
            1009,
            id="too-big-in-fragments",
        ),
    ],
)
async def test_a_hostile_frame_gets_its_close_code_and_costs_only_its_connection(
    hostile: bytes, code: int
) -> None:
    route_limits = {"/": Limits(max_message_size=LIMIT)}
    async with running(route_limits=route_limits) as (server, port):
        stream, received = await upgraded(port)
        await stream.send(hostile)
        answer = await read_to_the_end(stream, received)
        await stream.aclose()
        assert close_code_in(answer) == code, answer
        await settle(lambda: server.open_connections == 0)
        await served(port)


async def test_a_reset_in_the_middle_of_a_message_costs_only_its_connection() -> None:
    closes: list[Event] = []

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        closes.append(await next_event(driver, "close"))

    route_limits = {"/hostile": Limits(max_message_size=LIMIT)}
    async with running({"/": echo, "/hostile": session}, route_limits=route_limits) as (
        server,
        port,
    ):
        stream, _ = await upgraded(port, "/hostile")
        frame = encode_frame(0x1, b"x" * (LIMIT // 2), masked=True)
        await stream.send(frame[: len(frame) // 2])
        raw = stream.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()
        await settle(lambda: bool(closes))
        await settle(lambda: server.open_connections == 0)
        await served(port)
    assert closes[0].value == {"code": 1006, "reason": ""}
