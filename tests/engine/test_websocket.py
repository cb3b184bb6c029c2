"""The WebSocket connection against independent peers: websockets, and raw hostile servers."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from anyio.abc import SocketAttribute
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request

from tests.engine.ws_peers import (
    CloseWatcher,
    raw_server,
    read_head,
    upgrade_response,
    websockets_server,
)
from wscenario.core.model import Limits, RawFrame
from wscenario.core.wire import (
    CloseReceived,
    CloseTransport,
    ConnectionLost,
    ConnectRequest,
    DataFrame,
    PingReceived,
    PongReceived,
    SendClose,
    SendMessage,
    SendPing,
    SendPong,
    WireEvent,
)
from wscenario.engine.errors import ConnectionClosed, HandshakeError
from wscenario.engine.websocket import (
    Accept,
    HandshakeRequest,
    Reject,
    WebSocketConnection,
    accept,
    close_payload,
    connect,
    encode_frame,
)

pytestmark = pytest.mark.anyio

LIMITS = Limits(close_timeout=2.0, handshake_timeout=2.0)


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def open_client(port: int, limits: Limits = LIMITS, path: str = "/") -> WebSocketConnection:
    connection, _ = await connect(ConnectRequest(f"ws://127.0.0.1:{port}{path}"), limits)
    return connection


async def whole_message(connection: WebSocketConnection) -> tuple[list[DataFrame], str | bytes]:
    pieces: list[DataFrame] = []
    while True:
        event = await connection.receive()
        assert isinstance(event, DataFrame), event
        pieces.append(event)
        if event.final:
            break
    if pieces[0].kind == "text":
        return pieces, "".join(str(piece.data) for piece in pieces)
    return pieces, b"".join(bytes(piece.data) for piece in pieces)  # type: ignore[arg-type]


async def failure_of(url: str, limits: Limits = LIMITS, **request: float) -> HandshakeError:
    with anyio.fail_after(10), pytest.raises(HandshakeError) as caught:
        await connect(ConnectRequest(url, **request), limits)  # type: ignore[arg-type]
    return caught.value


# ------------------------------------------------------------------------------ client


async def test_echoes_text_and_binary_and_reports_the_handshake() -> None:
    async with websockets_server(echo) as port:
        with anyio.fail_after(10):
            connection, done = await connect(
                ConnectRequest(f"ws://127.0.0.1:{port}/chat?x=1"), LIMITS
            )
            await connection.send(SendMessage("héllo"))
            assert await connection.receive() == DataFrame("text", "héllo", True, True)
            await connection.send(SendMessage(b"\x00\xff"))
            assert await connection.receive() == DataFrame("binary", b"\x00\xff", True, True)
            await connection.aclose()
    assert done.status == 101
    assert done.reason == "Switching Protocols"
    assert done.path == "/chat?x=1"
    assert ("Upgrade", "websocket") in done.headers
    assert connection.close_sent
    assert connection.close_received
    assert connection.lost is None
    assert connection.remote_address == ("127.0.0.1", port)


async def test_a_100_kib_message_arrives_in_pieces_that_join_up() -> None:
    payload = bytes(range(256)) * 400
    async with websockets_server(echo) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            await connection.send(SendMessage(payload))
            pieces, message = await whole_message(connection)
            await connection.aclose()
    assert message == payload
    assert pieces[0].first
    assert not any(piece.first for piece in pieces[1:])
    assert all(piece.kind == "binary" for piece in pieces)


async def test_fragments_from_the_server_arrive_as_pieces_with_a_ping_between() -> None:
    async def fragments_and_ping(ws: ServerConnection) -> None:
        await ws.recv()
        ws.transport.write(encode_frame(0x1, "é".encode()[:1], masked=False, fin=False))
        ws.transport.write(encode_frame(0x9, b"mid", masked=False))
        ws.transport.write(encode_frame(0x0, "é".encode()[1:] + b"nd", masked=False))
        await ws.wait_closed()

    async with websockets_server(fragments_and_ping) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            await connection.send(SendMessage("go"))
            events = [await connection.receive() for _ in range(3)]
            await connection.abort()
    assert events == [
        DataFrame("text", "", True, False),
        PingReceived(b"mid"),
        DataFrame("text", "énd", False, True),
    ]


async def test_pings_are_left_to_the_caller_unless_auto_pong() -> None:
    pongs: list[bytes] = []

    async def pinger(ws: ServerConnection) -> None:
        waiter = await ws.ping(b"p1")
        with anyio.move_on_after(0.3):
            await waiter
            pongs.append(b"p1")
        await ws.send("after")
        await ws.wait_closed()

    async with websockets_server(pinger) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            assert await connection.receive() == PingReceived(b"p1")
            assert await connection.receive() == DataFrame("text", "after", True, True)
            await connection.send(SendPong(b"p1"))
            await connection.aclose()
    assert pongs == []


async def test_auto_pong_answers_pings() -> None:
    answered = anyio.Event()

    async def pinger(ws: ServerConnection) -> None:
        await (await ws.ping(b"p2"))
        answered.set()
        await ws.close()

    async with websockets_server(pinger) as port:
        with anyio.fail_after(10):
            connection, _ = await connect(
                ConnectRequest(f"ws://127.0.0.1:{port}/"), LIMITS, auto_pong=True
            )
            assert await connection.receive() == PingReceived(b"p2")
            assert await connection.receive() == CloseReceived(1000, "")
            await answered.wait()
            await connection.aclose()


async def test_pong_frames_are_reported() -> None:
    async with websockets_server(echo, ping_interval=None) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            await connection.send(SendPing(b"ask"))
            assert await connection.receive() == PongReceived(b"ask")
            await connection.aclose()


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            encode_frame(0x8, struct.pack("!H", 4000) + b"bye", masked=False),
            CloseReceived(4000, "bye"),
        ),
        (encode_frame(0x8, b"", masked=False), CloseReceived(None, "")),
    ],
)
async def test_close_frames_from_the_server(frame: bytes, expected: CloseReceived) -> None:
    async def closer(ws: ServerConnection) -> None:
        ws.transport.write(frame)
        await ws.wait_closed()

    async with websockets_server(closer) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            assert await connection.receive() == expected
            assert connection.close_received
            assert not connection.close_sent
            await connection.send(SendClose(expected.code, expected.reason))
            with pytest.raises(ConnectionClosed):
                await connection.receive()
            await connection.aclose()


@pytest.mark.parametrize(
    ("action", "code", "reason"),
    [
        (SendClose(4001, "é" * 70), 4001, "é" * 61),
        (SendClose(None), 1005, ""),
        (SendClose(), 1000, ""),
    ],
)
async def test_close_frames_to_the_server(action: SendClose, code: int, reason: str) -> None:
    watcher = CloseWatcher()
    async with websockets_server(watcher) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            await connection.send(action)
            event = await connection.receive()
            await connection.aclose()
    assert watcher.seen == [(code, reason)]
    assert isinstance(event, CloseReceived)
    assert event.code == (None if code == 1005 else code)


async def test_close_codes_are_written_as_given_even_invalid_ones() -> None:
    assert close_payload(1006, "x") == b"\x03\xeex"
    assert close_payload(None, "ignored") == b""
    watcher = CloseWatcher()
    async with websockets_server(watcher) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            await connection.send(SendClose(999, "odd"))
            event = await connection.receive()
            await connection.aclose()
    assert event == CloseReceived(1002, "invalid status code")  # websockets refuses it
    assert watcher.codes == [1006]


async def test_a_message_over_the_size_limit_fails_with_1009() -> None:
    watcher = CloseWatcher("x" * 600, "y" * 2000)
    async with websockets_server(watcher) as port:
        with anyio.fail_after(10):
            connection = await open_client(port, Limits(max_message_size=1000))
            assert await connection.receive() == DataFrame("text", "x" * 600, True, True)
            lost = await connection.receive()
            again = await connection.receive()
            with pytest.raises(ConnectionClosed):
                await connection.send(SendMessage("late"))
    assert isinstance(lost, ConnectionLost)
    assert (lost.kind, lost.code) == ("protocol", 1009)
    assert again is lost
    assert watcher.codes == [1009]


async def test_too_many_fragments_fail_with_1009() -> None:
    watcher = CloseWatcher(["a", "b", "c", "d", "e"])
    async with websockets_server(watcher) as port:
        with anyio.fail_after(10):
            connection = await open_client(port, Limits(max_fragments=3))
            events = [await connection.receive() for _ in range(4)]
    assert [event.data for event in events[:3]] == ["a", "b", "c"]  # type: ignore[union-attr]
    assert events[3] == ConnectionLost("protocol", "message in more than 3 fragments", 1009)
    assert watcher.codes == [1009]


async def test_invalid_utf8_from_the_server_fails_with_1007() -> None:
    async def bad_text(ws: ServerConnection) -> None:
        ws.transport.write(encode_frame(0x1, b"\xff\xfe", masked=False))
        await ws.wait_closed()

    async with websockets_server(bad_text) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            lost = await connection.receive()
    assert isinstance(lost, ConnectionLost)
    assert (lost.kind, lost.code) == ("protocol", 1007)


async def test_an_abrupt_drop_mid_message_is_a_lost_connection() -> None:
    async def dropper(ws: ServerConnection) -> None:
        ws.transport.write(b"\x82\x7e\x10\x00" + b"z" * 100)  # 4096 bytes announced, 100 sent
        await anyio.sleep(0.05)
        ws.transport.abort()

    async with websockets_server(dropper) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            first = await connection.receive()
            lost = await connection.receive()
    assert first == DataFrame("binary", b"z" * 100, True, False, frame_final=False)
    assert isinstance(lost, ConnectionLost)
    assert lost.kind in ("eof", "reset")


async def test_raw_frames_reach_the_peer_as_written() -> None:
    watcher = CloseWatcher()
    async with websockets_server(watcher) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            await connection.send_raw_frame(RawFrame(opcode=3, data=b"reserved"))
            event = await connection.receive()
            await connection.aclose()
    assert isinstance(event, CloseReceived)
    assert event.code == 1002
    assert "opcode" in event.reason
    assert watcher.codes == [1006]  # websockets closed TCP right after its own close frame


async def test_abort_with_rst_leaves_the_peer_without_a_close_frame() -> None:
    watcher = CloseWatcher()
    async with websockets_server(watcher) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            await connection.send(CloseTransport(abort=True))
            lost = await connection.receive()
            await connection.aclose()
            await anyio.sleep(0.1)
    assert lost == ConnectionLost("reset", "connection dropped by this side")
    assert watcher.codes == [1006]


# ------------------------------------------------------------------- client handshake


async def test_a_refusal_keeps_status_reason_headers_and_body() -> None:
    async def refuse(stream: anyio.abc.SocketStream) -> None:
        await read_head(stream)
        await stream.send(
            b"HTTP/1.1 403 Not Today\r\nX-Why: policy\r\nContent-Length: 5\r\n\r\nnope!"
        )

    async with raw_server(refuse) as port:
        failed = (await failure_of(f"ws://127.0.0.1:{port}/")).failed
    assert (failed.kind, failed.status, failed.body) == ("status", 403, b"nope!")
    assert ("X-Why", "policy") in failed.headers
    assert "403 Not Today" in failed.message


async def test_a_websockets_refusal_is_reported_with_its_body() -> None:
    def unauthorized(ws: ServerConnection, request: Request) -> object:
        return ws.respond(HTTPStatus.UNAUTHORIZED, "who are you?\n")

    async with websockets_server(echo, process_request=unauthorized) as port:
        failed = (await failure_of(f"ws://127.0.0.1:{port}/")).failed
    assert (failed.kind, failed.status, failed.body) == ("status", 401, b"who are you?\n")


async def test_the_reason_phrase_is_kept_exactly() -> None:
    async def odd_reason(stream: anyio.abc.SocketStream) -> None:
        request = await read_head(stream)
        await stream.send(upgrade_response(request, reason="Web Socket Protocol Handshake"))
        await anyio.sleep(1)

    async with raw_server(odd_reason) as port:
        with anyio.fail_after(10):
            connection, done = await connect(ConnectRequest(f"ws://127.0.0.1:{port}/"), LIMITS)
            await connection.abort()
    assert done.reason == "Web Socket Protocol Handshake"


async def test_a_silent_server_times_the_handshake_out() -> None:
    async def silent(stream: anyio.abc.SocketStream) -> None:
        await anyio.sleep(5)

    async with raw_server(silent) as port:
        failed = (await failure_of(f"ws://127.0.0.1:{port}/", Limits(handshake_timeout=0.2))).failed
    assert failed.kind == "timeout"


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"HTTP/1.1 101 OK\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", "over 16384 bytes"),
        (b"HTTP/1.1 101 OK\r\n" + b"X-Many: 1\r\n" * 200 + b"\r\n", "more than 128 headers"),
    ],
)
async def test_an_oversized_response_head_in_one_write_is_refused(
    head: bytes, message: str
) -> None:
    async def oversized(stream: anyio.abc.SocketStream) -> None:
        await read_head(stream)
        await stream.send(head)
        await anyio.sleep(1)

    async with raw_server(oversized) as port:
        failed = (await failure_of(f"ws://127.0.0.1:{port}/")).failed
    assert failed.kind == "too-large"
    assert message in failed.message


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (b"\x00\x01\x02 garbage\r\n\r\n", "protocol"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "protocol"),
        (
            (
                b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: d3Jvbmc=\r\n\r\n"
            ),
            "accept",
        ),
        (b"HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n\r\n", "protocol"),
        (b"", "protocol"),
    ],
)
async def test_broken_handshake_answers_fail_clearly(answer: bytes, kind: str) -> None:
    async def broken(stream: anyio.abc.SocketStream) -> None:
        await read_head(stream)
        if answer:
            await stream.send(answer)
            await anyio.sleep(1)

    async with raw_server(broken) as port:
        failed = (await failure_of(f"ws://127.0.0.1:{port}/")).failed
    assert failed.kind == kind
    assert failed.message


async def test_a_subprotocol_that_was_not_offered_fails() -> None:
    async def wrong_protocol(stream: anyio.abc.SocketStream) -> None:
        request = await read_head(stream)
        await stream.send(upgrade_response(request, "Sec-WebSocket-Protocol: other"))
        await anyio.sleep(1)

    async with raw_server(wrong_protocol) as port:
        with anyio.fail_after(10), pytest.raises(HandshakeError) as caught:
            await connect(ConnectRequest(f"ws://127.0.0.1:{port}/", subprotocols=("chat",)), LIMITS)
    assert caught.value.failed.kind == "protocol"
    assert "other" in caught.value.failed.message


async def test_the_offered_subprotocol_and_headers_reach_websockets() -> None:
    seen: list[tuple[str | None, str | None]] = []

    async def watcher(ws: ServerConnection) -> None:
        seen.append((ws.subprotocol, ws.request.headers.get("X-Token") if ws.request else None))
        await ws.close()

    async with websockets_server(watcher, subprotocols=["b.v2"]) as port:
        with anyio.fail_after(10):
            request = ConnectRequest(
                f"ws://127.0.0.1:{port}/",
                headers=(("X-Token", "t1"),),
                subprotocols=("a.v1", "b.v2"),
            )
            connection, done = await connect(request, LIMITS)
            await connection.aclose()
    assert seen == [("b.v2", "t1")]
    assert done.subprotocol == connection.subprotocol == "b.v2"


async def test_connection_refused_and_bad_urls_and_unknown_hosts() -> None:
    async with raw_server(lambda stream: anyio.lowlevel.checkpoint()) as port:
        pass  # the port is free again
    assert (await failure_of(f"ws://127.0.0.1:{port}/")).failed.kind == "refused"
    assert (await failure_of("http://127.0.0.1/")).failed.kind == "invalid"
    assert (await failure_of("ws://127.0.0.1:99999/")).failed.kind == "invalid"
    assert (await failure_of("ws://host.invalid/")).failed.kind == "dns"


async def test_a_header_with_a_line_break_is_refused_before_sending() -> None:
    with anyio.fail_after(10), pytest.raises(HandshakeError) as caught:
        await connect(
            ConnectRequest("ws://127.0.0.1:9/", headers=(("X-A", "ok\r\nX-Injected: 1"),)),
            LIMITS,
            stream_factory=_never_used_stream,
        )
    assert caught.value.failed.kind == "invalid"


async def _never_used_stream() -> anyio.abc.ByteStream:
    sender, receiver = anyio.create_memory_object_stream[bytes](10)
    from anyio.streams.stapled import StapledObjectStream

    return StapledObjectStream(sender, receiver)  # type: ignore[return-value]


# ------------------------------------------------------------------------------ server

Decide = Callable[[HandshakeRequest], Awaitable[Accept | Reject]]
Serve = Callable[[WebSocketConnection], Awaitable[None]]


@asynccontextmanager
async def engine_server(
    decide: Decide, serve: Serve, limits: Limits = LIMITS
) -> AsyncIterator[tuple[int, list[object]]]:
    """Our own server side: ``accept`` then ``serve``; yields the port and each outcome."""
    outcomes: list[object] = []

    async def handle(stream: anyio.abc.SocketStream) -> None:
        accepted = await accept(stream, limits, decide)
        outcomes.append(accepted[1] if accepted else None)
        if accepted:
            await serve(accepted[0])

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, handle)
        yield listener.extra(SocketAttribute.local_port), outcomes
        group.cancel_scope.cancel()


async def accept_chat(request: HandshakeRequest) -> Accept | Reject:
    if request.path != "/chat":
        return Reject(404, b"no such path", (("X-Path", request.path),))
    chosen = "chat.v1" if "chat.v1" in request.subprotocols else None
    return Accept(chosen, (("X-Server", "engine"),))


async def serve_echo(connection: WebSocketConnection) -> None:
    while True:
        event = await connection.receive()
        if isinstance(event, DataFrame):
            if event.first and event.final:
                await connection.send(SendMessage(event.data))
        elif isinstance(event, CloseReceived):
            await connection.send(SendClose(event.code, event.reason))
            await connection.aclose()
            return
        elif isinstance(event, ConnectionLost):
            return


async def test_websockets_clients_are_accepted_and_echoed() -> None:
    async with engine_server(accept_chat, serve_echo) as (port, outcomes):
        with anyio.fail_after(10):
            async with ws_connect(
                f"ws://127.0.0.1:{port}/chat",
                subprotocols=["chat.v1"],  # type: ignore[list-item]
                compression=None,
            ) as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                await ws.send(b"\x01")
                assert await ws.recv() == b"\x01"
                assert ws.subprotocol == "chat.v1"
                assert ws.response is not None
                assert ws.response.headers["X-Server"] == "engine"
    (done,) = outcomes
    assert done.path == "/chat"  # type: ignore[attr-defined]
    assert done.subprotocol == "chat.v1"  # type: ignore[attr-defined]


async def test_a_rejection_reaches_websockets_with_status_and_body() -> None:
    async with engine_server(accept_chat, serve_echo) as (port, outcomes):
        with anyio.fail_after(10), pytest.raises(InvalidStatus) as caught:
            await ws_connect(f"ws://127.0.0.1:{port}/other")
    response = caught.value.response
    assert response.status_code == 404
    assert response.body == b"no such path"
    assert response.headers["X-Path"] == "/other"
    assert outcomes == [None]


async def test_fragments_with_a_ping_between_reach_websockets_whole() -> None:
    pongs: list[WireEvent] = []

    async def fragmenter(connection: WebSocketConnection) -> None:
        await connection.send_fragmented("é" * 10, 4, delay=0.01, ping_between=True)
        await connection.send_fragmented(b"\x00" * 9, 3)
        pongs.append(await connection.receive())
        await connection.aclose()

    async with engine_server(accept_chat, fragmenter) as (port, _):
        with anyio.fail_after(10):
            async with ws_connect(f"ws://127.0.0.1:{port}/chat", compression=None) as ws:
                assert await ws.recv() == "é" * 10
                assert await ws.recv() == b"\x00" * 9
                with pytest.raises(WsConnectionClosed):
                    await ws.recv()
    assert pongs == [PongReceived(b"")]


async def test_a_client_message_over_the_limit_is_closed_with_1009() -> None:
    lost: list[WireEvent] = []

    async def reader(connection: WebSocketConnection) -> None:
        lost.append(await connection.receive())

    limits = Limits(max_message_size=10, close_timeout=2.0)
    async with engine_server(accept_chat, reader, limits) as (port, _):
        with anyio.fail_after(10):
            async with ws_connect(f"ws://127.0.0.1:{port}/chat", compression=None) as ws:
                await ws.send("x" * 11)
                with pytest.raises(WsConnectionClosed):
                    await ws.recv()
                assert ws.close_code == 1009
    assert lost == [ConnectionLost("protocol", "message over 10 bytes", 1009)]


async def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on a fresh TCP connection and read everything the server answers."""
    answer = b""
    with anyio.fail_after(10):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            if data:
                await stream.send(data)
            try:
                while True:
                    answer += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    return answer


KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
UPGRADE = b"Upgrade: websocket\r\nConnection: Upgrade\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status", "detail"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"400", b"invalid HTTP request"),
        (b"garbage\r\n\r\n", b"400", b"invalid HTTP request"),
        (b"POST /chat HTTP/1.1\r\nHost: x\r\n" + UPGRADE + KEY + b"\r\n", b"400", b"GET"),
        (
            b"GET /chat HTTP/1.1\r\nHost: x\r\n" + UPGRADE + b"Sec-WebSocket-Version: 13\r\n\r\n",
            b"400",
            b"Sec-WebSocket-Key",
        ),
        (
            b"GET /chat HTTP/1.1\r\nHost: x\r\n"
            + UPGRADE
            + KEY
            + b"Sec-WebSocket-Version: 8\r\n\r\n",
            b"426",
            b"Sec-WebSocket-Version: 13",
        ),
        (b"GET /chat HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", b"431", b""),
        (b"GET /chat HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 200 + b"\r\n", b"431", b"headers"),
        (
            b"GET /chat HTTP/1.1\r\nHost: x\r\n"
            + UPGRADE
            + b"Sec-WebSocket-Key: abc\r\n"
            + b"Sec-WebSocket-Version: 13\r\n\r\n",
            b"400",
            b"16 bytes",
        ),
    ],
)
async def test_hostile_requests_get_an_http_error_and_cost_one_connection(
    request_bytes: bytes, status: bytes, detail: bytes
) -> None:
    async with engine_server(accept_chat, serve_echo) as (port, outcomes):
        answer = await exchange(port, request_bytes)
        # the server is still there for the next client
        async with ws_connect(f"ws://127.0.0.1:{port}/chat", compression=None) as ws:
            await ws.send("still up")
            assert await ws.recv() == "still up"
    assert answer.startswith(b"HTTP/1.1 " + status)
    assert detail in answer
    assert outcomes[0] is None


async def test_a_slow_request_head_gets_408() -> None:
    async with engine_server(accept_chat, serve_echo, Limits(handshake_timeout=0.2)) as (port, _):
        answer = await exchange(port, b"GET /chat HTTP/1.1\r\n")
    assert answer.startswith(b"HTTP/1.1 408")
