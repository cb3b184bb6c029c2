"""Write batching: frames held back while ``batching`` is set leave together, in order.

The connection is checked over a real loopback socket whose far end is read with wsproto's
own frame parser; the fake server's use of batching is checked with the ``websockets`` client.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import ByteStream, SocketListener, SocketStream
from websockets.asyncio.client import connect
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import Frame, FrameProtocol, Opcode

from wscenario.core.model import Limits, ServerSpec
from wscenario.core.scenario_loader import load_scenario
from wscenario.core.wire import SendClose, SendMessage, SendPing, WireEvent
from wscenario.engine.connection import OUTBOX_SIZE, QUICK_WRITE, WebSocketConnection
from wscenario.engine.deflate import CappedDeflate, negotiate
from wscenario.engine.errors import ConnectionClosed
from wscenario.engine.frames import encode_frame
from wscenario.engine.server import FakeServer, Route, bound_port, open_listener
from wscenario.engine.server_driver import ServerDriver
from wscenario.engine.steps import StepRunner

pytestmark = pytest.mark.anyio


class CountingStream(ByteStream):
    """A byte stream that remembers every ``send`` made through it."""

    def __init__(self, inner: SocketStream) -> None:
        self.inner = inner
        self.writes: list[bytes] = []

    async def send(self, item: bytes) -> None:
        self.writes.append(item)
        await self.inner.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.inner.receive(max_bytes)

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def extra_attributes(self) -> Any:
        return self.inner.extra_attributes


class Observer:
    """Remembers the frames the connection reports as written."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def frame_sent(self, data: bytes) -> None:
        self.sent.append(data)

    def event_received(self, event: WireEvent) -> None:
        pass

    def dropped(self, *, rst: bool) -> None:
        pass

    def transport_closed(self) -> None:
        pass


@asynccontextmanager
async def server_side(
    deflate: CappedDeflate | None = None,
) -> AsyncIterator[tuple[WebSocketConnection, CountingStream, SocketStream]]:
    """A server-side connection over loopback, its counting stream, and the raw far end."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = bound_port(listener)
    async with listener:
        far = await anyio.connect_tcp("127.0.0.1", port)
        socket_listener = listener.listeners[0]
        assert isinstance(socket_listener, SocketListener)
        near = await socket_listener.accept()
        stream = CountingStream(near)
        connection = WebSocketConnection(
            stream, client=False, limits=Limits(close_timeout=1.0), deflate=deflate
        )
        async with far:
            yield connection, stream, far
            await connection.abort()


async def frames_from(far: SocketStream, count: int) -> list[tuple[Opcode, object]]:
    """Read ``count`` whole frames from the raw far end with wsproto's parser."""
    parser = FrameProtocol(client=True, extensions=[])
    frames: list[tuple[Opcode, object]] = []
    pieces: list[Frame] = []
    with anyio.fail_after(2):
        while len(frames) < count:
            parser.receive_bytes(await far.receive())
            for piece in parser.received_frames():
                pieces.append(piece)
                if piece.frame_finished:
                    payloads = [p.payload for p in pieces]
                    whole = payloads[0] if len(payloads) == 1 else b"".join(payloads)  # type: ignore[arg-type]
                    frames.append((pieces[0].opcode, whole))
                    pieces = []
    return frames


async def test_held_frames_leave_in_one_write_in_order() -> None:
    async with server_side() as (connection, stream, far):
        observer = Observer()
        connection.observer = observer
        connection.batching = True
        await connection.send(SendMessage("one"))
        await connection.send(SendMessage(b"two"))
        await connection.send(SendPing(b"three"))
        assert stream.writes == []
        assert observer.sent == []
        assert connection.holding
        await connection.flush()
        assert len(stream.writes) == 1
        assert not connection.holding
        assert len(observer.sent) == 3
        frames = await frames_from(far, 3)
    assert frames == [
        (Opcode.TEXT, "one"),
        (Opcode.BINARY, b"two"),
        (Opcode.PING, b"three"),
    ]


async def test_a_close_frame_takes_the_held_frames_with_it_first() -> None:
    async with server_side() as (connection, stream, far):
        connection.batching = True
        await connection.send(SendMessage("before the close"))
        await connection.send(SendClose(4000, "bye"))
        assert len(stream.writes) == 1
        frames = await frames_from(far, 2)
    assert frames[0] == (Opcode.TEXT, "before the close")
    assert frames[1][0] is Opcode.CLOSE


async def test_without_batching_every_message_is_its_own_write() -> None:
    async with server_side() as (connection, stream, far):
        await connection.send(SendMessage("a"))
        await connection.send(SendMessage("b"))
        assert len(stream.writes) == 2
        assert [payload for _, payload in await frames_from(far, 2)] == ["a", "b"]


async def test_held_bytes_past_the_outbox_size_are_written_at_once() -> None:
    half = b"x" * (OUTBOX_SIZE // 2 + 1)
    async with server_side() as (connection, stream, far):
        connection.batching = True
        await connection.send(SendMessage(half))
        assert stream.writes == []
        await connection.send(SendMessage(half))
        assert len(stream.writes) == 1
        assert not connection.holding
        assert [payload for _, payload in await frames_from(far, 2)] == [half, half]


async def test_a_drop_writes_the_held_frames_before_cutting() -> None:
    async with server_side() as (connection, _, far):
        connection.batching = True
        await connection.send(SendMessage("last words"))
        await connection.abort()
        frames = await frames_from(far, 1)
        assert frames[0] == (Opcode.TEXT, "last words")
        with anyio.fail_after(2), pytest.raises(anyio.EndOfStream):
            await far.receive()


async def test_flushing_on_a_connection_that_is_gone_raises() -> None:
    async with server_side() as (connection, _, far):
        connection.batching = True
        await connection.send(SendMessage("never read"))
        await far.aclose()
        with anyio.fail_after(2):
            assert isinstance(await connection.receive(), WireEvent)  # the loss
        with pytest.raises(ConnectionClosed):
            await connection.flush()


async def test_a_send_during_a_write_waits_its_turn_and_a_cancelled_one_is_gone() -> None:
    big = b"x" * (16 << 20)  # more than the socket buffers take: the write waits for a reader
    received: list[tuple[Opcode, object]] = []
    async with server_side() as (connection, _, far), anyio.create_task_group() as tasks:
        connection.batching = True
        await connection.send(SendMessage("held"))
        tasks.start_soon(connection.send, SendMessage(big))  # takes "held" with it
        await anyio.wait_all_tasks_blocked()
        assert connection.writing
        assert not connection.holding
        with anyio.move_on_after(0.1) as waited:
            await connection.send(SendMessage("cancelled"))  # not held back: it waits its turn
        assert waited.cancelled_caught, "the send did not wait for the write under way"
        assert not connection.holding

        async def read_three() -> None:
            received.extend(await frames_from(far, 3))

        tasks.start_soon(read_three)
        with anyio.fail_after(5):
            await connection.send(SendMessage("after"))
    assert [(opcode, len(payload)) for opcode, payload in received] == [  # type: ignore[arg-type]
        (Opcode.TEXT, len("held")),
        (Opcode.BINARY, len(big)),
        (Opcode.TEXT, len("after")),
    ]


async def test_a_write_that_waited_its_turn_leaves_before_one_sent_after_it() -> None:
    """When the write under way ends, the one waiting for its turn goes next, also while
    the turn passes to it: a message sent meanwhile is not held back to leave ahead of it."""
    big = b"x" * (16 << 20)
    received: list[tuple[Opcode, object]] = []

    async def first_writer(connection: WebSocketConnection) -> None:
        await connection.send(SendMessage(big))
        await connection.send(SendMessage("third"))  # the moment the turn passes on

    async with server_side() as (connection, _, far), anyio.create_task_group() as tasks:
        connection.batching = True
        tasks.start_soon(first_writer, connection)
        await anyio.wait_all_tasks_blocked()
        tasks.start_soon(connection.send, SendMessage("second"))  # waits its turn
        await anyio.wait_all_tasks_blocked()
        received.extend(await frames_from(far, 3))
    assert [payload for _, payload in received[1:]] == ["second", "third"]


async def test_compressed_messages_are_held_back_and_written_together_too() -> None:
    offer = (("Sec-WebSocket-Extensions", "permessage-deflate"),)
    agreed = negotiate(offer, 1 << 20)
    assert agreed is not None
    extension, answer = agreed
    async with server_side(extension) as (connection, stream, _far):
        observer = Observer()
        connection.observer = observer
        connection.batching = True
        for text in ("one", "two", "three"):
            await connection.send(SendMessage(text))
        assert stream.writes == []
        await connection.flush()
        assert len(stream.writes) == 1  # three compressed frames in one write
        client = PerMessageDeflate()
        client.finalize(answer.partition(";")[2])
        parser = FrameProtocol(client=True, extensions=[client])
        parser.receive_bytes(stream.writes[0])
        assert [frame.payload for frame in parser.received_frames()] == ["one", "two", "three"]
    assert observer.sent == [
        encode_frame(0x1, text.encode(), masked=False) for text in ("one", "two", "three")
    ]


async def test_ready_to_write_says_whether_the_socket_takes_a_small_write_at_once() -> None:
    chunk = b"x" * 8192
    async with server_side() as (connection, _, _far):
        assert connection.ready_to_write(100)
        assert not connection.ready_to_write(QUICK_WRITE + 1)
        with anyio.fail_after(5):
            while connection.ready_to_write(len(chunk)):  # the far end never reads
                await connection.send(SendMessage(chunk))
        await connection.abort()
        assert not connection.ready_to_write(100)


# ---------------------------------------------------------------------------- the fake server


@asynccontextmanager
async def serving(tmp_path: Path, text: str) -> AsyncIterator[int]:
    """A fake server running the scenario ``text`` (its steps, then its rules); its port."""
    path = tmp_path / "server.yaml"
    path.write_text(text)
    scenario = load_scenario(path)

    async def session(driver: ServerDriver) -> None:
        runner = StepRunner(scenario, driver, variables={}, env={})
        await runner.run_steps()
        await runner.serve_rules(poll=0.5)

    server = FakeServer({"/": Route(ServerSpec(path="/"), session)}, limits=Limits())
    listener = await open_listener("127.0.0.1", 0)
    async with anyio.create_task_group() as tasks:
        await tasks.start(server.serve, listener)
        yield bound_port(listener)
        server.stop()


def client(port: int) -> connect:
    """A websockets client for the fake server."""
    return connect(f"ws://127.0.0.1:{port}/", compression=None, proxy=None)


ECHO = """\
wscenario: 1
name: echo
server: {path: /}
steps: []
rules:
  - on: messageReceive
    send: {echo: true}
"""

SLOW_ANSWERS = """\
wscenario: 1
name: slow answers
server: {path: /}
steps:
  - expect: connect
  - sleep: 0.3s
  - expect: {messageReceive: a}
  - send: ack a
  - sleep: 1s
  - expect: {messageReceive: b}
  - send: ack b
"""


async def test_a_burst_of_messages_is_echoed_whole_and_in_order(tmp_path: Path) -> None:
    messages = [f"message {n}" for n in range(2000)]
    async with serving(tmp_path, ECHO) as port, client(port) as ws:
        with anyio.fail_after(10):
            for message in messages:
                await ws.send(message)
            received = [await ws.recv() for _ in messages]
    assert received == messages


async def test_an_answer_is_not_held_back_while_the_script_sleeps(tmp_path: Path) -> None:
    async with serving(tmp_path, SLOW_ANSWERS) as port, client(port) as ws:
        await ws.send("a")
        await ws.send("b")  # both queued while the script sleeps its first 0.3 s
        sent = time.monotonic()
        with anyio.fail_after(3):
            assert await ws.recv() == "ack a"
            first = time.monotonic() - sent
            assert await ws.recv() == "ack b"
    assert first < 0.9, "the answer to 'a' waited for the script's 1 s sleep"
