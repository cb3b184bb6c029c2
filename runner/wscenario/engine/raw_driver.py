"""The ``profile: raw`` client: the protocol's own truth, as an ``engine.driver.Driver``.

``connect`` returns as soon as the attempt has started; its outcome arrives as an event:

``open {status, message, headers, protocol}``
    the 101: status, reason phrase exactly as sent, headers by lower-case name (repeated
    headers joined with ", "), the selected subprotocol (``""`` when none).
``error {kind, status, message}``
    the handshake failed (``kind`` as in ``core.wire.HandshakeFailed``: refused, dns, tls,
    timeout, status, accept, protocol, invalid, too-large; ``status`` is the HTTP status, 0
    when none came), or the open connection broke (``protocol``, ``reset``, ``tls``,
    ``timeout``; ``status`` 0). A plain EOF without a close frame gives no error, only the
    close event below.
``message <payload>``
    one whole message (``str`` or ``bytes``), however many frames it came in.
``ping <payload>`` / ``pong <payload>``
    control frames with their payload; pings are answered with a pong automatically.
``close {code, reason}``
    the code in the server's close frame (1005 when it had none), or 1006 with reason ``""``
    when the connection ended without one. A code a server may not send (such as 1004 or
    2000) is reported as sent, after ``error {kind: protocol}``, and answered with 1002.

A close frame from the server is answered with the same code and reason (no payload when it
had none); the client then waits for the server to close TCP. ``close(code, reason)`` sends
exactly that (default 1000, ``""``); with no answer within ``Limits.close_timeout`` the
connection is dropped and reported as ``error {kind: timeout}`` then ``close 1006``.

Call errors (``CallError.code``, message):

* 1 ``not connected``: send or close with no open connection (never connected, the handshake
  failed, or the connection has ended). Calls made while the handshake runs wait for it.
* 2 ``already connected``: connect while an attempt or a connection is live.
* 3 ``closing``: send or close after this side's close frame was sent.

A URL or TLS file that cannot be used is reported as ``error {kind: invalid}`` or
``error {kind: tls}``, like any other failed attempt.

TLS is strict by default (chain and host name); ``insecure`` (or the connect option
``skipServerCertVerification``) turns checks off and prints a one-line warning on stderr.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Literal, Self

import anyio
import anyio.abc

from wscenario.core.events import CallError, Event, EventValue
from wscenario.core.model import JSON, ConnectOptions, Limits, RawFrame
from wscenario.core.wire import (
    CloseReceived,
    ConnectionLost,
    ConnectRequest,
    DataFrame,
    HandshakeDone,
    HandshakeFailed,
    PingReceived,
    PongReceived,
    SendClose,
    SendMessage,
    SendPing,
    TlsPolicy,
    WireEvent,
    join_pieces,
)
from wscenario.engine.errors import ConnectionClosed, HandshakeError
from wscenario.engine.event_queue import READ_AHEAD, EventQueue
from wscenario.engine.frames import close_code_allowed
from wscenario.engine.websocket import ByteStreamFactory, WebSocketConnection, connect

NOT_CONNECTED = CallError(1, "not connected")
ALREADY_CONNECTED = CallError(2, "already connected")
CLOSING = CallError(3, "closing")

PROTOCOL_ERROR = 1002
NO_STATUS = 1005
ABNORMAL = 1006

State = Literal["idle", "connecting", "open", "ended"]


class RawClientDriver:
    """One raw-profile client connection; use it as ``async with RawClientDriver(...)``.

    Leaving the block closes the connection (closing handshake within the close timeout).
    Events are queued without bound until ``next_event`` takes them. With ``frames`` each data
    frame is a ``frame`` event (``frame_value``) instead of whole messages being ``message``.
    """

    def __init__(
        self,
        limits: Limits,
        *,
        insecure: bool = False,
        frames: bool = False,
        clock: Callable[[], float] | None = None,
        stream_factory: ByteStreamFactory | None = None,
        warn: Callable[[str], object] | None = None,
    ) -> None:
        self.limits = limits
        self.insecure = insecure
        self.frames = frames
        self._clock = clock or anyio.current_time
        self._stream_factory = stream_factory
        self._warn = warn or sys.stderr.write
        self._state: State = "idle"
        self._connection: WebSocketConnection | None = None
        self._settled = anyio.Event()
        self._reader_done = anyio.Event()
        self._close_timed_out = False
        self._dropped = False
        self._pieces: list[str | bytes] = []
        self._frame_first = True  # the frame being pieced together starts a message
        self._started = 0.0
        self._tasks: anyio.abc.TaskGroup | None = None
        self._events = EventQueue(READ_AHEAD)
        self._failure: tuple[str, HandshakeFailed] | None = None

    async def __aenter__(self) -> Self:
        self._started = self._clock()
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._tasks is not None
        with anyio.CancelScope(shield=True):
            if exc is None:
                await self.hang_up()
            if self._connection is not None:
                await self._connection.abort()
        self._events.close()
        self._tasks.cancel_scope.cancel()
        return await self._tasks.__aexit__(exc_type, exc, traceback)

    @property
    def state(self) -> State:
        """``idle``, ``connecting``, ``open`` or ``ended``."""
        return self._state

    @property
    def handshake_failure(self) -> tuple[str, HandshakeFailed] | None:
        """The URL and failure of the latest connection attempt, if its handshake failed."""
        return self._failure

    async def hang_up(self, code: int | None = None, reason: str | None = None) -> None:
        """Close an open connection with ``code`` and ``reason`` (default 1000, ``""``).

        Waits up to ``Limits.close_timeout`` in all for the server's close frame and TCP close,
        also when an earlier close frame is still waiting for its answer. Nothing happens when
        no connection is open.
        """
        connection = self._connection
        if connection is None or self._state != "open":
            return
        with anyio.move_on_after(self.limits.close_timeout):
            if not connection.close_sent:
                with contextlib.suppress(ConnectionClosed):
                    await connection.send(SendClose(1000 if code is None else code, reason or ""))
            await self._reader_done.wait()

    # -------------------------------------------------------------------------- calls

    async def connect(self, url: str, options: ConnectOptions) -> CallError | None:
        """Start connecting; the outcome arrives as ``open`` or ``error``."""
        if self._state in ("connecting", "open"):
            return ALREADY_CONNECTED
        if self._tasks is None:
            raise RuntimeError("use the driver as 'async with RawClientDriver(...)'")
        request = self._request(url, options)
        if request.tls.mode == "none" and url.lower().startswith("wss:"):
            self._warn(f"wscenario: warning: TLS certificate checks are off for {url}\n")
        self._state = "connecting"
        self._settled = anyio.Event()
        self._reader_done = anyio.Event()
        self._connection = None
        self._close_timed_out = False
        self._dropped = False
        self._pieces = []
        self._failure = None
        self._tasks.start_soon(self._run, request)
        return None

    async def send(
        self,
        data: str | bytes,
        *,
        fragments: int = 1,
        fragment_delay: float = 0.0,
        ping_between: bool = False,
    ) -> CallError | None:
        """Send one message, as ``fragments`` frames when asked."""
        connection = self._connection
        if self._state != "open" or connection is None or connection.close_sent:
            found = await self._open_connection()
            if isinstance(found, CallError):
                return found
            connection = found
        try:
            if fragments > 1 or ping_between:
                await connection.send_fragmented(
                    data, max(fragments, 2), delay=fragment_delay, ping_between=ping_between
                )
            else:
                await connection.send(SendMessage(data))
        except ConnectionClosed:
            return CLOSING if connection.close_sent else NOT_CONNECTED
        return None

    async def close(
        self, code: int | None, reason: str | None, *, no_payload: bool = False
    ) -> CallError | None:
        """Send a close frame: exactly ``code`` and ``reason`` (default 1000, ``""``)."""
        connection = await self._open_connection()
        if isinstance(connection, CallError):
            return connection
        code = 1000 if code is None else code
        action = SendClose(None) if no_payload else SendClose(code, reason or "")
        try:
            await connection.send(action)
        except ConnectionClosed:
            return CLOSING if connection.close_sent else NOT_CONNECTED
        assert self._tasks is not None
        self._tasks.start_soon(self._close_deadline, connection)
        return None

    async def ping(self, data: bytes) -> None:
        """Send a ping (nothing happens when there is no open connection)."""
        connection = await self._open_connection()
        if not isinstance(connection, CallError):
            with contextlib.suppress(ConnectionClosed):
                await connection.send(SendPing(data))

    async def drop(self, *, rst: bool) -> None:
        """Cut TCP without a close frame (reported as ``close 1006``, no error)."""
        if self._connection is not None:
            self._dropped = True
            await self._connection.abort(rst=rst)

    async def write_frames(self, frames: tuple[RawFrame, ...]) -> None:
        """Write raw frames (masked, as a client must), each after its delay."""
        connection = await self._open_connection()
        if not isinstance(connection, CallError):
            with contextlib.suppress(ConnectionClosed):
                for frame in frames:
                    await connection.send_raw_frame(frame)

    async def stop_reading(self) -> None:
        """Not offered by a client: events keep arriving."""

    async def next_event(self, within: float) -> Event | None:
        """The next event, or ``None`` if none arrives within ``within`` seconds."""
        return await self._events.get(within)

    async def flush(self) -> None:
        """Nothing is held back: a client writes every call as it is made."""

    # ---------------------------------------------------------------------- internals

    def _request(self, url: str, options: ConnectOptions) -> ConnectRequest:
        certificate = options.client_cert
        policy = TlsPolicy(
            mode="none" if self.insecure or options.skip_server_cert_verification else "strict",
            cafile=str(options.ca_path) if options.ca_path else None,
            certfile=str(certificate.cert_path) if certificate else None,
            keyfile=str(certificate.key_path) if certificate else None,
            password=certificate.key_password if certificate else None,
        )
        protocols = options.protocol.split(",") if options.protocol else []
        return ConnectRequest(
            url=url,
            headers=tuple(options.header.items()),
            subprotocols=tuple(name.strip() for name in protocols if name.strip()),
            tls=policy,
        )

    async def _open_connection(self) -> WebSocketConnection | CallError:
        """The open connection (waiting for a running handshake), or why there is none."""
        if self._state == "connecting":
            await self._settled.wait()
        if self._state != "open" or self._connection is None:
            return NOT_CONNECTED
        if self._connection.close_sent:
            return CLOSING
        return self._connection

    async def _run(self, request: ConnectRequest) -> None:
        try:
            connection, done = await connect(
                request, self.limits, stream_factory=self._stream_factory, auto_pong=True
            )
        except HandshakeError as exc:
            failed = exc.failed
            self._failure = (request.url, failed)
            self._state = "ended"
            self._settled.set()
            self._reader_done.set()
            self._emit(
                "error", {"kind": failed.kind, "status": failed.status, "message": failed.message}
            )
            return
        self._connection = connection
        self._state = "open"
        self._settled.set()
        self._emit("open", _open_value(done))
        try:
            while True:
                await self._events.wait_for_room()  # a script behind its events: stop reading
                if not await self._handle(await connection.receive(), connection):
                    break
        except ConnectionClosed:
            pass
        finally:
            self._state = "ended"
            self._reader_done.set()

    async def _handle(self, event: WireEvent, connection: WebSocketConnection) -> bool:
        """Report one wire event; ``False`` once the connection is over."""
        if isinstance(event, DataFrame) and self.frames:
            self._frame_piece(event)
        elif isinstance(event, DataFrame):
            if event.final and not self._pieces:  # a message in one frame
                self._emit("message", event.data)
                return True
            self._pieces.append(event.data)
            if event.final:
                pieces, self._pieces = self._pieces, []
                self._emit("message", join_pieces(pieces, event.kind))
        elif isinstance(event, PingReceived):
            self._emit("ping", event.data)
        elif isinstance(event, PongReceived):
            self._emit("pong", event.data)
        elif isinstance(event, CloseReceived):
            answer = SendClose(event.code, event.reason)
            if event.code is not None and not close_code_allowed(event.code):
                message = f"the server sent close code {event.code}, which RFC 6455 does not allow"
                self._emit("error", {"kind": "protocol", "status": 0, "message": message})
                answer = SendClose(PROTOCOL_ERROR, "invalid close code")
            if not connection.close_sent:
                with contextlib.suppress(ConnectionClosed):
                    await connection.send(answer)
            code = NO_STATUS if event.code is None else event.code
            self._emit("close", {"code": code, "reason": event.reason})
            await connection.aclose()
            return False
        elif isinstance(event, ConnectionLost):
            self._lost(event)
            return False
        return True

    def _frame_piece(self, piece: DataFrame) -> None:
        """Report the frame ``piece`` ends (a frame larger than a read comes in pieces)."""
        self._pieces.append(piece.data)
        if len(self._pieces) == 1:
            self._frame_first = piece.first
        if piece.frame_final:
            pieces, self._pieces = self._pieces, []
            data = join_pieces(pieces, piece.kind)
            self._emit("frame", frame_value(data, first=self._frame_first, fin=piece.final))

    def _lost(self, event: ConnectionLost) -> None:
        if self._dropped:
            pass
        elif self._close_timed_out:
            message = f"no close frame from the server within {self.limits.close_timeout:g} s"
            self._emit("error", {"kind": "timeout", "status": 0, "message": message})
        elif event.kind != "eof":
            self._emit("error", {"kind": event.kind, "status": 0, "message": event.message})
        self._emit("close", {"code": ABNORMAL, "reason": ""})

    async def _close_deadline(self, connection: WebSocketConnection) -> None:
        await anyio.sleep(self.limits.close_timeout)
        if not connection.close_received and connection.lost is None:
            self._close_timed_out = True
            await connection.abort()

    def _emit(self, name: str, value: EventValue) -> None:
        self._events.put(Event(name, value, self._clock() - self._started))


def frame_value(data: str | bytes, *, first: bool, fin: bool) -> JSON:
    """A ``frame`` event's value: ``{opcode, fin, text}`` or ``{opcode, fin, hex}``.

    ``opcode`` is 1 (text) or 2 (binary) for a message's first frame, 0 for a continuation.
    """
    if isinstance(data, str):
        return {"opcode": 1 if first else 0, "fin": fin, "text": data}
    return {"opcode": 2 if first else 0, "fin": fin, "hex": data.hex()}


def _open_value(done: HandshakeDone) -> JSON:
    joined: dict[str, str] = {}
    for name, value in done.headers:
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    headers: dict[str, JSON] = dict(joined)
    return {
        "status": done.status,
        "message": done.reason,
        "headers": headers,
        "protocol": done.subprotocol or "",
    }
