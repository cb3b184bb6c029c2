"""The ``@ohos.net.webSocket`` client as a sans-I/O state machine.

``OhosSocket`` takes the app's calls (already parsed, see ``ohos_args``) and the wire events
the engine reads, plus ``tick(now)`` for its timers. It answers each call at once with
``True`` or a ``CallError``, and queues what follows: the events an ArkTS app would see
(``take_events``, in native order, only for event names with a listener at that moment) and
what to do on the wire (``take_actions``). ``next_deadline`` says when ``tick`` is due.

Life cycle: IDLE → CONNECTING → OPEN → CLOSING → IDLE (torn down, may connect again).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping

from wscenario.core.events import CallError, Event, EventValue
from wscenario.core.model import JSON
from wscenario.core.ohos_args import ConnectArgs
from wscenario.core.ohos_errors import (
    CONNECT_FAILED,
    CONNECTION_EXISTS,
    LEGACY_SEND_REFUSED,
    PERMISSION_DENIED,
    SEND_REFUSED,
    UNKNOWN_ERROR,
    URL_ERROR,
)
from wscenario.core.ohos_headers import header_receive_value
from wscenario.core.ohos_listeners import ListenerRegistry
from wscenario.core.ohos_receive import MessageAssembler
from wscenario.core.ohos_request import (
    Heartbeat,
    connect_request,
    heartbeat,
    missing_certificate,
    parse_url,
)
from wscenario.core.wire import (
    CloseReceived,
    CloseTransport,
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
    SendPong,
    WireAction,
    WireEvent,
)

CallResult = bool | CallError
"""What a call resolves with: ``True``, or the error it rejects with."""

OhosAction = ConnectRequest | WireAction
"""What the session asks the engine to do."""

CLOSE_ACK_TIMEOUT = 5.0
"""Seconds the client waits for the server's answer to its close frame."""

DEFAULT_CLOSE_CODE = 1000
DEFAULT_CLOSE_REASON = "CLOSE_NORMAL"
LINK_DOWN = "The link is down"
MAX_CLOSE_REASON_BYTES = 123
ERROR_CODE = 200
"""The only code an ``error`` event carries."""


class State(enum.Enum):
    """Where the native session is."""

    IDLE = "idle"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"


def client_close_code(value: object) -> int:
    """The code ``close()`` uses: 1000..1015 as given, anything else 1000."""
    if isinstance(value, int) and not isinstance(value, bool) and 1000 <= value <= 1015:
        return value
    return DEFAULT_CLOSE_CODE


def client_close_reason(value: object) -> str:
    """The reason ``close()`` uses: a non-empty string as given, else ``CLOSE_NORMAL``."""
    return value if isinstance(value, str) and value else DEFAULT_CLOSE_REASON


def wire_reason(reason: str) -> str:
    """``reason`` cut to the 123 UTF-8 bytes a close frame carries, on a character boundary."""
    return reason.encode("utf-8")[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


def peer_close_code(code: int) -> int:
    """The code the app sees for a server's close code: invalid ones become 1002."""
    if code < 1000 or 1004 <= code <= 1006 or 1016 <= code <= 2999:
        return 1002
    return code


class OhosSocket:
    """One ``WebSocket`` object of ``@ohos.net.webSocket``.

    ``api`` is the level to behave as (``None``: newest); ``path_exists`` answers whether a
    certificate path resolves on this machine (the only outside fact a connect needs).
    """

    def __init__(
        self,
        *,
        path_exists: Callable[[str], bool],
        api: int | None = None,
        internet_permission: bool = True,
    ) -> None:
        self.api = api
        self.listeners = ListenerRegistry(api)
        self._permission = internet_permission
        self._path_exists = path_exists
        self._events: list[Event] = []
        self._actions: list[OhosAction] = []
        self._reset()

    def _reset(self) -> None:
        self._state = State.IDLE
        self._offered: tuple[str, ...] = ()
        self._heartbeat = Heartbeat(0, 0)
        self._pending: list[str | bytes] = []
        self._close: tuple[int, str] | None = None
        self._close_deadline: float | None = None
        self._last_valid = 0.0
        self._ping_sent = False
        self._assembler = MessageAssembler(self.api)

    # ------------------------------------------------------------------------------ outputs

    @property
    def state(self) -> State:
        """The session's state."""
        return self._state

    def take_events(self) -> list[Event]:
        """The app events produced since the last call, in delivery order."""
        events, self._events = self._events, []
        return events

    def take_actions(self) -> list[OhosAction]:
        """What to do on the wire, in order, since the last call."""
        actions, self._actions = self._actions, []
        return actions

    def next_deadline(self) -> float | None:
        """When ``tick`` must be called next (``None``: no timer running)."""
        if self._close_deadline is not None:
            return self._close_deadline
        if self._state is not State.OPEN or self._heartbeat.interval == 0:
            return None
        ping_at = self._last_valid + self._heartbeat.interval
        if not self._ping_sent:
            return ping_at
        return ping_at + self._heartbeat.timeout if self._heartbeat.timeout else None

    def _emit(self, name: str, value: EventValue, now: float) -> None:
        """Queue an app event, if its name has a listener now (else nothing is queued)."""
        if self.listeners.has(name):
            self._events.append(Event(name, value, now))

    def _error(self, status: int, now: float) -> None:
        """The ``error`` event: ``{code: 200, data: "<status>"}`` (no ``data`` up to API 11)."""
        value: dict[str, JSON] = {"code": ERROR_CODE}
        if self.api is None or self.api >= 12:
            value["data"] = str(status)
        self._emit("error", value, now)

    # -------------------------------------------------------------------------------- calls

    def connect(self, args: ConnectArgs, now: float) -> CallResult:
        """``connect``: ``True`` once the attempt starts (a ``ConnectRequest`` is queued)."""
        if not self._permission:
            return PERMISSION_DENIED
        missing = missing_certificate(args.options, self._path_exists)
        if missing is not None:
            return missing
        if self._state is not State.IDLE:
            return CONNECTION_EXISTS
        target = parse_url(args.url, self.api)
        if target is None:
            return URL_ERROR
        request = connect_request(target, args.options, self.api)
        self._state = State.CONNECTING
        self._offered = request.subprotocols
        self._heartbeat = heartbeat(args.options, self.api)
        self._actions.append(request)
        return True

    def connect_failed(self, now: float) -> CallError:
        """The queued ``ConnectRequest`` could not even start (its host does not resolve).

        The device looks the host up before ``connect`` settles, so the call fails with -1
        after an ``error`` event, and the session is torn down.
        """
        if self._state is State.CONNECTING:
            self._error(0, now)
            self._reset()
        return CONNECT_FAILED

    def send(self, data: str | bytes, now: float) -> CallResult:
        """``send``: ``True`` once queued; written at once when open, at open otherwise."""
        if not self._permission:
            return PERMISSION_DENIED
        if self._state is State.IDLE or self._close is not None:
            legacy = self.api is not None and self.api <= 10
            return LEGACY_SEND_REFUSED if legacy else SEND_REFUSED
        if self._state is State.CONNECTING:
            self._pending.append(data)
        else:
            self._actions.append(SendMessage(data))
        return True

    def close(self, options: Mapping[str, object], now: float) -> CallResult:
        """``close``: ``True`` once requested; the ``close`` event follows the server's answer."""
        if not self._permission:
            return PERMISSION_DENIED
        if self._state is State.IDLE or self._close is not None:
            return UNKNOWN_ERROR
        self._close = (
            client_close_code(options.get("code")),
            client_close_reason(options.get("reason")),
        )
        self._pending.clear()
        if self._state is State.OPEN:
            self._send_close(now)
        return True

    def _send_close(self, now: float) -> None:
        assert self._close is not None
        code, reason = self._close
        self._state = State.CLOSING
        self._close_deadline = now + CLOSE_ACK_TIMEOUT
        self._actions.append(SendClose(code, wire_reason(reason)))

    # ---------------------------------------------------------------------------- the wire

    def receive(self, event: WireEvent, now: float) -> None:
        """Take in what the engine read (ignored when it no longer concerns the session)."""
        if self._state is State.IDLE:
            return
        if self._state is State.CONNECTING:
            self._receive_handshake(event, now)
        elif isinstance(event, DataFrame):
            self._receive_data(event, now)
        elif isinstance(event, PingReceived):
            if self._state is State.OPEN:
                self._actions.append(SendPong(event.data))
        elif isinstance(event, PongReceived):
            self._last_valid = now
            self._ping_sent = False
        elif isinstance(event, CloseReceived):
            self._receive_close(event, now)
        elif isinstance(event, ConnectionLost):
            self._lost(now)

    def _receive_handshake(self, event: WireEvent, now: float) -> None:
        if isinstance(event, HandshakeFailed):
            self._error(event.status, now)
            self._reset()
        elif isinstance(event, ConnectionLost):
            self._error(0, now)
            self._actions.append(CloseTransport(abort=True))
            self._reset()
        elif isinstance(event, HandshakeDone):
            if event.subprotocol is not None and event.subprotocol not in self._offered:
                self._error(event.status, now)
                self._actions.append(CloseTransport(abort=True))
                self._reset()
            else:
                self._open(event, now)

    def _open(self, event: HandshakeDone, now: float) -> None:
        self._state = State.OPEN
        self._last_valid = now
        headers: dict[str, JSON] = dict(header_receive_value(event.headers))
        self._emit("headerReceive", headers, now)
        self._emit("open", {"status": event.status, "message": event.reason}, now)
        info: dict[str, JSON] = {"status": event.status, "message": event.reason}
        if event.subprotocol:
            info["protocol"] = event.subprotocol
        self._emit("openInfo", info, now)
        if self._close is not None:
            self._send_close(now)
        else:
            self._actions.extend(SendMessage(data) for data in self._pending)
        self._pending.clear()

    def _receive_data(self, frame: DataFrame, now: float) -> None:
        if self._state is not State.OPEN or not self.listeners.has("message"):
            return
        for message in self._assembler.feed(frame):
            self._events.append(Event("message", message.data, now))
            if message.data_end:
                self._emit("dataEnd", None, now)

    def _receive_close(self, event: CloseReceived, now: float) -> None:
        if self._close is not None:
            self._finish_client_close(now)
            return
        if event.code is None:
            self._actions.append(SendClose(None, ""))
            code, reason = DEFAULT_CLOSE_CODE, LINK_DOWN
        else:
            # libwebsockets rewrites a reserved code in the payload it then echoes
            code, reason = peer_close_code(event.code), event.reason or LINK_DOWN
            self._actions.append(SendClose(code, event.reason))
        self._end(code, reason, now)

    def _finish_client_close(self, now: float) -> None:
        assert self._close is not None
        self._end(*self._close, now)

    def _end(self, code: int, reason: str, now: float) -> None:
        self._emit("close", {"code": code, "reason": reason}, now)
        self._actions.append(CloseTransport())
        self._reset()

    def _lost(self, now: float) -> None:
        if self._close is not None:
            self._finish_client_close(now)
            return
        self._link_down(now)

    def _link_down(self, now: float) -> None:
        self._error(0, now)
        self._emit("close", {"code": 0, "reason": LINK_DOWN}, now)
        self._actions.append(CloseTransport(abort=True))
        self._reset()

    # ------------------------------------------------------------------------------ timers

    def tick(self, now: float) -> None:
        """Run the timers that are due at ``now``: close-ack wait, heartbeat."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return
        if self._close_deadline is not None:
            self._finish_client_close(now)
        elif self._ping_sent:
            self._link_down(now)
        else:
            self._ping_sent = True
            self._actions.append(SendPing())
