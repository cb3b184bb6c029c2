"""One established WebSocket connection over an anyio byte stream, either role.

The connection turns bytes into ``core.wire`` events with wsproto's frame parser (whole
one-frame messages at the front of a read, the common case, with ``engine.frame_reader``) and
writes ``core.wire`` actions as frames built by ``engine.frames``.

What the connection decides on its own:

* Limits: a message over ``max_message_size`` bytes (all fragments counted) or with more
  than ``max_fragments`` frames, and any protocol error wsproto reports (1002, 1007), end the
  connection: the close frame is sent, TCP is closed, and ``receive`` returns
  ``ConnectionLost(kind="protocol", code=...)``. Events that arrived before the bad frame are
  returned first, so a peer's valid messages can be answered before the connection fails.
* Pings are not answered unless ``auto_pong`` is set; close frames are never answered: the
  session decides (``send(SendClose(...))``).
* A close frame's code is reported as written, even one a peer may not send (OpenHarmony
  rewrites such codes rather than failing; ``frames.close_code_allowed`` tells them apart).
  A one-byte close payload (1002) or a reason that is not UTF-8 (1007) fails the connection.

After the end, ``receive`` returns the same ``ConnectionLost`` again (the connection was lost)
or raises ``ConnectionClosed`` (both close frames were exchanged, or the transport was closed
by this side); ``send`` raises ``ConnectionClosed``. To stop reading, stop calling
``receive``: the peer's writes then back up in TCP.

Writes can be batched: while ``batching`` is set, messages, pings and pongs are held back
(up to ``OUTBOX_SIZE`` bytes) and written together by the next write that is not held back or
by ``flush()``; a burst of answers then costs one ``send`` on the socket, not one each.
Everything else (close frames, fragmented messages, raw frames, the end of the transport)
writes what is held back first, so frames always leave in the order they were sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import struct
import sys
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from wsproto.frame_protocol import CloseReason, Frame, FrameProtocol, Opcode, ParseFailed

from wscenario.core.model import Limits, RawFrame
from wscenario.core.wire import (
    CloseReceived,
    CloseTransport,
    ConnectionLost,
    DataFrame,
    PingReceived,
    PongReceived,
    SendClose,
    SendMessage,
    SendPing,
    SendPong,
    WireAction,
    WireEvent,
)
from wscenario.engine.errors import (
    PEER_ERRORS,
    TRANSPORT_ERRORS,
    ConnectionClosed,
    lost_from,
)
from wscenario.engine.event_queue import asyncio_loop
from wscenario.engine.frame_reader import (
    FrameInParts,
    read_simple_frames,
)
from wscenario.engine.frames import close_payload, encode_frame, split_payload
from wscenario.engine.tcp_stream import TcpStream

if TYPE_CHECKING:
    from wscenario.engine.deflate import CappedDeflate

READ_SIZE = 64 * 1024
"""Bytes asked for per read: large enough for throughput, and the most one event can hold."""

OUTBOX_SIZE = 64 * 1024
"""Bytes of frames held back while ``batching``; past this they are written at once."""

QUICK_WRITE = 16 * 1024
"""The largest write ``ready_to_write`` vouches for. anyio's streams wait until everything
written is with the kernel, so a write must fit whole: Linux takes a write this size whole
into a socket it reports writable (short of memory pressure, when the writer waits for the
peer to read)."""

Address = tuple[str, int]

_FrameBuilder = Callable[[], tuple[bytes, bytes | None]]
"""Makes a frame to write (and what an observer is told instead) when its turn comes."""

_NO_CODE = -1
"""The code ``_FrameParser`` reports for a close frame without payload."""


class ConnectionObserver(Protocol):
    """Sees a connection's traffic as it happens (a transcript tap, say)."""

    def frame_sent(self, data: bytes) -> None:
        """Whole frames were written, as bytes on the wire."""

    def event_received(self, event: WireEvent) -> None:
        """An event came off the wire (before anyone takes it from ``receive``)."""

    def dropped(self, *, rst: bool) -> None:
        """This side cut the connection without a closing handshake."""

    def transport_closed(self) -> None:
        """The transport is closed: nothing more will be sent or received."""


class _FrameParser(FrameProtocol):
    """wsproto's frame parser, except that a close code is reported as written."""

    def idle(self) -> bool:
        """No bytes are buffered and no frame is half read: new bytes start a new frame."""
        decoder = self._frame_decoder
        return decoder.header is None and not len(decoder.buffer)

    def _process_close(self, frame: Frame) -> Frame:
        data = frame.payload
        assert isinstance(data, bytes | bytearray)
        if not data:
            return Frame(frame.opcode, (_NO_CODE, ""), frame.frame_finished, frame.message_finished)
        if len(data) == 1:
            return super()._process_close(frame)  # raises: a one-byte payload is broken
        try:
            reason = bytes(data[2:]).decode("utf-8")
        except UnicodeDecodeError as exc:
            message = f"Error decoding CLOSE reason: {exc}"
            raise ParseFailed(message, CloseReason.INVALID_FRAME_PAYLOAD_DATA) from exc
        code = int.from_bytes(data[:2], "big")
        return Frame(frame.opcode, (code, reason), frame.frame_finished, frame.message_finished)


class WebSocketConnection:
    """One established WebSocket connection, either role, over an anyio ``ByteStream``.

    Built by ``connect`` and ``accept``. One task at a time may call ``receive`` while others
    call ``send`` (sends are serialised) or ``aclose`` (which then lets that task read).

    Attributes:
        client: ``True`` on the client side (frames are masked).
        subprotocol: the one the handshake selected, if any.
        request_headers, response_headers: the opening handshake's headers, in order.
        local_address, remote_address: ``(host, port)`` when the stream is a socket.
        auto_pong: answer every ping with a pong before reporting it.
        observer: told about every frame written, event read, drop and the transport's end.
        batching: hold messages, pings and pongs back until ``flush()`` or the next write
            that is not held back.
    """

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        *,
        client: bool,
        limits: Limits,
        subprotocol: str | None = None,
        request_headers: tuple[tuple[str, str], ...] = (),
        response_headers: tuple[tuple[str, str], ...] = (),
        received: bytes = b"",
        auto_pong: bool = False,
        deflate: CappedDeflate | None = None,
    ) -> None:
        self.client = client
        self._limits = limits  # the deflate extension was made with their message size
        self.subprotocol = subprotocol
        self.request_headers = request_headers
        self.response_headers = response_headers
        self.auto_pong = auto_pong
        self.observer: ConnectionObserver | None = None
        self.batching = False
        self.local_address = stream_address(stream, SocketAttribute.local_address)
        self.remote_address = stream_address(stream, SocketAttribute.remote_address)
        self._stream = stream
        self._tcp = stream if isinstance(stream, TcpStream) else None  # writes without waiting
        self._parser = _FrameParser(client, [] if deflate is None else [deflate])
        self._deflate = deflate  # permessage-deflate, when the handshake agreed on it
        self._pending: deque[WireEvent] = deque()
        # writes take turns; asyncio's own lock costs less per write than anyio's, but shows
        # itself free while it passes to a waiting write, so whether writes are under way or
        # waiting is counted apart
        self._send_lock = asyncio.Lock() if asyncio_loop() else anyio.Lock(fast_acquire=True)
        self._writes = 0  # writes under way or waiting for their turn
        self._outbox: list[bytes] = []  # frames held back while batching
        self._outbox_told: list[bytes] = []  # what the observer is told of them (plain frames)
        self._outbox_size = 0
        # asks the kernel whether the socket has room: the poll, the socket, its number
        self._writable: tuple[select.poll, socket.socket, int] | None = None
        self._fragmenting: anyio.Event | None = None
        self._in_message = False
        self._unfinished: FrameInParts | None = None  # a simple frame still arriving
        self._head_start = b""  # the first bytes of a simple frame's head
        self._message_bytes = 0
        self._message_frames = 0
        self._close_sent = False
        self._close_received = False
        self._lost: ConnectionLost | None = None
        self._deferred: tuple[int, str] | None = None  # a failure behind events still pending
        self._transport_closed = False
        self._receiving = False
        self._peer_done = anyio.Event()  # the peer's close frame arrived, or the connection ended
        self._early = received  # bytes read with the handshake, not yet taken in

    # ---------------------------------------------------------------------------- state

    @property
    def limits(self) -> Limits:
        """The limits in force; set new ones (a server's route has its own) to apply them from
        now on, to inflating too."""
        return self._limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        self._limits = limits
        if self._deflate is not None:
            self._deflate.max_size = limits.max_message_size

    @property
    def close_sent(self) -> bool:
        """A close frame was written (by ``send(SendClose(...))`` or a limit)."""
        return self._close_sent

    @property
    def close_received(self) -> bool:
        """The peer's close frame arrived."""
        return self._close_received

    @property
    def holding(self) -> bool:
        """Frames are held back, waiting for ``flush()`` or the next write."""
        return bool(self._outbox)

    @property
    def writing(self) -> bool:
        """A write is under way (a new one would wait for it)."""
        return self._writes > 0 or self._fragmenting is not None

    @property
    def lost(self) -> ConnectionLost | None:
        """How the connection ended abnormally, once it has."""
        return self._lost

    # --------------------------------------------------------------------------- receive

    async def receive(self) -> WireEvent:
        """The next event: a piece of a message, a ping, a pong, a close, or the loss.

        Raises:
            ConnectionClosed: the closing handshake is complete or the transport was closed
                by this side, so nothing more can arrive.
        """
        self._receiving = True
        try:
            while not self._pending:
                if self._lost is not None:
                    return self._lost
                if self._transport_closed or (self._close_sent and self._close_received):
                    raise ConnectionClosed("the connection is closed")
                failure = self._deferred or (None if self._parser.idle() else self._parse())
                if failure is not None and self._pending:
                    self._deferred = failure  # what arrived before the bad frame comes first
                    break
                if failure is not None:
                    await self._fail(*failure)
                    break
                if self._pending:
                    break
                if self._early:  # what came with the handshake is read first
                    data, self._early = self._early, b""
                else:
                    try:
                        data = await self._stream.receive(READ_SIZE)
                    except TRANSPORT_ERRORS as exc:
                        await self._lose(self._lost or lost_from(exc))
                        break
                self._take_in(data)
            event = self._pending[0]
            if self.auto_pong and isinstance(event, PingReceived) and not self._close_sent:
                # answered before it is taken, so a cancelled receive loses no event
                await self._write_quietly(encode_frame(0xA, event.data, masked=self.client))
            return self._pending.popleft()
        finally:
            self._receiving = False

    def _take_in(self, data: bytes) -> None:
        """Queue the whole one-frame messages ``data`` starts with; the rest goes to wsproto.

        Only between messages, with wsproto holding nothing and no close frame received, so
        the events come in the order of the bytes; ``read_simple_frames`` leaves anything
        unusual (control frames, fragments, bad UTF-8, frames over the size limit...) to
        wsproto and to the checks of ``_parse``. A simple frame that spans reads is collected
        here until it is whole (``FrameInParts``), or handed to wsproto as it came if its
        text turns out not to be UTF-8.
        """
        if self._head_start:
            data = self._head_start + data
            self._head_start = b""
        unfinished = self._unfinished
        if unfinished is not None:
            rest = unfinished.take(data)
            if unfinished.failed:  # not UTF-8: wsproto reads the frame as it came and says so
                self._unfinished = None
                self._parser.receive_bytes(unfinished.received() + rest)
                return
            if unfinished.missing:
                return
            self._unfinished = None
            self._queue_message(unfinished.payload())
            data = rest
        if (
            data
            and not self._in_message
            and not self._close_received
            and self.limits.max_fragments > 0
            and self._parser.idle()
        ):
            read = read_simple_frames(
                data, masked=not self.client, max_size=self.limits.max_message_size
            )
            for payload in read.payloads:
                self._queue_message(payload)
            if read.unfinished is not None and not read.unfinished.failed:
                self._unfinished = read.unfinished
                return
            if read.used:
                data = data[read.used :]
            if read.head_cut:
                self._head_start = data  # the next read completes it
                return
        if data:
            self._parser.receive_bytes(data)

    def _queue_message(self, payload: str | bytes) -> None:
        """Queue a whole message that came in one frame."""
        kind: Literal["text", "binary"] = "text" if isinstance(payload, str) else "binary"
        self._queue(DataFrame(kind, payload, True, True, True))

    def _queue(self, event: WireEvent) -> None:
        self._pending.append(event)
        if self.observer is not None:
            self.observer.event_received(event)

    def _parse(self) -> tuple[int, str] | None:
        """Turn buffered bytes into pending events; ``(code, reason)`` on a protocol failure."""
        try:
            for frame in self._parser.received_frames():
                opcode = frame.opcode
                payload = frame.payload
                if isinstance(payload, tuple):  # a close frame, as _FrameParser reads it
                    code, reason = payload
                    self._close_received = True
                    self._peer_done.set()
                    self._queue(CloseReceived(None if code == _NO_CODE else code, reason))
                elif opcode is Opcode.PING:
                    self._queue(PingReceived(bytes(payload)))  # type: ignore[arg-type]
                elif opcode is Opcode.PONG:
                    self._queue(PongReceived(bytes(payload)))  # type: ignore[arg-type]
                else:
                    failure = self._count(payload, frame.frame_finished)
                    if failure is not None:
                        return failure
                    first = not self._in_message
                    final = frame.message_finished
                    self._in_message = not final
                    if final:
                        self._message_bytes = self._message_frames = 0
                    kind: Literal["text", "binary"] = "text" if opcode is Opcode.TEXT else "binary"
                    self._queue(DataFrame(kind, payload, first, final, frame.frame_finished))
        except ParseFailed as exc:
            return int(exc.code), str(exc)
        except PEER_ERRORS as exc:
            return 1002, str(exc)
        return None

    def _count(self, payload: str | bytes, frame_finished: bool) -> tuple[int, str] | None:
        if isinstance(payload, str) and not payload.isascii():
            self._message_bytes += len(payload.encode("utf-8", "surrogatepass"))
        else:
            self._message_bytes += len(payload)
        if self._message_bytes > self.limits.max_message_size:
            return 1009, f"message over {self.limits.max_message_size} bytes"
        if frame_finished:
            self._message_frames += 1
            if self._message_frames > self.limits.max_fragments:
                return 1009, f"message in more than {self.limits.max_fragments} fragments"
        return None

    async def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 §7.1.7): send the close frame, then close TCP."""
        lost = ConnectionLost(kind="protocol", message=reason, code=code)
        self._lost = lost
        self._queue(lost)
        self._peer_done.set()
        if not self._close_sent:
            self._close_sent = True
            frame = encode_frame(0x8, close_payload(code, reason), masked=self.client)
            with anyio.move_on_after(self.limits.close_timeout):
                await self._write_quietly(frame)
        await self._close_transport()

    async def _lose(self, lost: ConnectionLost) -> None:
        self._lost = lost
        self._queue(lost)
        self._peer_done.set()
        await self._close_transport()

    # ------------------------------------------------------------------------------ send

    async def send(self, action: WireAction) -> None:
        """Write one action: a message, ping, pong or close frame, or close the transport.

        A close frame's code is written as given (``None``: no payload); its reason is cut to
        123 bytes on a character boundary. Ping and pong payloads are written as given.

        Raises:
            ConnectionClosed: the connection ended, or a close frame was already sent.
        """
        if isinstance(action, SendMessage):
            if self._fragmenting is not None:
                await self._fragmenting.wait()
            await self._write_data(*_message_frame(action.data))
        elif isinstance(action, SendPing):
            await self._write(encode_frame(0x9, action.data, masked=self.client), batch=True)
        elif isinstance(action, SendPong):
            await self._write(encode_frame(0xA, action.data, masked=self.client), batch=True)
        elif isinstance(action, SendClose):
            payload = close_payload(action.code, action.reason)
            await self._write(encode_frame(0x8, payload, masked=self.client))
            self._close_sent = True
        elif isinstance(action, CloseTransport):
            await self.abort(rst=action.abort)

    async def _write_data(
        self, opcode: int, payload: bytes, *, fin: bool = True, batch: bool = True
    ) -> None:
        """Write one data frame (``opcode`` 0 continues a message), held back with others while
        ``batching`` if ``batch``; compressed when the handshake agreed on it, the observer then
        being told the plain frame."""
        deflate = self._deflate
        if deflate is None:
            frame = encode_frame(opcode, payload, masked=self.client, fin=fin)
            await self._write(frame, batch=batch)
            return
        first = opcode != 0

        def compressed() -> tuple[bytes, bytes | None]:
            # only once this write's turn has come: the compressor's state then never holds
            # a message that a write cancelled while waiting for its turn did not send
            rsv, packed = deflate.compress(self._parser, payload, first=first, fin=fin)
            frame = encode_frame(opcode, packed, masked=self.client, fin=fin, rsv=rsv)
            plain = None
            if self.observer is not None:
                plain = encode_frame(opcode, payload, masked=self.client, fin=fin)
            return frame, plain

        await self._write(b"", batch=batch, build=compressed)

    async def send_fragmented(
        self,
        data: str | bytes,
        parts: int,
        *,
        delay: float = 0.0,
        ping_between: bool = False,
    ) -> None:
        """Write one message as ``parts`` frames (a text message is split on byte boundaries).

        ``delay`` waits between frames; ``ping_between`` writes a ping after the first one.
        Other messages sent meanwhile wait until this one is complete.
        """
        opcode, encoded = _message_frame(data)
        pieces = split_payload(encoded, max(1, parts))
        while self._fragmenting is not None:
            await self._fragmenting.wait()
        self._fragmenting = anyio.Event()
        try:
            for index, piece in enumerate(pieces):
                if index and delay > 0:
                    await anyio.sleep(delay)
                final = index == len(pieces) - 1
                await self._write_data(opcode if index == 0 else 0x0, piece, fin=final, batch=False)
                if ping_between and index == 0 and not final:
                    await self._write(encode_frame(0x9, b"", masked=self.client))
        finally:
            self._end_fragmenting()

    async def send_frame(self, data: str | bytes, *, first: bool, final: bool) -> None:
        """Write one frame of a message as it came from elsewhere (a proxy passing it on).

        The message's ``first`` frame gives its type (text for ``str``); later ones continue
        it, and the ``final`` one ends it. Other messages sent meanwhile wait until it ends,
        as they do for ``send_fragmented``; pings and pongs may go out between its frames.
        """
        if first:
            while self._fragmenting is not None:
                await self._fragmenting.wait()
            if not final:
                self._fragmenting = anyio.Event()
        opcode, payload = _message_frame(data)
        try:
            await self._write_data(opcode if first else 0x0, payload, fin=final)
        except BaseException:
            self._end_fragmenting()  # a message cut short: what follows is not held back
            raise
        if final:
            self._end_fragmenting()

    def _end_fragmenting(self) -> None:
        done, self._fragmenting = self._fragmenting, None
        if done is not None:
            done.set()

    async def send_raw_frame(self, frame: RawFrame) -> None:
        """Write ``frame`` exactly as described (masked when this side is the client).

        The connection's own state is not changed: a raw close frame does not count as sent.
        """
        if frame.delay > 0:
            await anyio.sleep(frame.delay)
        rsv = (frame.rsv[0] << 6) | (frame.rsv[1] << 5) | (frame.rsv[2] << 4)
        await self._write(
            encode_frame(frame.opcode & 0xF, frame.data, masked=self.client, fin=frame.fin, rsv=rsv)
        )

    async def flush(self) -> None:
        """Write the frames held back while ``batching``, if any.

        Raises:
            ConnectionClosed: the connection ended before they could be written.
        """
        if self._outbox:
            await self._write(b"")

    async def _write(
        self,
        data: bytes,
        *,
        batch: bool = False,
        build: _FrameBuilder | None = None,
    ) -> None:
        if self._lost is not None or self._transport_closed:
            raise ConnectionClosed("the connection is closed", self._lost)
        if self._close_sent:
            raise ConnectionClosed("a close frame was already sent")
        told = None
        if batch and self.batching and not self._writes:  # else it waits behind those queued
            if build is not None:  # its turn has come: it is made now
                data, told = build()
                build = None
            if self._outbox_size + len(data) <= OUTBOX_SIZE:
                self._outbox.append(data)
                self._outbox_told.append(told or data)
                self._outbox_size += len(data)
                return
        try:
            await self._send_frames(data, build, told)
        except TRANSPORT_ERRORS as exc:
            self._lost = lost = self._lost or lost_from(exc)
            raise ConnectionClosed(lost.message, lost) from exc

    async def _write_quietly(self, data: bytes) -> None:
        with contextlib.suppress(*TRANSPORT_ERRORS):
            await self._send_frames(data)

    async def _send_frames(
        self, data: bytes, build: _FrameBuilder | None = None, told: bytes | None = None
    ) -> None:
        """Write the frames held back, then ``data`` (if any), in one ``send``, once the writes
        queued before it are done; the observer is told ``told`` in place of ``data`` (the
        plain frame of a compressed one). ``build``, when given, makes ``data`` and ``told``
        once the turn has come.

        Frames are held back only while no write is under way or queued, and taken only once
        the lock is held: a write cancelled while it waits for its turn takes nothing with it.
        """
        lock = self._send_lock
        self._writes += 1
        try:
            await lock.acquire()  # a free lock is taken without a pass through the event loop
            try:
                if build is not None:
                    data, told = build()
                frames, told_frames = self._outbox, self._outbox_told
                if frames:
                    self._outbox, self._outbox_told, self._outbox_size = [], [], 0
                    if data:
                        frames.append(data)
                        told_frames.append(told or data)
                elif data:
                    frames, told_frames = [data], [told or data]
                else:
                    return  # a flush that another write has done meanwhile
                await self._stream.send(b"".join(frames) if len(frames) > 1 else frames[0])
                self._observe_sent(told_frames)
            finally:
                lock.release()
        finally:
            self._writes -= 1

    def send_now(self, message: SendMessage) -> bool:
        """Write ``message`` in the caller's task, without waiting; whether it was written.

        Only on a ``TcpStream`` that holds nothing unsent, with no write under way or held
        back, no compression and no fragmented message being sent; otherwise the caller
        ``send``s it (or leaves it to a task that may wait). What the kernel does not take at
        once waits in the stream, and the next write waits for it: a peer that does not read
        holds back one message at most.
        """
        tcp = self._tcp
        if (
            tcp is None
            or self._busy_writing()
            or self.batching
            or self._deflate is not None
            or self._close_sent
        ):
            return False
        frame = encode_frame(*_message_frame(message.data), masked=self.client)
        if not tcp.send_nowait(frame):
            return False
        self._observe_sent([frame])
        return True

    def _busy_writing(self) -> bool:
        """A write would have to wait: one is under way or held back, or the connection is
        lost or closed."""
        return (
            self.writing or bool(self._outbox) or self._lost is not None or self._transport_closed
        )

    def ready_to_write(self, size: int) -> bool:
        """Whether a write of ``size`` bytes now would be taken at once, without waiting.

        True when nothing is held back, being written or still waiting to go (what
        ``send_now`` left), ``size`` is at most ``QUICK_WRITE`` and the kernel says the socket
        has room; a caller can then write in its own task rather than hand the write to one
        that may wait for a peer that does not read. Only on Linux, where a socket with room
        takes a write of that size whole.
        """
        if (
            size > QUICK_WRITE
            or self._busy_writing()
            or (self._tcp is not None and self._tcp.unsent)
        ):
            return False
        watch = self._writable
        if watch is None:
            sock = self._stream.extra(SocketAttribute.raw_socket, None)
            if sock is None or not sys.platform.startswith("linux"):
                return False
            poll = select.poll()
            poll.register(sock, select.POLLOUT)
            self._writable = watch = (poll, sock, sock.fileno())
        poll, sock, fd = watch
        if sock.fileno() != fd:  # closed by the event loop: the number may be another's now
            return False
        ready = poll.poll(0)
        return bool(ready) and ready[0][1] == select.POLLOUT

    def _observe_sent(self, frames: list[bytes]) -> None:
        if self.observer is not None:
            for frame in frames:
                if frame:
                    self.observer.frame_sent(frame)

    # ----------------------------------------------------------------------------- close

    async def abort(self, *, rst: bool = False) -> None:
        """Drop the connection without a close frame; ``rst`` resets it (SO_LINGER 0)."""
        if self._transport_closed:
            return
        if self._outbox:
            with anyio.move_on_after(self.limits.close_timeout):
                await self._write_quietly(b"")
        if rst:
            raw = self._stream.extra(SocketAttribute.raw_socket, None)
            if raw is not None:
                with contextlib.suppress(OSError):
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            if self._lost is None and not (self._close_sent and self._close_received):
                kind: Literal["reset", "eof"] = "reset" if rst else "eof"
                self._lost = ConnectionLost(kind=kind, message="connection dropped by this side")
                if self.observer is not None:
                    self.observer.dropped(rst=rst)
            self._transport_closed = True
            self._peer_done.set()
            if self.observer is not None:
                self.observer.transport_closed()
        finally:  # whatever an observer raises, the socket is closed
            await anyio.aclose_forcefully(self._stream)

    async def aclose(self) -> None:
        """Run the closing handshake (1000) within ``close_timeout``, then close TCP.

        A close frame already sent or received counts; a client then waits for the server to
        close TCP first. Events that arrive meanwhile are dropped. Safe to call more than once.
        """
        if self._transport_closed:
            return
        if self._deferred is None and not self._receiving:
            self._deferred = self._failure_already_read()
        if self._deferred is not None and self._lost is None:
            await self._fail(*self._deferred)
            return
        with anyio.move_on_after(self.limits.close_timeout):
            if self._lost is None and not self._close_sent:
                with contextlib.suppress(ConnectionClosed):
                    await self.send(SendClose(1000))
            if self._receiving:  # another task reads: it will see the answer
                await self._peer_done.wait()
            else:
                with contextlib.suppress(ConnectionClosed):
                    while self._lost is None and not self._close_received:
                        await self.receive()
                if self.client and self._lost is None:
                    await self._await_eof()
        await self._close_transport()

    def _failure_already_read(self) -> tuple[int, str] | None:
        """A protocol failure in the bytes already read but not yet parsed, if there is one."""
        if self._early:
            early, self._early = self._early, b""
            self._take_in(early)
        return None if self._parser.idle() else self._parse()

    async def _await_eof(self) -> None:
        """Client: the server closes TCP first (RFC 6455 §7.1.1); wait for that."""
        try:
            while await self._stream.receive(READ_SIZE):
                pass
        except TRANSPORT_ERRORS:
            pass

    async def _close_transport(self) -> None:
        if self._transport_closed:
            return
        if self._outbox and self._lost is None:
            with anyio.move_on_after(self.limits.close_timeout):
                await self._write_quietly(b"")
        self._transport_closed = True
        try:
            if self.observer is not None:
                self.observer.transport_closed()
        finally:  # whatever an observer raises, the socket is closed
            with (
                anyio.CancelScope(shield=True),
                anyio.move_on_after(self.limits.close_timeout),
                contextlib.suppress(*TRANSPORT_ERRORS),
            ):
                await self._stream.aclose()
            # a TLS stream that did not finish its goodbye in time still owes a socket close
            await anyio.aclose_forcefully(self._stream)


def stream_address(stream: anyio.abc.ByteStream, attribute: Any) -> Address | None:
    """The stream's local or remote ``(host, port)``, when it has one."""
    value = stream.extra(attribute, None)
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return None


def _message_frame(data: str | bytes) -> tuple[int, bytes]:
    """The opcode of a message's first frame and its payload: text as UTF-8, or binary."""
    if isinstance(data, str):
        return 0x1, data.encode("utf-8")
    return 0x2, data
