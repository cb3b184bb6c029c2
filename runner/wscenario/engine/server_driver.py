"""One fake-server connection as a scenario drives it (an ``engine.driver.Driver``).

A reader task turns the connection's wire events into the events of the ohos
``WebSocketServer``: ``connect {clientIP, clientPort, path, query, headers}`` first, then
``messageReceive`` (one per whole message, reassembled from its fragments), ``ping``,
``pong``, ``close {code, reason}`` (1005 when the close frame had no payload, 1006 when the
connection ended without one) and ``error {kind, message}``. The engine answers pings; the
client's close is answered (unless the scenario says ``answerClose: false``) with the same
code, or 1002 when the client sent a code it may not send, and the server then closes TCP, as
RFC 6455 asks of servers.

Calls write exactly what the script says: fragmented messages, any close code or reason (or a
close frame with no payload), pings, raw frames, an abrupt FIN or RST, or no more reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import anyio
import anyio.abc

from wscenario.core.events import CallError, Event, EventValue
from wscenario.core.handshake_policy import HandshakeRequest
from wscenario.core.model import JSON, ConnectOptions, Limits, RawFrame, ServerSpec
from wscenario.core.urls import url_host
from wscenario.core.wire import (
    CloseReceived,
    ConnectionLost,
    DataFrame,
    HandshakeDone,
    PingReceived,
    PongReceived,
    SendClose,
    SendMessage,
    SendPing,
    WireEvent,
    join_pieces,
)
from wscenario.engine.clock import loop_clock
from wscenario.engine.errors import ConnectionClosed
from wscenario.engine.event_queue import EventQueue, asyncio_loop
from wscenario.engine.frames import close_code_allowed
from wscenario.engine.websocket import WebSocketConnection

log = logging.getLogger(__name__)

EVENT_QUEUE = 256
"""Events read ahead of the script; past this the reader waits (TCP backpressure)."""

NO_STATUS = 1005
ABNORMAL = 1006
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002

LAST_EVENTS = frozenset({"close", "error"})
"""Events still delivered after a call found the connection gone."""


def new_event(name: str, value: EventValue, t: float) -> Event:
    """``Event(name, value, t)``, built without the frozen dataclass's ``__init__``.

    That ``__init__`` sets each field through ``object.__setattr__`` and costs about a
    microsecond; a server echoing tens of thousands of messages a second makes one per
    message. The result is the same frozen, equal-comparing ``Event``.
    """
    event = _new_object(Event)
    fields = event.__dict__
    fields["name"] = name
    fields["value"] = value
    fields["t"] = t
    return event


_new_object = object.__new__


class Peer(NamedTuple):
    """The client's address."""

    ip: str
    port: int

    def __str__(self) -> str:
        return f"{url_host(self.ip)}:{self.port}"


class ServerDriver:
    """Drives one accepted connection of the fake server for one run of its script."""

    __slots__ = (
        "_clock",
        "_connect",
        "_ended",
        "_ended_event",
        "_events",
        "_loss",
        "_pieces",
        "_reader",
        "_reading",
        "_saw_close",
        "_sent_close",
        "_started",
        "_stopped_reading",
        "_tasks",
        "_transport_closed",
        "_undeliverable",
        "connection",
        "handshake",
        "limits",
        "peer",
        "spec",
    )

    def __init__(
        self,
        connection: WebSocketConnection,
        handshake: HandshakeDone,
        peer: Peer,
        spec: ServerSpec,
        limits: Limits,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.connection = connection
        self.handshake = handshake
        self.peer = peer
        self.spec = spec
        self.limits = limits
        self._clock = clock = clock or loop_clock()
        self._started = clock()
        self._connect: dict[str, JSON] | None = None
        self._events = EventQueue(EVENT_QUEUE)
        self._reader: asyncio.Task[None] | None = None  # the reader, when a bare asyncio task
        self._reading: anyio.CancelScope | None = None  # the reader's scope, when an anyio task
        self._stopped_reading = False
        self._ended = False
        self._ended_event: anyio.Event | None = None  # made only when someone waits for the end
        self._sent_close = False
        self._saw_close = False
        self._transport_closed = False
        self._pieces: list[str | bytes] | None = None  # a fragmented message's frames so far
        self._undeliverable = False  # a call failed on a connection that is gone
        self._loss: ConnectionLost | None = None  # how the reader saw the connection end
        self._tasks: anyio.abc.TaskGroup | None = None

    # ------------------------------------------------------------------ lifecycle

    async def serve(
        self,
        session: Callable[[ServerDriver], Awaitable[None]],
        tasks: anyio.abc.TaskGroup | None = None,
    ) -> None:
        """Run ``session`` against this connection, then wait for the connection to end.

        A connection whose script stopped reading is closed when the script ends; one whose
        close the client leaves unanswered is cut after ``limits.close_timeout``. The close
        deadline (and, off asyncio, the reader) runs in ``tasks``: a task group of the
        driver's own if none is given; a server passes the one its connections run in, one
        group less per connection.
        """
        if tasks is None:
            async with anyio.create_task_group() as own:
                await self.serve(session, own)
            return
        self._tasks = tasks
        try:
            self._emit_nowait("connect", self.connect_value())
            self._start_reader(tasks)
            try:
                await session(self)
                await self.flush()
            finally:
                self._close_events()
            if self._stopped_reading:
                await self._close_transport(abort=False)
            await self._wait_ended()
        finally:
            self._close_events()
            if not self._ended:  # the session failed: the reader has nothing left to do
                self._cancel_reader()
            reader = self._reader
            if reader is not None and not reader.done():
                with anyio.CancelScope(shield=True):
                    await asyncio.wait((reader,))

    def _start_reader(self, tasks: anyio.abc.TaskGroup) -> None:
        """Start the reader: a bare task on asyncio (the reader contains its own faults,
        ``serve`` waits for it, cancelling it stops it), which an idle connection holds for
        a third of the memory of an anyio task and its cancel scope; elsewhere a task in
        ``tasks`` reading inside a cancel scope.
        """
        loop = asyncio_loop()
        if loop is None:
            tasks.start_soon(self._read_in_scope)
        else:
            self._reader = loop.create_task(self._read())

    async def _read_in_scope(self) -> None:
        with anyio.CancelScope() as self._reading:
            if self._stopped_reading:
                self._reading.cancel()
            await self._read()

    def _cancel_reader(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        elif self._reading is not None:
            self._reading.cancel()

    def connect_value(self) -> dict[str, JSON]:
        """The ``connect`` event's value; header names are lower-cased, repeats joined."""
        if self._connect is None:
            self._connect = self._connect_value()
        return self._connect

    def _connect_value(self) -> dict[str, JSON]:
        request = HandshakeRequest(self.handshake.path, self.handshake.headers)
        headers: dict[str, JSON] = {}
        for name, _ in self.handshake.headers:
            value = request.header(name)
            # the same few names on every connection: one copy for all
            headers[sys.intern(name.lower())] = value if value is not None else ""
        return {
            "clientIP": self.peer.ip,
            "clientPort": self.peer.port,
            "path": request.path,
            "headers": headers,
        }

    async def going_away(self) -> None:
        """The server is stopping: close with 1001 and wait for the connection to end."""
        if not self._ended:
            await self.close(GOING_AWAY, "server shutting down")
            await self._wait_ended()

    @property
    def reading_stopped(self) -> bool:
        """Whether the script stopped reading (no more events will arrive)."""
        return self._stopped_reading

    @property
    def ended(self) -> bool:
        """Whether the connection is over (closed, dropped or lost)."""
        return self._ended

    # ------------------------------------------------------------------ Driver calls

    async def connect(self, url: str, options: ConnectOptions) -> CallError | None:
        """A fake server does not connect anywhere."""
        return CallError(code=-1, message="a server scenario cannot connect")

    async def send(
        self,
        data: str | bytes,
        *,
        fragments: int = 1,
        fragment_delay: float = 0.0,
        ping_between: bool = False,
    ) -> CallError | None:
        """Send one message, split into ``fragments`` frames when asked."""
        try:
            if fragments > 1 or ping_between:
                await self.connection.send_fragmented(
                    data, max(fragments, 2), delay=fragment_delay, ping_between=ping_between
                )
            else:
                await self.connection.send(SendMessage(data))
        except ConnectionClosed as exc:
            return await self._failed(exc)
        return None

    async def close(
        self, code: int | None, reason: str | None, *, no_payload: bool = False
    ) -> CallError | None:
        """Send a close frame as written (``no_payload``: an empty one)."""
        action = (
            SendClose(code=None)
            if no_payload
            else SendClose(1000 if code is None else code, reason or "")
        )
        error = await self._call(self.connection.send(action))
        if error is None:
            self._sent_close = True
            if self._saw_close:
                await self._close_transport(abort=False)
            elif self._tasks is not None:
                self._tasks.start_soon(self._close_deadline)
        return error

    async def _close_deadline(self) -> None:
        """Cut the connection if the client has not answered our close in time."""
        try:
            with anyio.move_on_after(self.limits.close_timeout):
                await self._wait_ended()
                return
            await self._close_transport(abort=False)
        except Exception as exc:  # noqa: BLE001 - it runs among all the server's connections
            await self._fault("closing", exc)

    async def ping(self, data: bytes) -> None:
        """Send a ping."""
        await self._call(self.connection.send(SendPing(data)))

    async def drop(self, *, rst: bool) -> None:
        """Cut TCP without a close frame."""
        await self._close_transport(abort=rst)

    async def write_frames(self, frames: tuple[RawFrame, ...]) -> None:
        """Write raw frames exactly as described, each after its delay."""
        for frame in frames:
            if await self._call(self.connection.send_raw_frame(frame)) is not None:
                return

    async def flush(self) -> None:
        """Write the answers held back while the script worked through queued events."""
        self.connection.batching = False
        await self._call(self.connection.flush())

    async def stop_reading(self) -> None:
        """Stop reading from the socket: the client's writes back up.

        The script gets the events already queued, then none: a wait for another ends at
        once (the reader may be stopped before it ever ran, so it cannot say so itself).
        """
        self._stopped_reading = True
        self._cancel_reader()
        self._close_events()

    async def next_event(self, within: float) -> Event | None:
        """The next event, or ``None`` if none arrives within ``within`` seconds.

        Once a call has failed because the connection is gone, the messages, pings and pongs
        still queued are dropped: nothing can answer them any more. ``close`` and ``error``
        still arrive.
        """
        events = self._events
        connection = self.connection
        while True:
            event = events.take()
            if event is None:
                if connection.holding:
                    await self.flush()  # answers held back go out before the script waits
                event = await events.get(within)
                if event is None:
                    return None
            # while more events are queued, answers are held back and go out together
            connection.batching = bool(events)
            if not self._undeliverable or event.name in LAST_EVENTS:
                return event

    # ------------------------------------------------------------------ reading

    async def _read(self) -> None:
        try:
            await self._read_events()
            if not self._saw_close:
                self._saw_close = True
                await self._emit("close", {"code": ABNORMAL, "reason": ""})
        except asyncio.CancelledError:
            if self._reader is None:  # cancelled from outside its scope: not ours to end
                raise
            # the bare reader was cancelled: reading stopped, or the session is over
        except Exception as exc:  # noqa: BLE001 - a fault costs this connection, not the listener
            await self._fault("reading from", exc)
        finally:
            self._close_events()
            if not self._stopped_reading:
                self._set_ended()

    async def _read_events(self) -> None:
        """Turn what arrives into events until the connection is over."""
        receive = self.connection.receive
        events = self._events
        clock = self._clock
        started = self._started
        while not self._transport_closed:
            try:
                event = await receive()
            except ConnectionClosed:
                return
            if type(event) is DataFrame and event.first and event.final:
                # a whole message in one frame, most of them: queued without reassembly
                if events.put(new_event("messageReceive", event.data, clock() - started)):
                    await events.wait_for_room()  # the script is behind: stop reading for now
            elif await self._handle(event):
                return

    async def _handle(self, event: WireEvent) -> bool:
        """React to one wire event; ``True`` when the connection is over."""
        if isinstance(event, DataFrame):
            await self._piece(event)
        elif isinstance(event, PingReceived):
            await self._emit("ping", event.data)
        elif isinstance(event, PongReceived):
            await self._emit("pong", event.data)
        elif isinstance(event, CloseReceived):
            return await self._peer_closed(event)
        elif isinstance(event, ConnectionLost):
            await self._lost(event)
            return True
        return False

    async def _piece(self, frame: DataFrame) -> None:
        if frame.first or self._pieces is None:
            self._pieces = []
        self._pieces.append(frame.data)
        if frame.final:
            data = join_pieces(self._pieces, frame.kind)
            self._pieces = None
            await self._emit("messageReceive", data)

    async def _peer_closed(self, event: CloseReceived) -> bool:
        self._saw_close = True
        code = event.code if event.code is not None else NO_STATUS
        await self._emit("close", {"code": code, "reason": event.reason})
        if self._sent_close:
            await self._close_transport(abort=False)
            return True
        if self.spec.answer_close:
            answer = SendClose(code=event.code, reason=event.reason)
            if event.code is not None and not close_code_allowed(event.code):
                answer = SendClose(PROTOCOL_ERROR, "invalid close code")
            await self._call(self.connection.send(answer))
            self._sent_close = True
            await self._close_transport(abort=False)
            return True
        return False

    async def _lost(self, event: ConnectionLost) -> None:
        self._loss = event
        if event.kind not in ("eof", "reset") or not self._saw_close:
            if event.kind not in ("eof", "reset"):
                await self._emit("error", {"kind": event.kind, "message": event.message})
            if not self._saw_close:
                self._saw_close = True
                await self._emit("close", {"code": ABNORMAL, "reason": ""})

    # ------------------------------------------------------------------ helpers

    async def _emit(self, name: str, value: EventValue) -> None:
        self._emit_nowait(name, value)
        await self._events.wait_for_room()  # the script is behind: stop reading for now

    def _emit_nowait(self, name: str, value: EventValue) -> None:
        # once the script is over nobody looks at events any more: the queue drops them
        self._events.put(new_event(name, value, self._clock() - self._started))

    def _close_events(self) -> None:
        """No more events: the script gets the ones queued, then none; the reader goes on."""
        self._events.close()

    async def _close_transport(self, *, abort: bool) -> None:
        if not self._transport_closed:
            self._transport_closed = True
            await self.connection.abort(rst=abort)
        self._set_ended()

    async def _fault(self, doing: str, exc: Exception) -> None:
        """A fault in the driver's own task: logged, and the connection is cut (RST)."""
        log.error("%s %s failed: %s: %s", doing, self.peer, type(exc).__name__, exc)
        log.debug("%s %s failed", doing, self.peer, exc_info=exc)
        self._transport_closed = True
        with contextlib.suppress(Exception):  # the fault may have come from closing it
            await self.connection.abort(rst=True)
        self._set_ended()

    def _set_ended(self) -> None:
        self._ended = True
        if self._ended_event is not None:
            self._ended_event.set()

    async def _wait_ended(self) -> None:
        if not self._ended:
            if self._ended_event is None:
                self._ended_event = anyio.Event()
            await self._ended_event.wait()

    async def _call(self, call: Awaitable[object]) -> CallError | None:
        """Await one write; a connection that is gone becomes a ``CallError``."""
        try:
            await call
        except ConnectionClosed as exc:
            return await self._failed(exc)
        return None

    async def _failed(self, exc: ConnectionClosed) -> CallError:
        """The ``CallError`` of a write the connection could not take.

        When the write failed because the reader closed the socket under it (the client
        vanished), the reader's account of the loss is what the error says.
        """
        if isinstance(exc.__cause__, anyio.ClosedResourceError) and not self.reading_stopped:
            with anyio.move_on_after(self.limits.close_timeout):
                await self._wait_ended()
        self._undeliverable = self._transport_closed or self._ended or exc.lost is not None
        if self._loss is not None:
            return CallError(code=-1, message=f"connection lost: {self._loss.message}")
        return CallError(code=-1, message=str(exc))
