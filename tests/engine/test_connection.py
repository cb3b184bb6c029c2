"""A connection's events and actions against websockets peers, in either role."""

from __future__ import annotations

import contextlib
import functools
import select
import socket
import struct
import time

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from anyio.abc import SocketAttribute
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from tests.engine.ws_peers import (
    LIMITS,
    CloseWatcher,
    accept_chat,
    echo,
    engine_server,
    open_client,
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
from wscenario.engine.errors import ConnectionClosed
from wscenario.engine.tcp_stream import adopt
from wscenario.engine.websocket import (
    WebSocketConnection,
    close_payload,
    connect,
    encode_frame,
)

pytestmark = pytest.mark.anyio


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


async def test_a_100_kib_message_arrives_whole_however_many_reads_it_takes() -> None:
    payload = bytes(range(256)) * 400
    text = "é" * 60_000  # 120,000 bytes: reads cut characters in two
    async with websockets_server(echo) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            await connection.send(SendMessage(payload))
            binary = await connection.receive()
            await connection.send(SendMessage(text))
            echoed = await connection.receive()
            await connection.aclose()
    assert binary == DataFrame("binary", payload, True, True)
    assert echoed == DataFrame("text", text, True, True)


async def test_a_frame_that_turns_out_not_to_be_utf8_fails_before_its_end_arrives() -> None:
    async def bad_then_silent(ws: ServerConnection) -> None:
        head = struct.pack("!BBQ", 0x81, 127, 200_000)
        ws.transport.write(head + b"a" * 100_000)
        await anyio.sleep(0.05)
        ws.transport.write(b"\xff" + b"a" * 1000)  # the other 98,999 bytes never come
        await ws.wait_closed()

    async with websockets_server(bad_then_silent) as port:
        with anyio.fail_after(10):
            connection = await open_client(port, Limits(max_message_size=1 << 20))
            events = [await connection.receive()]
            while not isinstance(events[-1], ConnectionLost):
                events.append(await connection.receive())
    lost = events[-1]
    assert isinstance(lost, ConnectionLost)
    assert (lost.kind, lost.code) == ("protocol", 1007)
    # what came before the bad byte is reported as wsproto reads it: pieces of text that
    # never ends, or none when wsproto finds the bad byte in the first bytes it reads
    assert all(isinstance(e, DataFrame) and not e.final for e in events[:-1])
    before = "".join(str(e.data) for e in events[:-1] if isinstance(e, DataFrame))
    assert before == "a" * len(before)
    assert len(before) <= 100_000


async def test_send_now_writes_in_the_callers_task_only_when_nothing_else_is_in_the_way() -> None:
    async with websockets_server(echo) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            assert connection.send_now(SendMessage("héllo"))
            assert await connection.receive() == DataFrame("text", "héllo", True, True)
            assert connection.send_now(SendMessage(b"\x00"))
            assert await connection.receive() == DataFrame("binary", b"\x00", True, True)
            connection.batching = True  # a message held back must not be overtaken
            assert not connection.send_now(SendMessage("held"))
            connection.batching = False
            await connection.aclose()
            assert not connection.send_now(SendMessage("late"))


async def test_what_send_now_leaves_unsent_makes_the_next_write_wait_its_turn() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        stream = adopt(await anyio.connect_tcp("127.0.0.1", server.getsockname()[1]))
        raw = stream.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        peer, _ = server.accept()
        with peer:
            peer.setblocking(False)
            connection = WebSocketConnection(stream, client=True, limits=Limits())
            assert connection.send_now(SendMessage(b"x" * (8 << 20)))  # most of it waits
            room = select.poll()
            room.register(raw, select.POLLOUT)
            deadline = time.monotonic() + 5
            # the peer reads while this event loop does not run (poll blocks it): the kernel's
            # buffer empties, the transport's does not
            while not room.poll(5) and time.monotonic() < deadline:
                with contextlib.suppress(BlockingIOError):
                    while peer.recv(1 << 20):
                        pass
            assert room.poll(0)  # the socket has room ...
            assert not connection.ready_to_write(10)  # ... but a write would wait its turn
            assert not connection.send_now(SendMessage(b"small"))
            await connection.abort()


async def test_a_message_passed_on_in_frames_that_cannot_go_holds_nothing_back() -> None:
    async with websockets_server(echo) as port:
        with anyio.fail_after(5):
            connection = await open_client(port)
            await connection.send_frame("a", first=True, final=False)
            await connection.send_frame("b", first=False, final=True)
            assert await connection.receive() == DataFrame("text", "ab", True, True)
            await connection.aclose()
            with pytest.raises(ConnectionClosed):
                await connection.send_frame("c", first=True, final=False)
            with pytest.raises(ConnectionClosed):  # at once: no message under way to wait for
                await connection.send(SendMessage("d"))


async def test_send_now_leaves_a_server_side_stream_to_send() -> None:
    answered: list[bool] = []

    async def serve(connection: WebSocketConnection) -> None:
        answered.append(connection.send_now(SendMessage("not now")))
        await connection.send(SendMessage("hi"))
        await connection.aclose()

    async with engine_server(accept_chat, serve) as (port, _):
        with anyio.fail_after(10):
            client = await ws_connect(f"ws://127.0.0.1:{port}/chat")
            assert await client.recv() == "hi"
            await client.close()
    assert answered == [False]  # the fake server's stream is anyio's own


async def test_frames_whose_heads_are_cut_by_the_network_still_arrive_whole() -> None:
    text = "é" * 40_000
    first = encode_frame(0x1, b"first", masked=False)
    second = encode_frame(0x2, b"\x00" * 300, masked=False)
    third = encode_frame(0x1, text.encode(), masked=False)
    pieces = [  # each written apart: a read ends inside every head
        first[:1],
        first[1:] + second[:3],
        second[3:] + third[:5],
        third[5:60_000],
        third[60_000:] + encode_frame(0x9, b"ping", masked=False)[:1],
        encode_frame(0x9, b"ping", masked=False)[1:] + encode_frame(0x1, b"last", masked=False),
    ]

    async def trickle(ws: ServerConnection) -> None:
        for piece in pieces:
            ws.transport.write(piece)
            await anyio.sleep(0.01)
        await ws.wait_closed()

    async with websockets_server(trickle) as port:
        with anyio.fail_after(10):
            connection = await open_client(port, Limits(max_message_size=1 << 20))
            events = [await connection.receive() for _ in range(5)]
            await connection.aclose()
    assert events == [  # whole, not in wsproto's pieces
        DataFrame("text", "first", True, True),
        DataFrame("binary", b"\x00" * 300, True, True),
        DataFrame("text", text, True, True),
        PingReceived(b"ping"),
        DataFrame("text", "last", True, True),
    ]


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
        # codes a peer may not send are reported as written; the session judges them
        (encode_frame(0x8, close_payload(2000, "odd"), masked=False), CloseReceived(2000, "odd")),
        (encode_frame(0x8, close_payload(1005, ""), masked=False), CloseReceived(1005, "")),
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
    ("payload", "code"),
    [(b"\x03", 1002), (b"\x03\xe8\xff", 1007)],
)
async def test_a_broken_close_frame_fails_the_connection(payload: bytes, code: int) -> None:
    watcher = CloseWatcher(raw=encode_frame(0x8, payload, masked=False))
    async with websockets_server(watcher) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            lost = await connection.receive()
    assert isinstance(lost, ConnectionLost)
    assert (lost.kind, lost.code) == ("protocol", code)
    assert not connection.close_received


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


async def test_aclose_while_another_task_reads() -> None:
    watcher = CloseWatcher()
    events: list[object] = []

    async def reader(connection: WebSocketConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                events.append(await connection.receive())

    async with websockets_server(watcher) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            async with anyio.create_task_group() as group:
                group.start_soon(reader, connection)
                await anyio.sleep(0.05)
                await connection.aclose()
    assert events[0] == CloseReceived(1000, "")
    assert watcher.seen == [(1000, "")]


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


async def test_a_message_before_a_bad_frame_can_be_answered_before_the_failure() -> None:
    received: list[str | bytes] = []
    closes: list[int | None] = []

    async def hello_then_reserved_opcode(ws: ServerConnection) -> None:
        # both frames in one write, so the client reads them together
        ws.transport.write(
            encode_frame(0x1, b"hello", masked=False) + encode_frame(0x3, b"", masked=False)
        )
        with contextlib.suppress(WsConnectionClosed):
            while True:
                received.append(await ws.recv())
        closes.append(ws.close_code)

    async with websockets_server(hello_then_reserved_opcode) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            first = await connection.receive()
            assert connection.lost is None
            await connection.send(SendMessage("hello"))
            lost = await connection.receive()
            await connection.aclose()
    assert first == DataFrame("text", "hello", True, True)
    assert isinstance(lost, ConnectionLost)
    assert (lost.kind, lost.code) == ("protocol", 1002)
    assert received == ["hello"]  # the echo went out before the close frame
    assert closes == [1002]


@pytest.mark.parametrize("later", [False, True], ids=["with the handshake", "in a later read"])
async def test_closing_with_a_failure_still_pending_sends_its_code_not_1000(later: bool) -> None:
    watcher = CloseWatcher(
        raw=encode_frame(0x1, b"hello", masked=False) + encode_frame(0x1, b"\xff", masked=False)
    )

    async def after_a_while(ws: ServerConnection) -> None:
        await anyio.sleep(0.05)  # the client has read the handshake answer alone by then
        await watcher(ws)

    async with websockets_server(after_a_while if later else watcher) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            first = await connection.receive()
            await connection.aclose()
    assert first == DataFrame("text", "hello", True, True)
    assert connection.lost is not None
    assert connection.lost.code == 1007
    assert watcher.codes == [1007]


async def test_an_abrupt_drop_mid_message_is_a_lost_connection() -> None:
    async def dropper(ws: ServerConnection) -> None:
        ws.transport.write(b"\x82\x7e\x10\x00" + b"z" * 100)  # 4096 bytes announced, 100 sent
        await anyio.sleep(0.05)
        ws.transport.abort()

    async with websockets_server(dropper) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            lost = await connection.receive()
            again = await connection.receive()
    # the frame's 100 bytes are held until it is whole, which it never is
    assert isinstance(lost, ConnectionLost)
    assert lost.kind in ("eof", "reset")
    assert again is lost


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


async def test_a_message_sent_during_a_fragmented_one_waits_for_its_end() -> None:
    async def interleaver(connection: WebSocketConnection) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(functools.partial(connection.send_fragmented, "slow", 4, delay=0.02))
            await anyio.sleep(0.01)
            await connection.send(SendMessage("quick"))
        await connection.aclose()

    async with engine_server(accept_chat, interleaver) as (port, _):
        with anyio.fail_after(10):
            async with ws_connect(f"ws://127.0.0.1:{port}/chat", compression=None) as ws:
                assert [await ws.recv(), await ws.recv()] == ["slow", "quick"]


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


async def test_a_burst_of_frames_in_one_write_arrives_in_order() -> None:
    """Whole one-frame messages, control frames and fragments read together keep their order."""
    burst = b"".join(
        [
            encode_frame(0x1, b"a", masked=False),
            encode_frame(0x2, b"b", masked=False),
            encode_frame(0x9, b"p", masked=False),
            encode_frame(0x1, b"c", masked=False, fin=False),
            encode_frame(0x0, "é".encode(), masked=False),
            encode_frame(0x1, b"x" * 300, masked=False),
            encode_frame(0x8, close_payload(1000, "bye"), masked=False),
            encode_frame(0x1, b"after the close", masked=False),
        ]
    )

    async with websockets_server(CloseWatcher(raw=burst)) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            events = [await connection.receive() for _ in range(7)]
            await connection.send(SendClose(1000))
            with pytest.raises(ConnectionClosed):
                await connection.receive()
            await connection.aclose()
    assert events == [
        DataFrame("text", "a", True, True),
        DataFrame("binary", b"b", True, True),
        PingReceived(b"p"),
        DataFrame("text", "c", True, False),
        DataFrame("text", "é", False, True),
        DataFrame("text", "x" * 300, True, True),
        CloseReceived(1000, "bye"),
    ]


class _FailingObserver:
    """An observer whose end-of-transport note fails (as a full disk would make it)."""

    def frame_sent(self, data: bytes) -> None:
        pass

    def event_received(self, event: WireEvent) -> None:
        pass

    def dropped(self, *, rst: bool) -> None:
        pass

    def transport_closed(self) -> None:
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("ending", ["abort", "aclose"])
async def test_the_socket_is_closed_even_when_the_observer_fails(ending: str) -> None:
    watcher = CloseWatcher()
    async with websockets_server(watcher) as port:
        with anyio.fail_after(10):
            connection = await open_client(port)
            connection.observer = _FailingObserver()
            with pytest.raises(OSError, match="No space left"):
                await (connection.abort() if ending == "abort" else connection.aclose())
            for _ in range(500):  # until the server sees the connection end
                if watcher.codes:
                    break
                await anyio.sleep(0.01)
    assert watcher.codes in ([1006], [1000])
