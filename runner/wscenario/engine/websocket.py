"""One WebSocket connection over an anyio byte stream, either role.

``connect`` (client) and ``accept`` (server) run the opening handshake with h11 under the
limits of ``core.model.Limits`` and return a ``WebSocketConnection``. The connection turns
bytes into ``core.wire`` events with wsproto's frame parser and writes ``core.wire`` actions as
frames it builds itself, so it can write anything a scenario asks for: odd close codes, close
frames without payload, fragments, raw frames with reserved opcodes or RSV bits.

What the connection decides on its own:

* Limits: a message over ``max_message_size`` bytes (all fragments counted) or with more
  than ``max_fragments`` frames, and any protocol error wsproto reports (1002, 1007), end the
  connection: the close frame is sent, TCP is closed, and ``receive`` returns
  ``ConnectionLost(kind="protocol", code=...)``.
* Pings are not answered unless ``auto_pong`` is set; close frames are never answered: the
  session decides (``send(SendClose(...))``).
* No extension is ever offered or accepted (permessage-deflate stays off).

After the end, ``receive`` returns the same ``ConnectionLost`` again (the connection was lost)
or raises ``ConnectionClosed`` (both close frames were exchanged, or the transport was closed
by this side); ``send`` raises ``ConnectionClosed``. To stop reading, stop calling
``receive``: the peer's writes then back up in TCP.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
import anyio.abc
import h11
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSStream
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed, XorMaskerSimple

from wscenario.core.model import Limits, RawFrame
from wscenario.core.wire import (
    CloseReceived,
    CloseTransport,
    ConnectionLost,
    ConnectRequest,
    DataFrame,
    HandshakeDone,
    HandshakeFailed,
    HandshakeFailureKind,
    PingReceived,
    PongReceived,
    SendClose,
    SendMessage,
    SendPing,
    SendPong,
    WireAction,
    WireEvent,
)
from wscenario.engine import tls
from wscenario.engine.errors import (
    PEER_ERRORS,
    TRANSPORT_ERRORS,
    ConnectionClosed,
    HandshakeError,
    TlsSetupError,
    connect_failure_from,
    lost_from,
)

READ_SIZE = 64 * 1024
"""Bytes asked for per read: large enough for throughput, and the most one event can hold."""

MAX_REJECT_BODY = 1024 * 1024
"""How much of a non-101 response body a client keeps."""

CLOSE_REASON_BYTES = 123
"""The longest close reason that fits a control frame (125 bytes minus the code)."""

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_SMALL_MASK = 1024
"""Up to this size, masking with one big-integer XOR is faster than byte translation."""

_TLS_HANDSHAKE_ERRORS: tuple[type[Exception], ...] = (*TRANSPORT_ERRORS, TimeoutError)
"""What a failed TLS handshake raises (``TimeoutError`` for its deadline)."""

REFUSAL_WRITE_TIMEOUT = 1.0
"""How long a server's refusal may take to write before the connection is dropped anyway."""

ByteStreamFactory = Callable[[], Awaitable[anyio.abc.ByteStream]]
Address = tuple[str, int]


# ----------------------------------------------------------------------------- frames


def _mask(payload: bytes, key: bytes) -> bytes:
    size = len(payload)
    if size > _SMALL_MASK:
        return bytes(XorMaskerSimple(key).process(bytearray(payload)))
    repeated = (key * ((size >> 2) + 1))[:size]
    mixed = int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")
    return mixed.to_bytes(size, "little")


def encode_frame(
    opcode: int, payload: bytes, *, masked: bool, fin: bool = True, rsv: int = 0
) -> bytes:
    """One frame exactly as described; ``rsv`` holds the RSV bits in place (0x70 = all).

    Clients must mask (``masked=True``) with a fresh random key per frame (RFC 6455 §5.3).
    """
    size = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if masked else 0
    if size < 126:
        header = bytes((first, mask_bit | size))
    elif size < 0x10000:
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, size)
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + _mask(payload, key)


def close_payload(code: int | None, reason: str) -> bytes:
    """A close frame's payload: empty for ``None``, else the code and the reason cut to 123 bytes.

    Any code from 0 to 65535 is written as given.
    """
    if code is None:
        return b""
    encoded = reason.encode("utf-8", "surrogatepass")
    if len(encoded) > CLOSE_REASON_BYTES:
        encoded = encoded[:CLOSE_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")
    return struct.pack("!H", code) + encoded


def _split(data: bytes, parts: int) -> list[bytes]:
    step = -(-len(data) // parts) if data else 0
    return [data[index * step : (index + 1) * step] for index in range(parts)]


# ------------------------------------------------------------------------- the connection


class WebSocketConnection:
    """One established WebSocket connection, either role, over an anyio ``ByteStream``.

    Built by ``connect`` and ``accept``. One task may call ``receive`` while others call
    ``send``; sends are serialised.
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
    ) -> None:
        self.client = client
        self.limits = limits
        self.subprotocol = subprotocol
        self.request_headers = request_headers
        self.response_headers = response_headers
        self.auto_pong = auto_pong
        self.local_address = _address(stream, SocketAttribute.local_address)
        self.remote_address = _address(stream, SocketAttribute.remote_address)
        self._stream = stream
        self._parser = FrameProtocol(client, [])
        self._pending: deque[WireEvent] = deque()
        self._send_lock = anyio.Lock(fast_acquire=True)
        self._fragmenting: anyio.Event | None = None
        self._in_message = False
        self._message_bytes = 0
        self._message_frames = 0
        self._close_sent = False
        self._close_received = False
        self._lost: ConnectionLost | None = None
        self._transport_closed = False
        if received:
            self._parser.receive_bytes(received)

    # ---------------------------------------------------------------------------- state

    @property
    def close_sent(self) -> bool:
        """A close frame was written (by ``send(SendClose(...))`` or a limit)."""
        return self._close_sent

    @property
    def close_received(self) -> bool:
        """The peer's close frame arrived."""
        return self._close_received

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
        while not self._pending:
            if self._lost is not None:
                return self._lost
            if self._transport_closed or (self._close_sent and self._close_received):
                raise ConnectionClosed("the connection is closed")
            failure = self._parse()
            if failure is not None:
                await self._fail(*failure)
                break
            if self._pending:
                break
            try:
                data = await self._stream.receive(READ_SIZE)
            except TRANSPORT_ERRORS as exc:
                await self._lose(self._lost or lost_from(exc))
                break
            self._parser.receive_bytes(data)
        event = self._pending.popleft()
        if self.auto_pong and isinstance(event, PingReceived) and not self._close_sent:
            await self._write_quietly(encode_frame(0xA, event.data, masked=self.client))
        return event

    def _parse(self) -> tuple[int, str] | None:
        """Turn buffered bytes into pending events; ``(code, reason)`` on a protocol failure."""
        try:
            for frame in self._parser.received_frames():
                opcode = frame.opcode
                payload = frame.payload
                if isinstance(payload, tuple):  # a close frame, already checked by wsproto
                    code, reason = payload
                    self._close_received = True
                    self._pending.append(CloseReceived(None if code == 1005 else int(code), reason))
                elif opcode is Opcode.PING:
                    self._pending.append(PingReceived(bytes(payload)))  # type: ignore[arg-type]
                elif opcode is Opcode.PONG:
                    self._pending.append(PongReceived(bytes(payload)))  # type: ignore[arg-type]
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
                    self._pending.append(
                        DataFrame(kind, payload, first, final, frame.frame_finished)
                    )
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
        self._pending.append(lost)
        if not self._close_sent:
            self._close_sent = True
            frame = encode_frame(0x8, close_payload(code, reason), masked=self.client)
            with anyio.move_on_after(self.limits.close_timeout):
                await self._write_quietly(frame)
        await self._close_transport()

    async def _lose(self, lost: ConnectionLost) -> None:
        self._lost = lost
        self._pending.append(lost)
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
            data = action.data
            if self._fragmenting is not None:
                await self._fragmenting.wait()
            if isinstance(data, str):
                frame = encode_frame(0x1, data.encode("utf-8"), masked=self.client)
            else:
                frame = encode_frame(0x2, data, masked=self.client)
            await self._write(frame)
        elif isinstance(action, SendPing):
            await self._write(encode_frame(0x9, action.data, masked=self.client))
        elif isinstance(action, SendPong):
            await self._write(encode_frame(0xA, action.data, masked=self.client))
        elif isinstance(action, SendClose):
            payload = close_payload(action.code, action.reason)
            await self._write(encode_frame(0x8, payload, masked=self.client))
            self._close_sent = True
        elif isinstance(action, CloseTransport):
            await self.abort(rst=action.abort)

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
        encoded = data.encode("utf-8") if isinstance(data, str) else data
        opcode = 0x1 if isinstance(data, str) else 0x2
        pieces = _split(encoded, max(1, parts))
        while self._fragmenting is not None:
            await self._fragmenting.wait()
        self._fragmenting = done = anyio.Event()
        try:
            for index, piece in enumerate(pieces):
                if index and delay > 0:
                    await anyio.sleep(delay)
                final = index == len(pieces) - 1
                await self._write(
                    encode_frame(
                        opcode if index == 0 else 0x0, piece, masked=self.client, fin=final
                    )
                )
                if ping_between and index == 0 and not final:
                    await self._write(encode_frame(0x9, b"", masked=self.client))
        finally:
            self._fragmenting = None
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

    async def _write(self, data: bytes) -> None:
        if self._lost is not None or self._transport_closed:
            raise ConnectionClosed("the connection is closed", self._lost)
        if self._close_sent:
            raise ConnectionClosed("a close frame was already sent")
        try:
            async with self._send_lock:
                await self._stream.send(data)
        except TRANSPORT_ERRORS as exc:
            self._lost = lost = lost_from(exc)
            raise ConnectionClosed(lost.message, lost) from exc

    async def _write_quietly(self, data: bytes) -> None:
        try:
            async with self._send_lock:
                await self._stream.send(data)
        except TRANSPORT_ERRORS:
            pass

    # ----------------------------------------------------------------------------- close

    async def abort(self, *, rst: bool = False) -> None:
        """Drop the connection without a close frame; ``rst`` resets it (SO_LINGER 0)."""
        if self._transport_closed:
            return
        if rst:
            raw = self._stream.extra(SocketAttribute.raw_socket, None)
            if raw is not None:
                with contextlib.suppress(OSError):
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if self._lost is None and not (self._close_sent and self._close_received):
            kind: Literal["reset", "eof"] = "reset" if rst else "eof"
            self._lost = ConnectionLost(kind=kind, message="connection dropped by this side")
        self._transport_closed = True
        await anyio.aclose_forcefully(self._stream)

    async def aclose(self) -> None:
        """Run the closing handshake (1000) within ``close_timeout``, then close TCP.

        Events that arrive meanwhile are dropped. Safe to call more than once.
        """
        if self._transport_closed:
            return
        with anyio.move_on_after(self.limits.close_timeout):
            if self._lost is None and not self._close_sent:
                with contextlib.suppress(ConnectionClosed):
                    await self.send(SendClose(1000))
            while self._lost is None and not self._close_received and not self._transport_closed:
                await self.receive()
            if self.client and self._lost is None:
                await self._await_eof()
        await self._close_transport()

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
        self._transport_closed = True
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(self.limits.close_timeout),
            contextlib.suppress(*TRANSPORT_ERRORS),
        ):
            await self._stream.aclose()
        # a TLS stream that did not finish its goodbye in time still owes a socket close
        await anyio.aclose_forcefully(self._stream)


def _address(stream: anyio.abc.ByteStream, attribute: Any) -> Address | None:
    value = stream.extra(attribute, None)
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return None


# ------------------------------------------------------------------------ handshake heads


class _HeadTooLarge(Exception):
    """The peer's HTTP head is over the byte or header-count limit."""


async def _read_head(stream: anyio.abc.ByteStream, limits: Limits) -> tuple[bytes, bytes]:
    """Read one HTTP head; returns it and the bytes after it.

    Enforced here because h11 accepts any head that arrives in one read.
    """
    buffer = bytearray()
    searched = 0
    while True:
        found = _HEAD_END.search(buffer, max(0, searched - 3))
        if found is not None:
            break
        if len(buffer) > limits.max_head_size:
            raise _HeadTooLarge(f"head over {limits.max_head_size} bytes")
        searched = len(buffer)
        buffer += await stream.receive(READ_SIZE)
    end = found.end()
    if end > limits.max_head_size:
        raise _HeadTooLarge(f"head over {limits.max_head_size} bytes")
    head = bytes(buffer[:end])
    if head.count(b"\n") - 2 > limits.max_headers:
        raise _HeadTooLarge(f"more than {limits.max_headers} headers")
    return head, bytes(buffer[end:])


def _headers(items: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in items)


def _values(headers: tuple[tuple[str, str], ...], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


def _tokens(headers: tuple[tuple[str, str], ...], name: str) -> list[str]:
    return [
        token.strip()
        for value in _values(headers, name)
        for token in value.split(",")
        if token.strip()
    ]


def _accept_token(key: bytes) -> str:
    return base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode("ascii")


# ------------------------------------------------------------------------------ client


@dataclass(frozen=True)
class _Target:
    secure: bool
    host: str
    port: int
    resource: str
    host_header: str


def _target(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _failed("invalid", f"invalid URL: {exc}") from exc
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise _failed("invalid", f"not a ws:// or wss:// URL with a host: {url!r}")
    secure = parts.scheme == "wss"
    default = 443 if secure else 80
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = shown if port in (None, default) else f"{shown}:{port}"
    return _Target(secure, host, port or default, resource, host_header)


def _failed(
    kind: HandshakeFailureKind,
    message: str,
    *,
    status: int = 0,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> HandshakeError:
    return HandshakeError(HandshakeFailed(kind, message, status, headers, body))


async def connect(
    request: ConnectRequest,
    limits: Limits,
    *,
    stream_factory: ByteStreamFactory | None = None,
    auto_pong: bool = False,
) -> tuple[WebSocketConnection, HandshakeDone]:
    """Open a client connection to ``request.url`` and run the opening handshake.

    TCP must connect within ``request.connect_timeout``; TLS and the HTTP upgrade must finish
    within the smaller of ``request.handshake_timeout`` and ``limits.handshake_timeout``.
    ``stream_factory`` replaces the TCP connect (tests inject streams with it).

    Raises:
        HandshakeError: with a ``HandshakeFailed`` saying why (refused, dns, tls, timeout,
            status, accept, protocol, invalid, too-large).
    """
    target = _target(request.url)
    deadline = min(request.handshake_timeout, limits.handshake_timeout)
    stream = await _open(request, target, deadline, stream_factory)
    ends_at = anyio.current_time() + deadline
    try:
        with anyio.fail_after(deadline):
            return await _client_handshake(stream, request, target, limits, auto_pong)
    except _StatusRefusal as refusal:
        with anyio.move_on_after(ends_at - anyio.current_time()):
            refusal.body = await _reject_body(stream, refusal.http, refusal.rest)
        await anyio.aclose_forcefully(stream)
        raise refusal.error() from None
    except BaseException as exc:
        await anyio.aclose_forcefully(stream)
        if isinstance(exc, TimeoutError):
            raise _failed("timeout", f"no handshake response within {deadline:g} s") from exc
        if isinstance(exc, TRANSPORT_ERRORS):
            lost = lost_from(exc)
            kind: HandshakeFailureKind = "tls" if lost.kind == "tls" else "protocol"
            raise _failed(kind, f"connection lost during the handshake: {lost.message}") from exc
        raise


class _StatusRefusal(Exception):
    """The server answered something other than 101; its body is still to be read."""

    def __init__(
        self, response: h11.InformationalResponse | h11.Response, http: h11.Connection, rest: bytes
    ) -> None:
        super().__init__(response.status_code)
        self.status = response.status_code
        self.reason = response.reason.decode("latin-1")
        self.headers = _headers(response.headers.raw_items())
        self.http = http
        self.rest = rest
        self.body = b""

    def error(self) -> HandshakeError:
        return _failed(
            "status",
            f"server answered {self.status} {self.reason}".rstrip(),
            status=self.status,
            headers=self.headers,
            body=self.body,
        )


async def _open(
    request: ConnectRequest,
    target: _Target,
    deadline: float,
    stream_factory: ByteStreamFactory | None,
) -> anyio.abc.ByteStream:
    """TCP, then TLS for wss (once more without checks for a self-signed leaf in device mode)."""
    context = None
    if target.secure:
        try:
            context = tls.client_context(request.tls)
        except TlsSetupError as exc:
            raise HandshakeError(connect_failure_from(exc)) from exc
    stream = await _open_tcp(request, target, stream_factory)
    if context is None:
        return stream
    try:
        return await _start_tls(stream, target, context, deadline)
    except _TLS_HANDSHAKE_ERRORS as exc:
        if not tls.accepts_self_signed(request.tls, exc):
            raise HandshakeError(connect_failure_from(exc)) from exc
    stream = await _open_tcp(request, target, stream_factory)
    try:
        return await _start_tls(stream, target, tls.self_signed_context(request.tls), deadline)
    except _TLS_HANDSHAKE_ERRORS as exc:
        raise HandshakeError(connect_failure_from(exc)) from exc


async def _open_tcp(
    request: ConnectRequest, target: _Target, stream_factory: ByteStreamFactory | None
) -> anyio.abc.ByteStream:
    try:
        with anyio.fail_after(request.connect_timeout):
            if stream_factory is not None:
                return await stream_factory()
            return await anyio.connect_tcp(target.host, target.port)
    except TimeoutError as exc:
        raise _failed("timeout", f"no TCP connection within {request.connect_timeout:g} s") from exc
    except OSError as exc:
        raise HandshakeError(connect_failure_from(exc)) from exc


async def _start_tls(
    stream: anyio.abc.ByteStream, target: _Target, context: object, deadline: float
) -> anyio.abc.ByteStream:
    try:
        with anyio.fail_after(deadline):
            return await TLSStream.wrap(
                stream,
                hostname=target.host,
                ssl_context=context,  # type: ignore[arg-type]
                standard_compatible=False,
            )
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def _client_handshake(
    stream: anyio.abc.ByteStream,
    request: ConnectRequest,
    target: _Target,
    limits: Limits,
    auto_pong: bool,
) -> tuple[WebSocketConnection, HandshakeDone]:
    key = base64.b64encode(os.urandom(16))
    headers = _request_headers(request, target, key)
    http = h11.Connection(h11.CLIENT)
    try:
        data = http.send(h11.Request(method="GET", target=target.resource, headers=headers))
        http.send(h11.EndOfMessage())
    except h11.LocalProtocolError as exc:
        raise _failed("invalid", f"cannot send this request: {exc}") from exc
    await stream.send(data or b"")
    try:
        head, rest = await _read_head(stream, limits)
    except _HeadTooLarge as exc:
        raise _failed("too-large", f"response {exc}") from exc
    except anyio.EndOfStream as exc:
        raise _failed("protocol", "connection closed before the handshake response") from exc
    try:
        http.receive_data(head)
        response = http.next_event()
    except PEER_ERRORS as exc:
        raise _failed("protocol", f"invalid handshake response: {exc}") from exc
    if not isinstance(response, h11.InformationalResponse | h11.Response):
        raise _failed("protocol", "invalid handshake response")
    received = _headers(response.headers.raw_items())
    reason = response.reason.decode("latin-1")
    if response.status_code != 101:
        raise _StatusRefusal(response, http, rest)
    subprotocol = _check_upgrade(received, key, request.subprotocols)
    connection = WebSocketConnection(
        stream,
        client=True,
        limits=limits,
        subprotocol=subprotocol,
        request_headers=tuple(headers),
        response_headers=received,
        received=rest,
        auto_pong=auto_pong,
    )
    done = HandshakeDone(101, reason, received, subprotocol, target.resource)
    return connection, done


_OWN_HEADERS = ("host", "upgrade", "connection", "sec-websocket-version", "sec-websocket-protocol")


def _request_headers(request: ConnectRequest, target: _Target, key: bytes) -> list[tuple[str, str]]:
    given = {name.lower() for name, _ in request.headers}
    own = {
        "host": ("Host", target.host_header),
        "upgrade": ("Upgrade", "websocket"),
        "connection": ("Connection", "Upgrade"),
        "sec-websocket-version": ("Sec-WebSocket-Version", "13"),
        "sec-websocket-protocol": ("Sec-WebSocket-Protocol", ", ".join(request.subprotocols)),
    }
    headers = [own["host"]] if "host" not in given else []
    headers += [own[name] for name in _OWN_HEADERS[1:4] if name not in given]
    headers.append(("Sec-WebSocket-Key", key.decode("ascii")))
    if request.subprotocols and "sec-websocket-protocol" not in given:
        headers.append(own["sec-websocket-protocol"])
    headers += [
        (name, value) for name, value in request.headers if name.lower() != "sec-websocket-key"
    ]
    return headers


def _check_upgrade(
    headers: tuple[tuple[str, str], ...], key: bytes, offered: tuple[str, ...]
) -> str | None:
    """Validate a 101 (RFC 6455 §4.1); returns the subprotocol the server selected."""
    if "websocket" not in (token.lower() for token in _tokens(headers, "upgrade")):
        raise _failed("protocol", "the 101 response lacks 'Upgrade: websocket'")
    if "upgrade" not in (token.lower() for token in _tokens(headers, "connection")):
        raise _failed("protocol", "the 101 response lacks 'Connection: Upgrade'")
    accept = _values(headers, "sec-websocket-accept")
    if accept != [_accept_token(key)]:
        raise _failed("accept", f"wrong Sec-WebSocket-Accept: {', '.join(accept) or 'none'}")
    if _values(headers, "sec-websocket-extensions"):
        raise _failed("protocol", "the server selected an extension that was not offered")
    selected = _tokens(headers, "sec-websocket-protocol")
    if not selected:
        return None
    if len(selected) > 1 or selected[0] not in offered:
        raise _failed(
            "protocol",
            f"the server selected a subprotocol that was not offered: {', '.join(selected)}",
        )
    return selected[0]


async def _reject_body(stream: anyio.abc.ByteStream, http: h11.Connection, rest: bytes) -> bytes:
    """Up to ``MAX_REJECT_BODY`` bytes of a refusal's body: whatever came before EOF or an error."""
    body = bytearray()
    try:
        http.receive_data(rest)
        while len(body) < MAX_REJECT_BODY:
            event = http.next_event()
            if isinstance(event, h11.Data):
                body += event.data
            elif event is h11.NEED_DATA:
                try:
                    chunk = await stream.receive(READ_SIZE)
                except anyio.EndOfStream:
                    chunk = b""
                http.receive_data(chunk)
            else:
                break
    except (*PEER_ERRORS, *TRANSPORT_ERRORS):
        pass
    return bytes(body[:MAX_REJECT_BODY])


# ------------------------------------------------------------------------------ server


@dataclass(frozen=True)
class HandshakeRequest:
    """A client's valid opening request, as ``accept`` hands it to ``decide``.

    ``headers`` are in order with names as received; ``client`` is the peer's address.
    """

    path: str
    headers: tuple[tuple[str, str], ...]
    subprotocols: tuple[str, ...]
    client: Address | None


@dataclass(frozen=True)
class Accept:
    """Answer 101, selecting ``subprotocol``, with ``extra_headers`` added."""

    subprotocol: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Reject:
    """Answer with this HTTP status, headers and body, then close."""

    status: int = 403
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


Decide = Callable[[HandshakeRequest], Awaitable[Accept | Reject]]


class _Refusal(Exception):
    """The request cannot be upgraded; answer ``status`` with the message as body."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(message)
        self.status = status
        self.headers = headers


async def accept(
    stream: anyio.abc.ByteStream,
    limits: Limits,
    decide: Decide,
    *,
    auto_pong: bool = False,
) -> tuple[WebSocketConnection, HandshakeDone] | None:
    """Server side: read the opening request, let ``decide`` answer it, return the connection.

    The request head must arrive within ``limits.handshake_timeout`` and fit
    ``max_head_size``/``max_headers``, else the client gets 408 or 431 and the stream is closed.
    An invalid request gets 400 (426 for an unsupported version). ``decide`` runs outside that
    deadline, so it may hold the answer back on purpose. Returns ``None`` when the request was
    refused or failed (the stream is then closed).
    """
    try:
        try:
            with anyio.fail_after(limits.handshake_timeout):
                head, rest = await _read_head(stream, limits)
                http, request = _parse_request(head, stream)
        except TimeoutError:
            raise _Refusal(408, "request head not received in time") from None
        except _HeadTooLarge as exc:
            raise _Refusal(431, f"request {exc}") from None
        decision = await decide(request)
        if isinstance(decision, Reject):
            await _send_reject(stream, http, decision)
            await anyio.aclose_forcefully(stream)
            return None
        return await _send_accept(stream, http, request, decision, limits, rest, auto_pong)
    except _Refusal as refusal:
        await _send_refusal(stream, refusal)
    except TRANSPORT_ERRORS:
        pass
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise
    await anyio.aclose_forcefully(stream)
    return None


def _parse_request(
    head: bytes, stream: anyio.abc.ByteStream
) -> tuple[h11.Connection, HandshakeRequest]:
    http = h11.Connection(h11.SERVER)
    try:
        http.receive_data(head)
        event = http.next_event()
    except PEER_ERRORS as exc:
        raise _Refusal(400, f"invalid HTTP request: {exc}") from exc
    if not isinstance(event, h11.Request):
        raise _Refusal(400, "invalid HTTP request")
    headers = _headers(event.headers.raw_items())
    if event.method != b"GET":
        raise _Refusal(400, "Request method must be GET")
    if event.http_version != b"1.1":
        raise _Refusal(400, "WebSocket needs HTTP/1.1")
    if "upgrade" not in (token.lower() for token in _tokens(headers, "connection")):
        raise _Refusal(400, "Missing header, 'Connection: Upgrade'")
    if "websocket" not in (token.lower() for token in _tokens(headers, "upgrade")):
        raise _Refusal(400, "Missing header, 'Upgrade: websocket'")
    version = _values(headers, "sec-websocket-version")
    if version != ["13"]:
        status = 426 if version else 400
        raise _Refusal(
            status, "Sec-WebSocket-Version must be 13", (("Sec-WebSocket-Version", "13"),)
        )
    keys = _values(headers, "sec-websocket-key")
    if len(keys) != 1 or not _valid_key(keys[0]):
        raise _Refusal(400, "Sec-WebSocket-Key must be base64 of 16 bytes, given once")
    request = HandshakeRequest(
        path=event.target.decode("latin-1"),
        headers=headers,
        subprotocols=tuple(_tokens(headers, "sec-websocket-protocol")),
        client=_address(stream, SocketAttribute.remote_address),
    )
    return http, request


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key.strip(), validate=True)) == 16
    except ValueError:
        return False


async def _send_accept(
    stream: anyio.abc.ByteStream,
    http: h11.Connection,
    request: HandshakeRequest,
    decision: Accept,
    limits: Limits,
    rest: bytes,
    auto_pong: bool,
) -> tuple[WebSocketConnection, HandshakeDone]:
    (key,) = _values(request.headers, "sec-websocket-key")
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", _accept_token(key.strip().encode("ascii"))),
    ]
    if decision.subprotocol is not None:
        headers.append(("Sec-WebSocket-Protocol", decision.subprotocol))
    headers += decision.extra_headers
    answer = h11.InformationalResponse(
        status_code=101, headers=headers, reason=b"Switching Protocols"
    )
    await stream.send(http.send(answer) or b"")
    connection = WebSocketConnection(
        stream,
        client=False,
        limits=limits,
        subprotocol=decision.subprotocol,
        request_headers=request.headers,
        response_headers=tuple(headers),
        received=rest,
        auto_pong=auto_pong,
    )
    done = HandshakeDone(
        101, "Switching Protocols", request.headers, decision.subprotocol, request.path
    )
    return connection, done


async def _send_reject(stream: anyio.abc.ByteStream, http: h11.Connection, reject: Reject) -> None:
    framing = ("content-length", "transfer-encoding", "connection")
    headers = [(name, value) for name, value in reject.headers if name.lower() not in framing]
    headers += [("Content-Length", str(len(reject.body))), ("Connection", "close")]
    data = http.send(h11.Response(status_code=reject.status, headers=headers)) or b""
    data += http.send(h11.Data(data=reject.body)) or b""
    with anyio.move_on_after(REFUSAL_WRITE_TIMEOUT):
        with contextlib.suppress(*TRANSPORT_ERRORS):
            await stream.send(data)


async def _send_refusal(stream: anyio.abc.ByteStream, refusal: _Refusal) -> None:
    """Answer an unusable request; the text is fixed by this module, so it is formatted here."""
    body = f"{refusal}\n".encode()
    phrase = _PHRASES.get(refusal.status, "Bad Request")
    lines = [f"HTTP/1.1 {refusal.status} {phrase}", "Content-Type: text/plain; charset=utf-8"]
    lines += [f"{name}: {value}" for name, value in refusal.headers]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    with anyio.move_on_after(REFUSAL_WRITE_TIMEOUT):
        with contextlib.suppress(*TRANSPORT_ERRORS):
            await stream.send("\r\n".join(lines).encode("latin-1") + body)


_PHRASES = {
    400: "Bad Request",
    408: "Request Timeout",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
}
