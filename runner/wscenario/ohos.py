"""``@ohos.net.webSocket`` for Python: a client that behaves as an OpenHarmony app sees it.

::

    from wscenario import ohos

    async with ohos.create_websocket(api=20) as ws:
        ws.on("open", lambda err, value: print("open", value))
        ws.on("message", lambda err, data: print("got", data))
        ws.on("close", lambda err, value: print("closed", value))
        await ws.connect("ws://127.0.0.1:8765/")  # True once the attempt has started
        await ws.send("hello")                    # True once queued
        await ws.close({"code": 1000, "reason": "bye"})

Calls follow the ArkTS overloads: pass a callable last and it is called as
``callback(err, value)`` (``err`` an ``OhosError``, or ``None`` and ``value`` ``True``);
otherwise the call returns an awaitable that gives ``True`` or raises ``OhosError`` with the
device's ``code`` and ``message``. Failures never raise at the call itself, except ``on`` and
``off``, which raise ``ListenerArgumentError`` (``code == "401"``) as ArkTS throws.

Listeners are called as ArkTS calls them: ``open``, ``message``, ``close`` (and ``openInfo``)
with ``(None, value)``; ``error`` and ``headerReceive`` with ``(value)``; ``dataEnd`` with no
argument. Call results and events are delivered one at a time, in the device's order, by one
task standing in for the app's JS thread. The rules themselves live in ``core.ohos``.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Mapping
from functools import partial
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, overload
from urllib.parse import urlsplit

import anyio
import anyio.abc
import anyio.lowlevel

from wscenario.core.events import CallError, Event
from wscenario.core.model import Limits
from wscenario.core.ohos import CallResult, OhosAction, OhosSocket
from wscenario.core.ohos_args import Parsed, parse_close, parse_connect, parse_send
from wscenario.core.ohos_errors import CONNECT_FAILED
from wscenario.core.ohos_listeners import ListenerArgumentError
from wscenario.core.wire import (
    CloseTransport,
    ConnectionLost,
    ConnectRequest,
    HandshakeFailed,
    SendMessage,
    WireEvent,
)
from wscenario.engine import websocket
from wscenario.engine.clock import loop_clock
from wscenario.engine.errors import TRANSPORT_ERRORS, ConnectionClosed, HandshakeError
from wscenario.engine.event_queue import HandOff

__all__ = ["ListenerArgumentError", "OhosError", "Pending", "WebSocket", "create_websocket"]

Callback = Callable[..., object]
Job = Callable[[], object]
"""One thing the app's JS thread runs: settle a call or call a listener."""
Responder = Callable[[CallError | None], None]
"""Settles one call with its error, or with ``True`` for ``None``."""
T = TypeVar("T")

_CALLED_WITH_ERR = frozenset({"open", "message", "close", "openInfo"})
"""Events whose listeners are AsyncCallbacks: ``(err, value)`` with ``err`` undefined."""


_WRITE_ERRORS: tuple[type[Exception], ...] = (ConnectionClosed, *TRANSPORT_ERRORS)
"""A write that fails like this is no news: the reader reports how the connection ended."""


def _most_bytes(data: str | bytes) -> int:
    """The most bytes ``data`` can take on the wire (UTF-8 takes at most 4 per character)."""
    if isinstance(data, str) and not data.isascii():
        return len(data) * 4
    return len(data)


class OhosError(Exception):
    """A rejected call: ``code`` and ``message`` as the device reports them."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _respond(
    pending: Pending[bool] | None, callback: Callback | None, error: CallError | None
) -> None:
    """Settle a call: its promise, or its callback as ``(err, value)``."""
    failure = OhosError(error.code, error.message) if error is not None else None
    value = None if failure else True
    if pending is not None:
        pending._settle(value, failure)
    elif callback is not None:
        callback(failure, value)


def _ignore(error: CallError | None) -> None:
    """Settles nothing (no connect call is waiting)."""


class Pending(Generic[T]):
    """The promise a call returns: await it for the value, or the ``OhosError``.

    ``done()`` tells whether it has settled; ``result()`` then reads it without waiting.
    """

    def __init__(self) -> None:
        self._done = False
        self._settled: anyio.Event | None = None  # made only when awaited before settling
        self._value: T | None = None
        self._error: OhosError | None = None

    def _settle(self, value: T | None, error: OhosError | None) -> None:
        self._value, self._error, self._done = value, error, True
        if self._settled is not None:
            self._settled.set()

    def done(self) -> bool:
        """Whether the call has settled (``result`` then gives its outcome at once)."""
        return self._done

    def result(self) -> T:
        """The value of a settled call, or its ``OhosError`` raised.

        Raises:
            RuntimeError: the call has not settled yet (await it instead).
        """
        if not self._done:
            raise RuntimeError("the call has not settled yet")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    async def _result(self) -> T:
        if self._done:
            await anyio.lowlevel.checkpoint()  # an await always lets others run
        else:
            self._settled = settled = anyio.Event()
            await settled.wait()
        return self.result()

    def __await__(self) -> Generator[Any, Any, T]:
        return self._result().__await__()


def create_websocket(
    *, api: int | None = None, internet_permission: bool = True, limits: Limits | None = None
) -> WebSocket:
    """``webSocket.createWebSocket()``; use the result with ``async with``.

    ``api`` is the API level to behave as (``None``: the newest); ``internet_permission``
    ``False`` makes calls fail with 201; ``limits`` protect this process from the server.
    """
    return WebSocket(api=api, internet_permission=internet_permission, limits=limits)


class WebSocket:
    """One ``WebSocket`` object; its I/O runs while the ``async with`` block is open."""

    def __init__(
        self,
        *,
        api: int | None = None,
        internet_permission: bool = True,
        limits: Limits | None = None,
    ) -> None:
        self._core = OhosSocket(
            api=api, internet_permission=internet_permission, path_exists=os.path.exists
        )
        self._limits = limits or Limits()
        self.read_gate: Callable[[], Awaitable[None]] | None = None
        """Awaited before each read from the socket: lets a slow consumer hold reading back."""
        self._tasks: anyio.abc.TaskGroup | None = None
        self._jobs: HandOff[Job] = HandOff()
        """What the app's JS thread has still to run, in order."""
        self._actions: deque[tuple[OhosAction, int]] = deque()
        """What is still to be written, with the generation it is for."""
        self._writing = False
        """A task is writing queued actions (the writer task, or a caller of send_and_write)."""
        self._writer_wake: anyio.Event | None = None
        """Set to wake the writer task while it waits for actions."""
        self._connections: dict[int, websocket.WebSocketConnection] = {}
        """Open connections by generation (one per ``connect``), until closed."""
        self._generation = 0
        self._respond_to_connect: Responder = _ignore
        self._responders: dict[int, Responder] = {}
        """How to settle each connect call, by generation, once its host is looked up."""
        self._wake: anyio.Event | None = None
        self._armed: float | None = None
        self._failure: tuple[str, HandshakeFailed] | None = None
        self._now: Callable[[], float] = anyio.current_time

    # ----------------------------------------------------------------------------- lifetime

    async def __aenter__(self) -> Self:
        if self._tasks is not None:
            raise RuntimeError("this WebSocket is already in use")
        self._jobs = HandOff()
        self._actions.clear()
        self._now = loop_clock()
        tasks = anyio.create_task_group()
        await tasks.__aenter__()
        self._tasks = tasks
        self._wake = anyio.Event()
        tasks.start_soon(self._deliver)
        tasks.start_soon(self._write)
        tasks.start_soon(self._run_timers)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tasks, self._tasks = self._tasks, None
        assert tasks is not None, "WebSocket left without being entered"
        tasks.cancel_scope.cancel()
        connections, self._connections = list(self._connections.values()), {}
        with anyio.CancelScope(shield=True):
            for connection in connections:
                await connection.abort()
        try:
            return await tasks.__aexit__(exc_type, exc, tb)
        finally:
            self._jobs.close()
            self._actions.clear()

    @property
    def handshake_failure(self) -> tuple[str, HandshakeFailed] | None:
        """The URL and failure of the latest connection attempt, if it could not be made.

        Set when the host could not be looked up (kind ``dns``) or the handshake failed.
        """
        return self._failure

    # -------------------------------------------------------------------------------- calls

    @overload
    def connect(self, url: str, /) -> Pending[bool]: ...
    @overload
    def connect(self, url: str, options: Mapping[str, object], /) -> Pending[bool]: ...
    @overload
    def connect(self, url: str, callback: Callback, /) -> None: ...
    @overload
    def connect(self, url: str, options: Mapping[str, object], callback: Callback, /) -> None: ...

    def connect(self, *args: Any) -> Pending[bool] | None:
        """``connect(url[, options][, callback])``: resolves ``True`` once connecting starts."""
        return self._call(parse_connect(args), self._core.connect, settle_later=True)

    @overload
    def send(self, data: str | bytes, /) -> Pending[bool]: ...
    @overload
    def send(self, data: str | bytes, callback: Callback, /) -> None: ...

    def send(self, *args: Any) -> Pending[bool] | None:
        """``send(data[, callback])``: text or bytes, resolves ``True`` once queued."""
        return self._call(parse_send(args), self._core.send)

    async def send_and_write(self, data: str | bytes) -> Pending[bool]:
        """``send(data)``, then write the frame in this task rather than the writer task's.

        The promise settles as ``send``'s does (once queued). The frame is written here only
        when the socket takes it at once; otherwise (a large message, a server that does not
        read) the writer task writes it and this returns at once, as the device's send does.
        For a caller that would only wait for the writer anyway (a script's next step), the
        frame leaves without a task switch.
        """
        pending = self._call(parse_send((data,)), self._core.send, write_here=True)
        assert pending is not None
        await self._write_here()
        return pending

    @overload
    def close(self, /) -> Pending[bool]: ...
    @overload
    def close(self, options: Mapping[str, object], /) -> Pending[bool]: ...
    @overload
    def close(self, callback: Callback, /) -> None: ...
    @overload
    def close(self, options: Mapping[str, object], callback: Callback, /) -> None: ...

    def close(self, *args: Any) -> Pending[bool] | None:
        """``close([options][, callback])``: ``{code, reason}``, resolves ``True`` at once."""
        return self._call(parse_close(args), self._core.close)

    def on(self, *args: Any) -> None:
        """``on(type, callback)``: the only listener of ``type`` from now on."""
        self._core.listeners.on(*args)

    def off(self, *args: Any) -> None:
        """``off(type[, callback])``: remove the listener (only ``callback``, if given)."""
        self._core.listeners.off(*args)

    def _call(
        self,
        parsed: Parsed[T],
        run: Callable[[T, float], CallResult],
        *,
        settle_later: bool = False,
        write_here: bool = False,
    ) -> Pending[bool] | None:
        """Make the call now; its result reaches the app through the JS thread.

        ``settle_later``: a successful connect settles once its host has been looked up.
        ``write_here``: the caller writes what the call queued (the writer task is not woken).
        """
        if self._tasks is None:
            raise RuntimeError("use the WebSocket inside 'async with' to make calls")
        params = parsed.params
        result = params if isinstance(params, CallError) else run(params, self._now())
        callback = parsed.callback
        pending: Pending[bool] | None = Pending() if callback is None else None
        error = result if isinstance(result, CallError) else None
        if result is True and settle_later:
            self._respond_to_connect = partial(_respond, pending, callback)
        elif pending is not None and not self._jobs:
            # nothing is waiting to be delivered before it: the promise settles now (its
            # awaiter resumes later, as after any await), without a turn of the JS thread
            _respond(pending, None, error)
        else:
            self._jobs.put(partial(_respond, pending, callback, error))
        self._pump(wake_writer=not write_here)
        return pending

    # ------------------------------------------------------------------------ the JS thread

    async def _deliver(self) -> None:
        while (job := await self._jobs.get()) is not None:
            job()
            self._run_jobs()

    def _run_jobs(self) -> None:
        """Run the jobs waiting, in order (called where no app call is on the stack)."""
        while (job := self._jobs.take()) is not None:
            job()

    def _pump(self, *, wake_writer: bool = True, deliver_here: bool = False) -> None:
        """Queue what the core produced: events for the app, actions for the writer.

        ``deliver_here``: the caller runs the jobs itself at once (the JS thread is not woken).
        """
        core = self._core
        events = core.take_events()
        if deliver_here and len(events) == 1 and not self._jobs:
            self._call_listener(events[0])  # nothing waits before it: no turn through the queue
        else:
            for event in events:
                self._jobs.put(partial(self._call_listener, event), wake=not deliver_here)
        for action in core.take_actions():
            if isinstance(action, ConnectRequest):
                self._generation += 1  # from now on, what the old connection reads is stale
                self._responders[self._generation] = self._respond_to_connect
            self._actions.append((action, self._generation))
        if wake_writer:
            self._wake_writer()
        if self._wake is not None and _sooner(core.next_deadline(), self._armed):
            self._wake.set()  # the timer must ring earlier than it was set to

    def _call_listener(self, event: Event) -> None:
        """Call the listener ``event`` has now, if any, as ArkTS calls it."""
        name = event.name
        listener = self._core.listeners.get(name)
        if listener is None:
            return
        if name in _CALLED_WITH_ERR:
            listener(None, event.value)
        elif name == "dataEnd":
            listener()
        else:
            listener(event.value)

    # ----------------------------------------------------------------------------- the wire

    def _feed(self, event: WireEvent, generation: int) -> None:
        if generation == self._generation:
            self._core.receive(event, self._now())
            self._pump(deliver_here=True)
            self._run_jobs()  # the reader stands in for the JS thread: no task switch

    def _wake_writer(self) -> None:
        if self._actions and not self._writing and self._writer_wake is not None:
            self._writer_wake.set()

    async def _write(self) -> None:
        """The writer task: write what is queued, in order, whenever a caller does not."""
        while True:
            while not self._actions or self._writing:
                self._writer_wake = wake = anyio.Event()
                try:
                    await wake.wait()
                finally:
                    self._writer_wake = None
            self._writing = True
            try:
                while self._actions:
                    await self._perform(*self._actions.popleft())
            finally:
                self._writing = False

    async def _write_here(self) -> None:
        """Write the messages queued, in this task, while the socket takes them at once.

        Only messages, each on a connection that can write it without waiting (``send_now``,
        else ``ready_to_write``: no write under way, the socket has room), so the caller does
        not wait on a peer that does not read. Whatever is left is the writer task's. Every
        ``YIELD_EVERY`` messages the stream declines to write without waiting, and the write
        that ``send`` then does passes through the event loop, so a script that only sends
        lets the other tasks run.
        """
        if self._writing:
            self._wake_writer()
            return
        self._writing = True
        try:
            while self._actions:
                action, generation = self._actions[0]
                connection = self._connections.get(generation)
                if not isinstance(action, SendMessage) or connection is None:
                    break
                if connection.send_now(action):
                    self._actions.popleft()
                    continue
                if not connection.ready_to_write(_most_bytes(action.data)):
                    break
                self._actions.popleft()
                with contextlib.suppress(*_WRITE_ERRORS):
                    await connection.send(action)
        finally:
            self._writing = False
            self._wake_writer()

    async def _perform(self, action: OhosAction, generation: int) -> None:
        """Do one queued action for the connection of ``generation`` (if it is still there)."""
        if isinstance(action, ConnectRequest):
            assert self._tasks is not None
            self._tasks.start_soon(self._connect, action, generation)
            return
        connection = self._connections.get(generation)
        if connection is None:
            return
        if isinstance(action, CloseTransport):
            del self._connections[generation]
        with contextlib.suppress(*_WRITE_ERRORS):
            await connection.send(action)

    async def _connect(self, request: ConnectRequest, generation: int) -> None:
        respond = self._responders.pop(generation)
        parts = urlsplit(request.url)
        if generation == self._generation:
            self._failure = None
        try:
            await anyio.getaddrinfo(parts.hostname or "", parts.port)
        except (OSError, UnicodeError) as exc:
            failed = CONNECT_FAILED
            if generation == self._generation:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                self._failure = (
                    request.url,
                    HandshakeFailed("dns", f"cannot resolve host: {reason}"),
                )
                failed = self._core.connect_failed(self._now())
                self._pump()
            self._jobs.put(lambda: respond(failed))
            return
        self._jobs.put(lambda: respond(None))
        try:
            connection, done = await websocket.connect(request, self._limits)
        except HandshakeError as exc:
            if generation == self._generation:
                self._failure = (request.url, exc.failed)
            self._feed(exc.failed, generation)
            return
        except (ValueError, OSError) as exc:  # a host or option the engine cannot use
            self._feed(HandshakeFailed("invalid", f"{type(exc).__name__}: {exc}"), generation)
            return
        if generation != self._generation:
            await connection.abort()
            return
        self._connections[generation] = connection
        self._feed(done, generation)
        while generation == self._generation:
            if self.read_gate is not None:
                await self.read_gate()
            try:
                event = await connection.receive()
            except ConnectionClosed:
                return
            self._feed(event, generation)
            if isinstance(event, ConnectionLost):
                return

    async def _run_timers(self) -> None:
        """Tick the core when its next deadline comes. A deadline that moves later (the
        heartbeat's, at each pong) does not wake this task: the timer rings at the earlier
        time, the tick finds nothing due, and it is set again for the new one."""
        while True:
            self._armed = deadline = self._core.next_deadline()
            delay = math.inf if deadline is None else deadline - self._now()
            assert self._wake is not None
            with anyio.move_on_after(max(delay, 0.0)):
                await self._wake.wait()
            self._wake = anyio.Event()
            self._core.tick(self._now())
            self._pump()


def _sooner(deadline: float | None, armed: float | None) -> bool:
    """Whether ``deadline`` comes before the timer ``armed`` (``None``: none) would ring."""
    return deadline is not None and (armed is None or deadline < armed)
