"""The ``profile: ohos`` client as an ``engine.driver.Driver``: one emulated ohos WebSocket.

Every event an ArkTS app can subscribe to has a listener that turns it into an ``Event``
(``open {status, message}``, ``message`` text or bytes, ``dataEnd`` ``None``,
``close {code, reason}``, ``error {code, data}``, ``headerReceive {name: value}``), in the
order the app would see them. Calls map to ``connect``/``send``/``close`` of the emulation;
a rejected call becomes the ``CallError`` the device reports. Server-only steps raise
``ServerOnlyStep``.

Leaving the ``async with`` block does what an app's cleanup does: a connection still open is
closed with the device's defaults (``hang_up``), the driver waits up to ``Limits.close_timeout``
for the server's answer, then TCP is closed. Events of that cleanup are not reported.

::

    async with OhosDriver(api=scenario.client.api, limits=scenario.limits) as driver:
        await StepRunner(scenario, driver, variables=..., env=...).run_steps()
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

import anyio

from wscenario.core.events import CallError, Event, EventValue
from wscenario.core.model import CLIENT_EVENTS_OHOS, ConnectOptions, Limits, RawFrame
from wscenario.core.wire import HandshakeFailed
from wscenario.engine.event_queue import READ_AHEAD, EventQueue
from wscenario.ohos import OhosError, Pending, WebSocket

ENDING_EVENTS = frozenset({"close", "error"})
"""Events after which an open session has nothing more to say."""


class ServerOnlyStep(AssertionError):
    """A step only a fake server can perform was given to the ohos client."""

    def __init__(self, step: str) -> None:
        super().__init__(f"'{step}' is a fake-server step; an ohos client cannot do it")


def options_object(options: ConnectOptions) -> dict[str, object]:
    """``WebSocketRequestOptions`` as an ArkTS app would write them for ``options``."""
    out: dict[str, object] = {}
    if options.header:
        out["header"] = dict(options.header)
    if options.protocol is not None:
        out["protocol"] = options.protocol
    if options.ca_path is not None:
        out["caPath"] = str(options.ca_path)
    if options.client_cert is not None:
        out["clientCert"] = {
            "certPath": str(options.client_cert.cert_path),
            "keyPath": str(options.client_cert.key_path),
            "keyPassword": options.client_cert.key_password,
        }
    if options.ping_interval is not None:
        out["pingInterval"] = options.ping_interval
    if options.pong_timeout is not None:
        out["pongTimeout"] = options.pong_timeout
    if options.skip_server_cert_verification:
        out["skipServerCertVerification"] = True
    return out


class OhosDriver:
    """Drives one emulated ``@ohos.net.webSocket`` object for a client scenario."""

    def __init__(
        self,
        *,
        api: int | None = None,
        limits: Limits | None = None,
        internet_permission: bool = True,
        clock: Callable[[], float] = anyio.current_time,
    ) -> None:
        self.websocket = WebSocket(api=api, internet_permission=internet_permission, limits=limits)
        self.limits = limits or Limits()
        self._clock = clock
        self._ended = anyio.Event()
        """Set while no session is open; a fresh one at each ``open``."""
        self._ended.set()
        self._started = 0.0
        self._events = EventQueue(READ_AHEAD)
        for name in CLIENT_EVENTS_OHOS:
            self.websocket.on(name, self._listener(name))

    async def __aenter__(self) -> Self:
        self._started = self._clock()
        self._events = EventQueue(READ_AHEAD)
        self.websocket.read_gate = self._events.wait_for_room
        await self.websocket.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            if exc is None:
                await self.hang_up()
            return await self.websocket.__aexit__(exc_type, exc, tb)
        finally:
            self._events.close()

    def _listener(self, name: str) -> Callable[..., None]:
        opens, ends = name == "open", name in ENDING_EVENTS

        def record(*args: object) -> None:
            value: EventValue = args[-1] if args else None  # type: ignore[assignment]
            self._events.put(Event(name, value, self._clock() - self._started))
            if opens:
                self._ended = anyio.Event()
            elif ends:
                self._ended.set()

        return record

    @property
    def handshake_failure(self) -> tuple[str, HandshakeFailed] | None:
        """The URL and failure of the latest connection attempt, if it could not be made."""
        return self.websocket.handshake_failure

    async def hang_up(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the connection as an app's cleanup would, if one is open.

        ``close({code, reason})`` (``None``: the device's defaults, 1000 ``CLOSE_NORMAL``),
        then wait up to ``Limits.close_timeout`` for the session to end (its ``close`` or
        ``error`` event), also when an earlier ``close`` is still waiting for the answer.
        """
        await self.close(code, reason)  # refused when there is nothing (more) to close
        with anyio.move_on_after(self.limits.close_timeout):
            await self._ended.wait()

    # -------------------------------------------------------------------------------- calls

    async def connect(self, url: str, options: ConnectOptions) -> CallError | None:
        """``connect(url, options)``: ``None`` once the attempt has started."""
        return await _outcome(self.websocket.connect(url, options_object(options)))

    async def send(
        self,
        data: str | bytes,
        *,
        fragments: int = 1,
        fragment_delay: float = 0.0,
        ping_between: bool = False,
    ) -> CallError | None:
        """``send(data)``: the device always writes one unfragmented frame.

        The frame is written in the script's own task (``WebSocket.send_and_write``); the
        outcome is the promise's, settled once the data was queued.
        """
        if fragments > 1 or ping_between:
            raise ServerOnlyStep("send with fragments")
        return await _outcome(await self.websocket.send_and_write(data))

    async def close(
        self, code: int | None, reason: str | None, *, no_payload: bool = False
    ) -> CallError | None:
        """``close({code, reason})``; ``None`` leaves the device's default."""
        if no_payload:
            raise ServerOnlyStep("close with noPayload")
        options: dict[str, object] = {}
        if code is not None:
            options["code"] = code
        if reason is not None:
            options["reason"] = reason
        return await _outcome(self.websocket.close(options))

    async def ping(self, data: bytes) -> None:
        """Not available: the ohos API has no ping call."""
        raise ServerOnlyStep("ping")

    async def drop(self, *, rst: bool) -> None:
        """Not available to an ohos app."""
        raise ServerOnlyStep("drop")

    async def write_frames(self, frames: tuple[RawFrame, ...]) -> None:
        """Not available to an ohos app."""
        raise ServerOnlyStep("frames")

    async def stop_reading(self) -> None:
        """Not available to an ohos app."""
        raise ServerOnlyStep("stopReading")

    async def next_event(self, within: float) -> Event | None:
        """The next event the app saw, or ``None`` if none arrives within ``within`` seconds."""
        return await self._events.get(within)

    async def flush(self) -> None:
        """Nothing is held back: every call of the ohos API is written as it is made."""


async def _outcome(call: Pending[bool] | None) -> CallError | None:
    """The call's error, if any; a call that has settled is read without waiting."""
    assert call is not None
    try:
        if call.done():
            call.result()
        else:
            await call
    except OhosError as error:
        return CallError(error.code, error.message)
    return None
