"""The ohos client state machine, driven by hand: calls, wire events and timers, no sockets."""

from __future__ import annotations

import pytest

from wscenario.core.events import CallError, Event, EventValue
from wscenario.core.ohos import (
    OhosSocket,
    State,
    client_close_code,
    client_close_reason,
    peer_close_code,
    wire_reason,
)
from wscenario.core.ohos_args import ConnectArgs
from wscenario.core.ohos_listeners import event_names
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
)

FILES = {"/ca.pem", "/c.pem", "/k.pem"}
LINK_DOWN_PAIR = [
    ("error", {"code": 200, "data": "0"}),
    ("close", {"code": 0, "reason": "The link is down"}),
]
DONE = HandshakeDone(
    101, "Switching Protocols", (("Upgrade", "websocket"), ("Connection", "Upgrade"))
)


def listener(*_: object) -> None:
    """A listener; the state machine only checks that one exists."""


def make(api: int | None = None, *, permission: bool = True, listen: bool = True) -> OhosSocket:
    sock = OhosSocket(api=api, internet_permission=permission, path_exists=FILES.__contains__)
    if listen:
        for name in event_names(api):
            sock.listeners.on(name, listener)
    return sock


def state(sock: OhosSocket) -> State:
    return sock.state


def pairs(events: list[Event]) -> list[tuple[str, EventValue]]:
    return [(e.name, e.value) for e in events]


def connecting(
    api: int | None = None, options: dict[str, object] | None = None, **kw: bool
) -> OhosSocket:
    sock = make(api, **kw)
    assert sock.connect(ConnectArgs("ws://h/", options or {}), 0.0) is True
    assert isinstance(sock.take_actions()[0], ConnectRequest)
    return sock


def opened(
    api: int | None = None, options: dict[str, object] | None = None, **kw: bool
) -> OhosSocket:
    sock = connecting(api, options, **kw)
    sock.receive(DONE, 0.0)
    sock.take_events()
    assert sock.take_actions() == []
    assert state(sock) is State.OPEN
    return sock


# ------------------------------------------------------------------------------- connect


def test_connect_resolves_when_the_attempt_starts() -> None:
    sock = make()
    assert sock.connect(ConnectArgs("ws://h:81?q", {"protocol": "p"}), 0.0) is True
    assert state(sock) is State.CONNECTING
    [request] = sock.take_actions()
    assert isinstance(request, ConnectRequest)
    assert (request.url, request.subprotocols) == ("ws://h:81/?q", ("p",))
    assert sock.take_events() == []


@pytest.mark.parametrize(
    ("url", "options", "error"),
    [
        ("http://h/", {}, CallError(2302001, "Websocket url error")),
        (
            "ws://h/",
            {"caPath": "/missing.pem"},
            CallError(2302002, "Websocket certificate file does not exist"),
        ),
        (
            "ws://h/",
            {"clientCert": {"certPath": "/c.pem", "keyPath": "/nokey"}},
            CallError(2302002, "Websocket certificate file does not exist"),
        ),
    ],
)
def test_connect_rejections(url: str, options: dict[str, object], error: CallError) -> None:
    sock = make()
    assert sock.connect(ConnectArgs(url, options), 0.0) == error
    assert state(sock) is State.IDLE
    assert sock.take_actions() == []


def test_connect_with_existing_certificates_starts() -> None:
    options: dict[str, object] = {
        "caPath": "/ca.pem",
        "clientCert": {"certPath": "/c.pem", "keyPath": "/k.pem"},
    }
    assert make().connect(ConnectArgs("wss://h/", options), 0.0) is True


def test_second_connect_on_a_live_session_is_refused() -> None:
    exists = CallError(2302003, "Websocket connection already exist")
    sock = connecting()
    assert sock.connect(ConnectArgs("ws://h/"), 0.0) == exists
    sock.receive(DONE, 0.0)
    assert sock.connect(ConnectArgs("ws://h/"), 0.0) == exists
    assert sock.close({}, 0.0) is True
    assert sock.connect(ConnectArgs("ws://h/"), 0.0) == exists


def test_certificates_are_checked_before_the_session_and_the_url() -> None:
    sock = connecting()
    missing = sock.connect(ConnectArgs("bad", {"caPath": "/nope"}), 0.0)
    assert missing == CallError(2302002, "Websocket certificate file does not exist")


def test_permission_is_checked_first_in_every_call() -> None:
    denied = CallError(201, "Permission denied")
    sock = make(permission=False)
    assert sock.connect(ConnectArgs("bad", {"caPath": "/nope"}), 0.0) == denied
    assert sock.send("x", 0.0) == denied
    assert sock.close({}, 0.0) == denied
    assert sock.take_actions() == []


@pytest.mark.parametrize(("status", "data"), [(404, "404"), (0, "0")])
def test_handshake_failure_gives_only_an_error_and_tears_down(status: int, data: str) -> None:
    sock = connecting()
    sock.receive(HandshakeFailed("status", "nope", status), 1.0)
    assert pairs(sock.take_events()) == [("error", {"code": 200, "data": data})]
    assert sock.take_actions() == []
    assert state(sock) is State.IDLE
    assert sock.connect(ConnectArgs("ws://h/"), 2.0) is True


def test_connection_lost_before_the_handshake_is_an_error_only() -> None:
    sock = connecting()
    sock.receive(ConnectionLost("reset"), 1.0)
    assert pairs(sock.take_events()) == [("error", {"code": 200, "data": "0"})]
    assert sock.take_actions() == [CloseTransport(abort=True)]
    assert state(sock) is State.IDLE


def test_data_before_the_handshake_is_ignored() -> None:
    sock = connecting()
    sock.receive(DataFrame("text", "x", True, True), 0.0)
    assert sock.take_events() == []
    assert state(sock) is State.CONNECTING


def test_unoffered_subprotocol_fails_the_handshake() -> None:
    sock = connecting()
    sock.receive(HandshakeDone(101, "Switching Protocols", (), subprotocol="chat"), 1.0)
    assert pairs(sock.take_events()) == [("error", {"code": 200, "data": "101"})]
    assert sock.take_actions() == [CloseTransport(abort=True)]
    assert state(sock) is State.IDLE


def test_offered_subprotocol_opens() -> None:
    sock = connecting(options={"protocol": "chat"})
    sock.receive(HandshakeDone(101, "OK", (), subprotocol="chat"), 1.0)
    assert pairs(sock.take_events()) == [
        ("headerReceive", {}),
        ("open", {"status": 101, "message": "OK"}),
        ("openInfo", {"status": 101, "message": "OK", "protocol": "chat"}),
    ]


# ---------------------------------------------------------------------------------- open


def test_open_emits_header_receive_then_open_then_open_info() -> None:
    sock = connecting()
    sock.receive(DONE, 1.5)
    events = sock.take_events()
    assert pairs(events) == [
        ("headerReceive", {"upgrade": "websocket", "connection": "Upgrade"}),
        ("open", {"status": 101, "message": "Switching Protocols"}),
        ("openInfo", {"status": 101, "message": "Switching Protocols"}),
    ]
    assert [e.t for e in events] == [1.5, 1.5, 1.5]


def test_open_at_api_20_has_no_open_info() -> None:
    sock = connecting(20)
    sock.receive(DONE, 0.0)
    assert [e.name for e in sock.take_events()] == ["headerReceive", "open"]


def test_events_without_a_listener_are_not_emitted() -> None:
    sock = make(listen=False)
    sock.listeners.on("open", listener)
    sock.connect(ConnectArgs("ws://h/"), 0.0)
    sock.receive(DONE, 0.0)
    sock.receive(ConnectionLost("eof"), 0.0)
    assert [e.name for e in sock.take_events()] == ["open"]


# ------------------------------------------------------------------------------- receive


def test_fragmented_message_with_a_ping_between_is_one_message_and_data_end() -> None:
    sock = opened()
    sock.receive(DataFrame("text", "hel", True, False), 1.0)
    sock.receive(PingReceived(b"hb"), 1.0)
    sock.receive(DataFrame("text", "lo", False, True), 1.0)
    assert pairs(sock.take_events()) == [("message", "hello"), ("dataEnd", None)]
    assert sock.take_actions() == [SendPong(b"hb")]


def test_binary_message_and_no_data_end_without_its_listener() -> None:
    sock = opened()
    sock.listeners.off("dataEnd")
    sock.receive(DataFrame("binary", b"\x00\x01", True, True), 1.0)
    assert pairs(sock.take_events()) == [("message", b"\x00\x01")]


@pytest.mark.parametrize(
    ("api", "names"), [(10, ["message"]), (11, ["message"]), (12, ["message", "dataEnd"])]
)
def test_data_end_by_api_level(api: int, names: list[str]) -> None:
    sock = opened(api)
    sock.receive(DataFrame("text", "t", True, True), 1.0)
    assert [e.name for e in sock.take_events()] == names


def test_legacy_api_delivers_each_frame() -> None:
    sock = opened(10)
    sock.receive(DataFrame("text", "a", True, False), 1.0)
    sock.receive(DataFrame("text", "b", False, True), 1.0)
    assert pairs(sock.take_events()) == [("message", "a"), ("message", "b")]


def test_data_without_a_message_listener_is_dropped_not_buffered() -> None:
    sock = opened()
    sock.listeners.off("message")
    sock.receive(DataFrame("text", "lost", True, True), 1.0)
    sock.receive(DataFrame("text", "head ", True, False), 1.0)
    sock.listeners.on("message", listener)
    sock.receive(DataFrame("text", "tail", False, True), 1.0)
    assert pairs(sock.take_events()) == [("message", "tail"), ("dataEnd", None)]


def test_accumulated_head_stays_when_the_last_piece_is_dropped() -> None:
    sock = opened()
    sock.receive(DataFrame("text", "a", True, False), 1.0)
    sock.listeners.off("message")
    sock.receive(DataFrame("text", "b", False, True), 1.0)
    sock.listeners.on("message", listener)
    sock.receive(DataFrame("text", "c", True, True), 1.0)
    assert pairs(sock.take_events()) == [("message", "ac"), ("dataEnd", None)]


def test_data_after_close_is_requested_is_not_delivered() -> None:
    sock = opened()
    sock.close({}, 1.0)
    sock.receive(DataFrame("text", "late", True, True), 1.0)
    sock.receive(PingReceived(b""), 1.0)
    assert sock.take_events() == []
    assert sock.take_actions() == [SendClose(1000, "CLOSE_NORMAL")]


# ---------------------------------------------------------------------------------- send


def test_send_when_open_writes_one_frame() -> None:
    sock = opened()
    assert sock.send("hi", 1.0) is True
    assert sock.send(b"\x00", 1.0) is True
    assert sock.take_actions() == [SendMessage("hi"), SendMessage(b"\x00")]


def test_sends_before_open_are_flushed_at_open() -> None:
    sock = connecting()
    assert sock.send("early", 0.0) is True
    assert sock.send(b"\x01", 0.0) is True
    assert sock.take_actions() == []
    sock.receive(DONE, 1.0)
    assert sock.take_actions() == [SendMessage("early"), SendMessage(b"\x01")]


@pytest.mark.parametrize(
    ("api", "error"),
    [
        (None, CallError(-1, "Websocket Unknown Other Error")),
        (10, CallError(2302999, "Websocket Unknown Other Error")),
    ],
)
def test_send_refusals(api: int | None, error: CallError) -> None:
    sock = make(api)
    assert sock.send("x", 0.0) == error
    sock = opened(api)
    sock.close({}, 1.0)
    assert sock.send("x", 1.0) == error
    sock.receive(CloseReceived(1000, ""), 2.0)
    assert sock.send("x", 2.0) == error


def test_send_after_a_server_close_is_refused() -> None:
    sock = opened()
    sock.receive(CloseReceived(1000, "bye"), 1.0)
    assert sock.send("x", 1.0) == CallError(-1, "Websocket Unknown Other Error")


# --------------------------------------------------------------------------------- close


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (None, 1000),
        (1000, 1000),
        (1015, 1015),
        (999, 1000),
        (1016, 1000),
        (4000, 1000),
        (-1, 1000),
        ("1001", 1000),
        (True, 1000),
    ],
)
def test_client_close_code_is_clamped(value: object, code: int) -> None:
    assert client_close_code(value) == code


@pytest.mark.parametrize(
    ("value", "reason"),
    [(None, "CLOSE_NORMAL"), ("", "CLOSE_NORMAL"), (5, "CLOSE_NORMAL"), ("bye", "bye")],
)
def test_client_close_reason_defaults(value: object, reason: str) -> None:
    assert client_close_reason(value) == reason


def test_wire_reason_is_cut_to_123_bytes_on_a_character_boundary() -> None:
    assert wire_reason("a" * 200) == "a" * 123
    assert wire_reason("a" + "é" * 100) == "a" + "é" * 61
    assert wire_reason("short") == "short"


def test_close_sends_the_frame_and_reports_the_clients_values_on_the_echo() -> None:
    sock = opened()
    reason = "r" * 200
    assert sock.close({"code": 1001, "reason": reason}, 1.0) is True
    assert state(sock) is State.CLOSING
    assert sock.take_actions() == [SendClose(1001, "r" * 123)]
    assert sock.next_deadline() == 6.0
    sock.receive(CloseReceived(1000, "server says"), 2.0)
    assert pairs(sock.take_events()) == [("close", {"code": 1001, "reason": reason})]
    assert sock.take_actions() == [CloseTransport()]
    assert state(sock) is State.IDLE


def test_close_without_an_echo_completes_after_5_seconds() -> None:
    sock = opened()
    sock.close({"code": 4000}, 1.0)
    sock.take_actions()
    sock.tick(5.9)
    assert sock.take_events() == []
    sock.tick(6.0)
    assert pairs(sock.take_events()) == [("close", {"code": 1000, "reason": "CLOSE_NORMAL"})]
    assert sock.take_actions() == [CloseTransport()]
    assert sock.next_deadline() is None


def test_transport_lost_while_closing_reports_the_clients_close_without_error() -> None:
    sock = opened()
    sock.close({}, 1.0)
    sock.receive(ConnectionLost("eof"), 1.5)
    assert pairs(sock.take_events()) == [("close", {"code": 1000, "reason": "CLOSE_NORMAL"})]


def test_second_close_and_close_without_session_are_refused() -> None:
    unknown = CallError(2302999, "Websocket Unknown Other Error")
    assert make().close({}, 0.0) == unknown
    sock = opened()
    assert sock.close({}, 1.0) is True
    assert sock.close({}, 1.0) == unknown
    sock = opened()
    sock.receive(CloseReceived(1000, "x"), 1.0)
    assert sock.close({}, 1.0) == unknown


def test_close_while_connecting_drops_queued_sends_and_closes_after_open() -> None:
    sock = connecting()
    sock.send("queued", 0.0)
    assert sock.close({"code": 1001}, 0.0) is True
    assert state(sock) is State.CONNECTING
    assert sock.take_actions() == []
    sock.receive(DONE, 1.0)
    assert [e.name for e in sock.take_events()] == ["headerReceive", "open", "openInfo"]
    assert sock.take_actions() == [SendClose(1001, "CLOSE_NORMAL")]
    assert state(sock) is State.CLOSING


def test_close_while_connecting_then_handshake_failure_is_an_error_only() -> None:
    sock = connecting()
    sock.close({}, 0.0)
    sock.receive(HandshakeFailed("refused", "refused"), 1.0)
    assert pairs(sock.take_events()) == [("error", {"code": 200, "data": "0"})]


# ---------------------------------------------------------------------------- peer close


@pytest.mark.parametrize(
    ("code", "seen"),
    [
        (999, 1002),
        (1000, 1000),
        (1003, 1003),
        (1004, 1002),
        (1005, 1002),
        (1006, 1002),
        (1007, 1007),
        (1015, 1015),
        (1016, 1002),
        (2999, 1002),
        (3000, 3000),
        (4999, 4999),
    ],
)
def test_peer_close_codes_are_rewritten(code: int, seen: int) -> None:
    assert peer_close_code(code) == seen


@pytest.mark.parametrize(
    ("frame", "value", "echo"),
    [
        (CloseReceived(4000, "bye"), {"code": 4000, "reason": "bye"}, SendClose(4000, "bye")),
        (
            CloseReceived(1011, ""),
            {"code": 1011, "reason": "The link is down"},
            SendClose(1011, ""),
        ),
        # libwebsockets rewrites a reserved code in the received payload, then echoes it
        (CloseReceived(2000, "odd"), {"code": 1002, "reason": "odd"}, SendClose(1002, "odd")),
        (
            CloseReceived(None),
            {"code": 1000, "reason": "The link is down"},
            SendClose(None, ""),
        ),
    ],
)
def test_peer_close_is_echoed_and_reported_without_error(
    frame: CloseReceived, value: dict[str, object], echo: SendClose
) -> None:
    sock = opened()
    sock.receive(frame, 1.0)
    assert pairs(sock.take_events()) == [("close", value)]
    assert sock.take_actions() == [echo, CloseTransport()]
    assert state(sock) is State.IDLE
    assert sock.connect(ConnectArgs("ws://h/"), 2.0) is True


# ----------------------------------------------------------------------------- link down


@pytest.mark.parametrize("kind", ["eof", "reset", "timeout", "tls", "protocol"])
def test_abnormal_drop_is_error_then_close_zero(kind: str) -> None:
    sock = opened()
    sock.receive(ConnectionLost(kind), 1.0)  # type: ignore[arg-type]
    assert pairs(sock.take_events()) == LINK_DOWN_PAIR
    assert sock.take_actions() == [CloseTransport(abort=True)]
    assert state(sock) is State.IDLE


def test_protocol_violation_links_down_like_a_drop() -> None:
    sock = opened()
    sock.receive(ConnectionLost("protocol", "bad opcode", 1002), 1.0)
    assert pairs(sock.take_events()) == LINK_DOWN_PAIR
    assert sock.take_actions() == [CloseTransport(abort=True)]


def test_events_after_teardown_are_ignored() -> None:
    sock = opened()
    sock.receive(ConnectionLost("eof"), 1.0)
    sock.take_events()
    sock.take_actions()
    for event in (ConnectionLost("reset"), CloseReceived(1000), DataFrame("text", "x", True, True)):
        sock.receive(event, 2.0)
    assert sock.take_events() == []
    assert sock.take_actions() == []


# ----------------------------------------------------------------------------- heartbeat


def test_heartbeat_pings_after_the_interval_and_hangs_up_after_the_timeout() -> None:
    sock = opened(options={"pingInterval": 1, "pongTimeout": 1})
    assert sock.next_deadline() == 1.0
    sock.tick(0.5)
    assert sock.take_actions() == []
    sock.tick(1.0)
    assert sock.take_actions() == [SendPing()]
    assert sock.next_deadline() == 2.0
    sock.tick(2.0)
    assert pairs(sock.take_events()) == LINK_DOWN_PAIR
    assert sock.take_actions() == [CloseTransport(abort=True)]


def test_a_pong_confirms_the_link_and_restarts_the_interval() -> None:
    sock = opened(options={"pingInterval": 2, "pongTimeout": 1})
    sock.tick(2.0)
    assert sock.take_actions() == [SendPing()]
    sock.receive(PongReceived(b""), 2.5)
    assert sock.next_deadline() == 4.5
    sock.receive(DataFrame("text", "data does not count", True, True), 4.0)
    sock.tick(4.5)
    assert sock.take_actions() == [SendPing()]
    assert sock.next_deadline() == 5.5


def test_default_heartbeat_is_30_then_30() -> None:
    sock = opened()
    assert sock.next_deadline() == 30.0
    sock.tick(30.0)
    assert sock.next_deadline() == 60.0


def test_interval_zero_turns_the_heartbeat_off() -> None:
    sock = opened(options={"pingInterval": 0})
    assert sock.next_deadline() is None
    sock.tick(1000.0)
    assert sock.take_actions() == []


def test_pong_timeout_zero_never_hangs_up() -> None:
    sock = opened(options={"pingInterval": 3, "pongTimeout": 0})
    sock.tick(3.0)
    assert sock.take_actions() == [SendPing()]
    assert sock.next_deadline() is None


def test_no_heartbeat_before_open() -> None:
    assert connecting().next_deadline() is None


def test_handshake_events_once_open_are_ignored() -> None:
    sock = opened()
    sock.receive(DONE, 1.0)
    sock.receive(HandshakeFailed("status", "late", 500), 1.0)
    assert sock.take_events() == []
    assert state(sock) is State.OPEN


@pytest.mark.parametrize(("api", "value"), [(11, {"code": 200}), (12, {"code": 200, "data": "0"})])
def test_error_value_has_data_from_api_12(api: int, value: dict[str, object]) -> None:
    sock = opened(api)
    sock.receive(ConnectionLost("reset"), 1.0)
    assert pairs(sock.take_events())[0] == ("error", value)


def test_connect_that_cannot_start_is_an_error_then_minus_one() -> None:
    sock = connecting()
    assert sock.connect_failed(0.5) == CallError(-1, "Websocket connect failed")
    assert pairs(sock.take_events()) == [("error", {"code": 200, "data": "0"})]
    assert state(sock) is State.IDLE
    assert sock.connect_failed(0.6) == CallError(-1, "Websocket connect failed")
    assert sock.take_events() == []
