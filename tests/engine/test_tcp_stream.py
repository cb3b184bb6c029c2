"""TCP streams read ahead and written without a pass through the loop, against anyio peers."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from anyio.abc import SocketAttribute
from anyio.streams.stapled import StapledByteStream

from tests.engine.loop_turns import loop_turns
from wscenario.engine.tcp_stream import YIELD_EVERY, TcpStream, adopt

pytestmark = pytest.mark.anyio

MOST_READ_AT_ONCE = 256 * 1024
"""The most an asyncio socket transport reads in one go."""


async def listen() -> anyio.abc.SocketListener:
    """A plain anyio listener on a free loopback port."""
    listeners = await anyio.create_tcp_listener(local_host="127.0.0.1")
    (listener,) = listeners.listeners
    assert isinstance(listener, anyio.abc.SocketListener)
    return listener


@asynccontextmanager
async def pair(
    *, adopt_accepted: bool = False
) -> AsyncIterator[tuple[TcpStream, anyio.abc.SocketStream]]:
    """A connected (adopted stream, plain anyio peer), the adopted side connecting by default."""
    listener = await listen()
    async with listener:
        port = listener.extra(SocketAttribute.local_port)
        connected = await anyio.connect_tcp("127.0.0.1", port)
        accepted = await listener.accept()
        ours, peer = (accepted, connected) if adopt_accepted else (connected, accepted)
        stream = adopt(ours)
        assert isinstance(stream, TcpStream)
        try:
            yield stream, peer
        finally:
            await stream.aclose()
            await peer.aclose()


async def read_exactly(stream: anyio.abc.ByteStream, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        got += await stream.receive()
    return bytes(got)


async def test_bytes_arrive_in_order_and_are_cut_at_max_bytes() -> None:
    async with pair() as (stream, peer):
        await peer.send(b"hello world")
        assert await stream.receive(5) == b"hello"
        assert await stream.receive(100) == b" world"
        await peer.send(b"more")
        assert await stream.receive() == b"more"


async def test_bytes_read_before_adoption_are_kept() -> None:
    listener = await listen()
    async with listener:
        port = listener.extra(SocketAttribute.local_port)
        async with await anyio.connect_tcp("127.0.0.1", port) as peer:
            accepted = await listener.accept()
            for word in (b"one", b"two", b"three", b"four"):
                await peer.send(word)
                await anyio.sleep(0.02)  # the accepted transport reads each into anyio's queue
            await peer.send_eof()
            await anyio.sleep(0.02)
            stream = adopt(accepted)
            assert isinstance(stream, TcpStream)
            assert await stream.receive(6) == b"onetwo"  # reads that came in, joined
            assert await stream.receive(4) == b"thre"  # ... or cut
            assert await stream.receive() == b"efour"
            with pytest.raises(anyio.EndOfStream):
                await stream.receive()
            await stream.aclose()


async def test_a_stream_that_is_not_an_anyio_socket_stays_as_it_is() -> None:
    send, receive = anyio.create_memory_object_stream[bytes](1)
    stapled = StapledByteStream(send, receive)  # type: ignore[arg-type]
    assert adopt(stapled) is stapled
    send.close()
    receive.close()


async def test_a_closed_socket_stream_is_not_adopted() -> None:
    listener = await listen()
    async with listener:
        port = listener.extra(SocketAttribute.local_port)
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.aclose()
        assert adopt(stream) is stream


async def test_end_of_stream_closed_and_broken_are_anyio_s() -> None:
    async with pair() as (stream, peer):
        await peer.send(b"last")
        await peer.send_eof()
        assert await stream.receive() == b"last"
        with pytest.raises(anyio.EndOfStream):
            await stream.receive()
        await stream.send(b"still writable after the peer's FIN")
        assert await peer.receive() == b"still writable after the peer's FIN"
    async with pair() as (stream, peer):
        raw = peer.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await peer.aclose()  # a reset
        await anyio.sleep(0.05)
        with pytest.raises(anyio.BrokenResourceError):
            await stream.receive()
        with pytest.raises(anyio.BrokenResourceError):
            await stream.send(b"x")
    async with pair() as (stream, _peer):
        await stream.aclose()
        with pytest.raises(anyio.ClosedResourceError):
            await stream.receive()
        with pytest.raises(anyio.ClosedResourceError):
            await stream.send(b"x")


async def test_closing_wakes_a_waiting_reader() -> None:
    async with pair() as (stream, _peer):
        raised: list[type[BaseException]] = []

        async def read() -> None:
            try:
                await stream.receive()
            except anyio.ClosedResourceError as exc:
                raised.append(type(exc))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            await stream.aclose()
        assert raised == [anyio.ClosedResourceError]


async def test_bytes_that_arrive_while_the_reader_is_away_wait_in_the_kernel() -> None:
    """A peer that floods a busy reader fills its kernel buffers, not the reader's memory."""
    flood = b"z" * (8 * 1024 * 1024)
    async with pair(adopt_accepted=True) as (stream, peer):
        with anyio.move_on_after(0.5) as flooding:
            await peer.send(flood)
        assert flooding.cancelled_caught  # the reader's side stopped taking bytes
        protocol = stream._protocol
        assert 0 < sum(map(len, protocol.chunks)) <= MOST_READ_AT_ONCE
        assert not stream._transport.is_reading()
        first = await stream.receive(len(flood))  # what was read before the reader came back
        assert first == flood[: len(first)]
        got = first + await read_exactly(stream, 3 * MOST_READ_AT_ONCE)
        assert got == flood[: len(got)]


async def test_a_reader_that_keeps_up_is_never_stopped() -> None:
    async with pair() as (stream, peer):
        paused = 0
        transport = stream._transport
        pause = transport.pause_reading

        def counted() -> None:
            nonlocal paused
            paused += 1
            pause()

        transport.pause_reading = counted  # type: ignore[method-assign]
        for n in range(50):
            await peer.send(b"%d" % n)
            assert await stream.receive() == b"%d" % n
        assert paused == 0
        assert transport.is_reading()


async def test_send_waits_until_the_kernel_took_everything() -> None:
    big = bytes(range(256)) * (64 * 1024)  # 16 MiB: more than the kernel buffers hold
    async with pair(adopt_accepted=True) as (stream, peer):  # a peer that reads when asked
        done = anyio.Event()

        async def write() -> None:
            await stream.send(big)
            done.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(write)
            await anyio.sleep(0.2)
            assert not done.is_set()  # the peer does not read: the bytes wait
            assert await read_exactly(peer, len(big)) == big
            await done.wait()


async def test_send_nowait_writes_once_nothing_waits_and_the_next_send_waits_for_it() -> None:
    big = bytes(range(256)) * (64 * 1024)  # 16 MiB: more than the kernel buffers hold
    async with pair(adopt_accepted=True) as (stream, peer):
        sock = stream.extra(SocketAttribute.raw_socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        assert stream.send_nowait(b"first ")
        assert stream.send_nowait(big)  # returns at once: the kernel's share went, the rest waits
        assert stream.unsent
        assert not stream.send_nowait(b"refused")  # bytes still wait: nothing is written
        done = anyio.Event()

        async def write() -> None:
            await stream.send(b" last")
            done.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(write)
            await anyio.sleep(0.1)
            assert not done.is_set()  # the send waits behind what send_nowait left
            expected = b"first " + big + b" last"
            assert await read_exactly(peer, len(expected)) == expected
            await done.wait()
        assert stream.send_nowait(b"!")  # all gone: writes go at once again
        assert await read_exactly(peer, 1) == b"!"
        await stream.aclose()
        assert not stream.send_nowait(b"closed")


async def test_sends_the_kernel_takes_at_once_still_let_other_tasks_run() -> None:
    async with pair() as (stream, peer):
        async with loop_turns() as turns:
            before = turns()
            for _ in range(YIELD_EVERY - 1):
                await stream.send(b"m")
            assert turns() == before  # no pass through the loop for a quick send
            await stream.send(b"m")
            assert turns() > before  # ... but one every YIELD_EVERY
        assert await read_exactly(peer, YIELD_EVERY) == b"m" * YIELD_EVERY


async def test_send_nowait_declines_the_quick_write_that_owes_the_loop_a_pass() -> None:
    async with pair(adopt_accepted=True) as (stream, peer):
        async with loop_turns() as turns:
            before = turns()
            written = 0
            while stream.send_nowait(b"m"):
                written += 1
            assert written == YIELD_EVERY - 1  # the next one is send's, and it yields
            assert turns() == before
            await stream.send(b"m")
            assert turns() > before
        assert stream.send_nowait(b"m")  # counted afresh after the pass
        assert await read_exactly(peer, YIELD_EVERY + 1) == b"m" * (YIELD_EVERY + 1)


async def test_send_eof_and_socket_attributes() -> None:
    async with pair() as (stream, peer):
        assert stream.extra(SocketAttribute.remote_address) == peer.extra(
            SocketAttribute.local_address
        )
        assert stream.extra(SocketAttribute.raw_socket).type == socket.SOCK_STREAM
        await stream.send(b"bye")
        await stream.send_eof()
        assert await read_exactly(peer, 3) == b"bye"
        with pytest.raises(anyio.EndOfStream):
            await peer.receive()
        await peer.send(b"answer")
        assert await stream.receive() == b"answer"


async def test_tasks_that_send_at_once_each_return_once_the_kernel_took_their_bytes() -> None:
    big = b"x" * (8 << 20)
    async with pair(adopt_accepted=True) as (stream, peer):
        done: list[str] = []

        async def send(name: str) -> None:
            await stream.send(big)
            done.append(name)

        with anyio.fail_after(5):  # before, the first writer waited forever
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(send, "a")
                tasks.start_soon(send, "b")
                await anyio.wait_all_tasks_blocked()
                assert done == []  # both wait: the peer does not read yet
                assert len(await read_exactly(peer, 2 * len(big))) == 2 * len(big)
        assert sorted(done) == ["a", "b"]


async def test_a_second_reader_is_refused_and_max_bytes_must_be_positive() -> None:
    async with pair() as (stream, peer):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(stream.receive)
            await anyio.wait_all_tasks_blocked()
            with anyio.fail_after(2), pytest.raises(anyio.BusyResourceError):
                await stream.receive()
            await peer.send(b"for the first reader")
        with pytest.raises(ValueError, match="positive"):
            await stream.receive(0)
