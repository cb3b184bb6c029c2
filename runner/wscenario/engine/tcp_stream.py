"""TCP streams shaped for a WebSocket connection's traffic, on asyncio.

anyio's asyncio socket stream stops the transport reading after every ``receive`` and starts
it again at the next (two ``epoll_ctl`` calls per read), and each ``send`` passes through the
event loop even when the kernel took every byte at once. A connection that answers message
after message pays both on every message. ``adopt`` takes over a freshly opened or accepted
anyio stream's transport with a protocol that:

* leaves the transport reading while the reader keeps coming back for more before bytes
  arrive (one message at a time, the common case, costs no ``epoll_ctl``), and stops it only
  when bytes arrive while the reader is busy elsewhere: the next ones then wait in the
  kernel, where TCP pushes back on the peer, and the reader's next reads take what came
  meanwhile in large pieces;
* returns from ``send`` without a pass through the event loop when the kernel took the bytes
  (every ``YIELD_EVERY`` such sends it passes anyway, so a task that only sends lets others
  run), and otherwise waits until the kernel took them all, as anyio does.

Clients adopt their streams (``run``, ``replay --against``, the recording proxy's upstream);
the fake server does not: the pause between two reads lets a pipelining client's burst pile
up in the kernel and be answered in one write, which such clients take in far more cheaply
than one answer per message (``bench/bench_server.py`` measures both ways of loading it).

A ``receive`` that finds bytes waiting returns them without a pass through the loop either:
what waits is little (what came in before the transport was stopped), so a reader still
waits for more soon. A large read is handed on in ``max_bytes`` parts, each byte copied once.

Everything else is anyio's: end of stream, a broken or closed stream raise anyio's
exceptions, and the socket's attributes (``SocketAttribute``) are there. A stream that is not
a plain anyio socket stream on asyncio (trio, a test's stream, a future anyio) is returned as
it is: ``adopt`` reaches into anyio's stream for its transport and read queue, so an anyio
that renames them costs the speed-up only (and ``tests/engine/test_tcp_stream.py`` fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque

import anyio
import anyio.abc
import anyio.lowlevel

YIELD_EVERY = 16
"""Sends in a row that do not wait, after which one passes through the event loop."""


def adopt(stream: anyio.abc.ByteStream) -> anyio.abc.ByteStream:
    """``stream`` served by a ``TcpStream`` when it is an anyio socket stream on asyncio.

    Call it before anything reads from or writes to ``stream``: bytes it has already read
    are carried over; the old object must not be used afterwards.
    """
    transport = getattr(stream, "_transport", None)
    old = getattr(stream, "_protocol", None)
    if (
        not isinstance(transport, asyncio.Transport)
        or transport.is_closing()
        or not isinstance(getattr(old, "read_queue", None), deque)
    ):
        return stream
    protocol = _Reading(transport)
    protocol.chunks.extend(old.read_queue)  # type: ignore[union-attr]
    protocol.eof = bool(getattr(old, "is_at_eof", False))
    transport.set_protocol(protocol)
    transport.set_write_buffer_limits(0)
    return TcpStream(transport, protocol)


class _Reading(asyncio.Protocol):
    """Keeps what arrives for the one reader and wakes it; stops reading while it is away."""

    __slots__ = ("arrived", "chunks", "drained", "eof", "error", "lost", "taken", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.chunks: deque[bytes] = deque()
        self.taken = 0  # bytes of the first chunk already handed on
        self.eof = False
        self.lost = False
        self.error: Exception | None = None
        self.arrived: asyncio.Future[None] | None = None  # the reader waits on it
        self.drained: asyncio.Future[None] | None = None  # the writer waits on it

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        arrived = self.arrived
        if arrived is None:  # the reader is busy: let what follows wait in the kernel
            if self.transport.is_reading():
                self.transport.pause_reading()
        elif not arrived.done():
            arrived.set_result(None)

    def eof_received(self) -> bool:
        self.eof = True
        _wake(self.arrived)
        return True  # keep the transport open for writing, as anyio does

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        self.error = exc
        _wake(self.arrived)
        _wake(self.drained)

    def pause_writing(self) -> None:
        """The transport holds bytes the kernel has not taken: ``send`` waits for them."""

    def resume_writing(self) -> None:
        _wake(self.drained)

    def take(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of the oldest bytes waiting (there are some), in one piece.

        A read larger than ``max_bytes`` is handed on in parts, each byte copied once.
        """
        chunks = self.chunks
        start = self.taken
        chunk = chunks[0]
        end = start + max_bytes
        if end < len(chunk):  # part of this read; the rest stays for the next take
            self.taken = end
            return chunk[start:end]
        chunks.popleft()
        self.taken = 0
        if start:
            chunk = chunk[start:]
        if not chunks or len(chunk) == max_bytes:
            return chunk
        parts = [chunk]  # several reads came in: hand them on together
        size = len(chunk)
        while chunks and size + len(chunks[0]) <= max_bytes:
            parts.append(chunks.popleft())
            size += len(parts[-1])
        return b"".join(parts) if len(parts) > 1 else chunk

    async def wait_for_bytes(self) -> None:
        """Until bytes or the end arrive (or the stream is closed), reading meanwhile.

        Raises:
            anyio.BusyResourceError: another task is already waiting to read.
        """
        if self.arrived is not None:
            raise anyio.BusyResourceError("reading from")
        transport = self.transport
        if not transport.is_reading() and not transport.is_closing():
            transport.resume_reading()
        self.arrived = arrived = asyncio.get_running_loop().create_future()
        try:
            await arrived
        finally:
            self.arrived = None

    async def wait_for_drain(self) -> None:
        """Until the kernel took the bytes the transport holds, or the connection is lost.

        Writers that wait at once wait together (a TLS stream writes from its reader too).
        """
        drained = self.drained
        if drained is None or drained.done():
            self.drained = drained = asyncio.get_running_loop().create_future()
        await asyncio.shield(drained)  # one writer's cancellation leaves the others waiting


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class TcpStream(anyio.abc.SocketStream):
    """An anyio socket stream over an asyncio transport read by ``_Reading``.

    One task at a time receives (another gets ``anyio.BusyResourceError``, as from anyio);
    tasks that send at once each wait for the kernel to take what they wrote.
    ``receive`` returns bytes already waiting, and ``send`` a write the kernel took whole,
    without checking for cancellation (anyio checks at every call): a cancelled task
    stops at its next wait.
    """

    __slots__ = ("_closed", "_protocol", "_quick_sends", "_transport")

    def __init__(self, transport: asyncio.Transport, protocol: _Reading) -> None:
        self._transport = transport
        self._protocol = protocol
        self._closed = False
        self._quick_sends = 0

    @property
    def _raw_socket(self) -> socket.socket:
        sock: socket.socket = self._transport.get_extra_info("socket")
        return sock

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """The next bytes (at most ``max_bytes``), waiting for them if none are there yet."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        protocol = self._protocol
        if not protocol.chunks:  # bytes already waiting are returned without a checkpoint
            if protocol.eof or self._closed:
                await anyio.lowlevel.checkpoint()
            else:
                await protocol.wait_for_bytes()
        if protocol.chunks and not self._closed:
            return protocol.take(max_bytes)
        if self._closed:
            raise anyio.ClosedResourceError
        if protocol.error is not None:
            raise anyio.BrokenResourceError from protocol.error
        raise anyio.EndOfStream

    async def send(self, item: bytes) -> None:
        """Write ``item``; return once the kernel has taken all of it."""
        protocol = self._protocol
        transport = self._transport
        self._check_writable()
        transport.write(item)
        if transport.get_write_buffer_size():
            self._quick_sends = 0
            while transport.get_write_buffer_size() and not protocol.lost and not self._closed:
                await protocol.wait_for_drain()
            self._check_writable()
            return
        self._quick_sends += 1
        if self._quick_sends >= YIELD_EVERY:
            self._quick_sends = 0
            await anyio.lowlevel.checkpoint()

    @property
    def unsent(self) -> int:
        """Bytes written that the kernel has not taken yet: they wait in the transport."""
        return self._transport.get_write_buffer_size()

    def send_nowait(self, item: bytes) -> bool:
        """Write ``item`` without waiting, if nothing written before is still waiting.

        What the kernel does not take at once stays in the transport; the next ``send`` waits
        for it to go. ``False`` (nothing written) while earlier bytes wait or the stream
        cannot be written to: ``send`` then waits, or raises, as it should. It counts with
        ``send``'s quick writes: at the ``YIELD_EVERY``-th in a row it declines too, so the
        caller's ``send`` passes through the event loop.
        """
        transport = self._transport
        if (
            self._closed
            or self._protocol.lost
            or transport.is_closing()
            or transport.get_write_buffer_size()
            or self._quick_sends >= YIELD_EVERY - 1
        ):
            return False
        transport.write(item)
        self._quick_sends += 1
        return True

    def _check_writable(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        if self._protocol.lost or self._transport.is_closing():
            raise anyio.BrokenResourceError from self._protocol.error

    async def send_eof(self) -> None:
        """Shut the sending half (a FIN), when the transport still can."""
        with contextlib.suppress(OSError, RuntimeError):
            self._transport.write_eof()

    async def aclose(self) -> None:
        """Close at once (what the kernel has not sent yet is dropped), as anyio does."""
        self._closed = True
        self._transport.abort()
        _wake(self._protocol.arrived)
        _wake(self._protocol.drained)
        await anyio.lowlevel.checkpoint()
