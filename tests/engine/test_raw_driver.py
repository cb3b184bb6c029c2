"""The raw-profile client driver against websockets servers and raw hostile ones."""

from __future__ import annotations

import contextlib
from http import HTTPStatus
from pathlib import Path

import anyio
import anyio.abc
import pytest
import trustme
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.http11 import Request
from wsproto.frame_protocol import FrameProtocol

from tests.engine.ws_peers import (
    CloseWatcher,
    raw_server,
    read_head,
    upgrade_response,
    websockets_server,
)
from wscenario.core.events import CallError, Event, EventValue
from wscenario.core.model import ConnectOptions, Limits, RawFrame
from wscenario.engine import tls
from wscenario.engine.raw_driver import ALREADY_CONNECTED, CLOSING, NOT_CONNECTED, RawClientDriver
from wscenario.engine.websocket import close_payload, encode_frame

pytestmark = pytest.mark.anyio

LIMITS = Limits(close_timeout=2.0, handshake_timeout=2.0)
OPTIONS = ConnectOptions()


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def next_value(driver: RawClientDriver, name: str) -> EventValue:
    event = await driver.next_event(5)
    assert event is not None, f"no {name} event"
    assert event.name == name, event
    return event.value


async def open_driver(driver: RawClientDriver, port: int) -> None:
    """Connect to ``ws://127.0.0.1:port/`` and take the ``open`` event."""
    await driver.connect(f"ws://127.0.0.1:{port}/", OPTIONS)
    await next_value(driver, "open")


async def drain(driver: RawClientDriver, within: float = 0.3) -> list[tuple[str, EventValue]]:
    events: list[Event] = []
    while (event := await driver.next_event(within)) is not None:
        events.append(event)
    return [(event.name, event.value) for event in events]


async def test_open_messages_and_a_polite_close() -> None:
    seen: list[tuple[int | None, str | None]] = []

    async def chat(ws: ServerConnection) -> None:
        await echo(ws)
        seen.append((ws.close_code, ws.close_reason))

    async with websockets_server(chat, subprotocols=["chat"]) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(LIMITS) as driver:
                options = ConnectOptions(header={"X-A": "1"}, protocol="chat, other")
                assert await driver.connect(f"ws://127.0.0.1:{port}/", options) is None
                opened = await next_value(driver, "open")
                assert await driver.send("hi") is None
                assert await driver.send(b"\x00\x01") is None
                assert await driver.send("in four parts", fragments=4) is None
                assert await next_value(driver, "message") == "hi"
                assert await next_value(driver, "message") == b"\x00\x01"
                assert await next_value(driver, "message") == "in four parts"
                assert await driver.close(None, None) is None
                assert await next_value(driver, "close") == {"code": 1000, "reason": ""}
    assert isinstance(opened, dict)
    assert opened["status"] == 101
    assert opened["message"] == "Switching Protocols"
    assert opened["protocol"] == "chat"
    assert opened["headers"]["upgrade"] == "websocket"  # type: ignore[index, call-overload]
    assert seen == [(1000, "")]


async def test_fragmented_messages_arrive_whole_and_pings_are_answered() -> None:
    answered = anyio.Event()

    async def talker(ws: ServerConnection) -> None:
        await ws.send(["one ", "two ", "three"])
        await (await ws.ping(b"are you there"))
        answered.set()
        await ws.wait_closed()

    async with websockets_server(talker) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(LIMITS) as driver:
                await open_driver(driver, port)
                assert await next_value(driver, "message") == "one two three"
                assert await next_value(driver, "ping") == b"are you there"
                await answered.wait()
                await driver.ping(b"and you?")
                assert await next_value(driver, "pong") == b"and you?"


@pytest.mark.parametrize(
    ("frame", "event", "server_saw"),
    [
        (b"\x88\x05\x0f\xa0bye", {"code": 4000, "reason": "bye"}, (4000, "bye")),
        (b"\x88\x00", {"code": 1005, "reason": ""}, (1005, "")),
    ],
)
async def test_a_server_close_is_echoed_and_reported(
    frame: bytes, event: dict[str, object], server_saw: tuple[int, str]
) -> None:
    closer = CloseWatcher(raw=frame)
    async with websockets_server(closer) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(LIMITS) as driver:
                await open_driver(driver, port)
                assert await next_value(driver, "close") == event
                assert await driver.send("late") == CLOSING
    # websockets sent its frame behind its own back, so it reads our answer as the first close
    assert closer.seen == [server_saw]


async def test_a_close_code_a_server_may_not_send_is_reported_and_answered_with_1002() -> None:
    answers: list[bytes] = []

    async def odd_closer(stream: anyio.abc.SocketStream) -> None:
        await stream.send(upgrade_response(await read_head(stream)))
        await stream.send(encode_frame(0x8, close_payload(2000, "odd"), masked=False))
        answers.append(await stream.receive())

    async with raw_server(odd_closer) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(LIMITS) as driver:
                await open_driver(driver, port)
                error = await next_value(driver, "error")
                assert await next_value(driver, "close") == {"code": 2000, "reason": "odd"}
    assert error == {
        "kind": "protocol",
        "status": 0,
        "message": "the server sent close code 2000, which RFC 6455 does not allow",
    }
    (answer,) = answers
    frames = FrameProtocol(client=False, extensions=[])
    frames.receive_bytes(answer)
    (close,) = frames.received_frames()
    assert close.payload == (1002, "invalid close code")


async def test_close_sends_exactly_the_code_and_reason_given() -> None:
    watcher = CloseWatcher()
    async with websockets_server(watcher) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(LIMITS) as driver:
                await open_driver(driver, port)
                assert await driver.close(4100, "custom") is None  # exactly as given
                assert await driver.send("after close") == CLOSING
                assert await driver.close(1000, "") == CLOSING
                assert await next_value(driver, "close") == {"code": 4100, "reason": "custom"}
    assert watcher.seen == [(4100, "custom")]


@pytest.mark.parametrize(
    ("code", "reason", "no_payload", "payload"),
    [
        (None, None, False, b"\x03\xe8"),
        (0, "zero", False, b"\x00\x00zero"),
        (4000, "ignored", True, b""),
    ],
)
async def test_close_frames_on_the_wire(
    code: int | None, reason: str | None, no_payload: bool, payload: bytes
) -> None:
    written: list[bytes] = []

    async def reader(stream: anyio.abc.SocketStream) -> None:
        await stream.send(upgrade_response(await read_head(stream)))
        written.append(await stream.receive())

    async with raw_server(reader) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(Limits(close_timeout=0.5)) as driver:
                await open_driver(driver, port)
                assert await driver.close(code, reason, no_payload=no_payload) is None
                await drain(driver)
    (frame,) = written
    assert frame[0] == 0x88  # FIN + close
    assert frame[1] == 0x80 | len(payload)  # masked, as a client's frames are
    key = frame[2:6]
    assert bytes(byte ^ key[index % 4] for index, byte in enumerate(frame[6:])) == payload


async def test_an_abrupt_drop_is_1006_without_an_error() -> None:
    async def dropper(ws: ServerConnection) -> None:
        await ws.recv()
        ws.transport.abort()

    async with websockets_server(dropper) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(LIMITS) as driver:
                await open_driver(driver, port)
                await driver.send("bye")
                events = await drain(driver)
    assert events[-1] == ("close", {"code": 1006, "reason": ""})
    assert [name for name, _ in events] in (["close"], ["error", "close"])
    if len(events) == 2:  # a reset rather than a FIN, depending on timing
        assert events[0][1]["kind"] == "reset"  # type: ignore[index, call-overload]


async def test_a_protocol_error_is_an_error_then_1006() -> None:
    async def bad_text(ws: ServerConnection) -> None:
        ws.transport.write(encode_frame(0x1, b"\xc3\x28", masked=False))
        await ws.wait_closed()

    async with websockets_server(bad_text) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(LIMITS) as driver:
                await open_driver(driver, port)
                error = await next_value(driver, "error")
                assert await next_value(driver, "close") == {"code": 1006, "reason": ""}
    assert isinstance(error, dict)
    assert (error["kind"], error["status"]) == ("protocol", 0)
    assert error["message"]


async def test_a_refused_handshake_is_one_error_event() -> None:
    def not_found(ws: ServerConnection, request: Request) -> object:
        return ws.respond(HTTPStatus.NOT_FOUND, "nothing here\n")

    async with websockets_server(echo, process_request=not_found) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(LIMITS) as driver:
                await driver.connect(f"ws://127.0.0.1:{port}/x", OPTIONS)
                events = await drain(driver)
                assert await driver.send("x") == NOT_CONNECTED
    assert events == [
        ("error", {"kind": "status", "status": 404, "message": "server answered 404 Not Found"})
    ]
    assert driver.handshake_failure is not None
    assert driver.handshake_failure[0] == f"ws://127.0.0.1:{port}/x"
    assert driver.handshake_failure[1].kind == "status"


async def test_the_latest_attempt_says_whether_the_target_was_reached() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    free = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    async with websockets_server(echo) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(LIMITS) as driver:
                assert driver.handshake_failure is None
                await driver.connect(f"ws://127.0.0.1:{free}/", OPTIONS)
                await next_value(driver, "error")
                assert driver.handshake_failure is not None
                url, failed = driver.handshake_failure
                assert (url, failed.kind) == (f"ws://127.0.0.1:{free}/", "refused")
                await driver.connect(f"ws://127.0.0.1:{port}/", OPTIONS)
                await next_value(driver, "open")
                assert driver.handshake_failure is None


async def test_calls_out_of_order_get_documented_errors() -> None:
    async with websockets_server(echo) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(LIMITS) as driver:
                assert await driver.send("too early") == NOT_CONNECTED
                assert await driver.close(1000, "") == NOT_CONNECTED
                url = f"ws://127.0.0.1:{port}/"
                assert await driver.connect(url, OPTIONS) is None
                assert await driver.connect(url, OPTIONS) == ALREADY_CONNECTED
                # a send during the handshake waits for it
                assert await driver.send("queued") is None
                assert await next_value(driver, "open")
                assert await next_value(driver, "message") == "queued"


def test_the_call_errors_are_the_documented_ones() -> None:
    documented = [CallError(1, "not connected"), CallError(2, "already connected")]
    assert [*documented, CallError(3, "closing")] == [NOT_CONNECTED, ALREADY_CONNECTED, CLOSING]


async def test_no_close_answer_within_the_timeout_is_an_error_then_1006() -> None:
    async def deaf(stream: anyio.abc.SocketStream) -> None:
        await stream.send(upgrade_response(await read_head(stream)))
        await anyio.sleep(5)

    async with raw_server(deaf) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(Limits(close_timeout=0.2)) as driver:
                await open_driver(driver, port)
                await driver.close(1000, "bye")
                error = await next_value(driver, "error")
                assert await next_value(driver, "close") == {"code": 1006, "reason": ""}
    assert error == {
        "kind": "timeout",
        "status": 0,
        "message": "no close frame from the server within 0.2 s",
    }


async def test_raw_frames_reach_the_server_as_written() -> None:
    async def reader(ws: ServerConnection) -> None:
        with contextlib.suppress(WsConnectionClosed):
            await ws.recv()  # websockets checks UTF-8 when it reads a message

    async with websockets_server(reader) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(LIMITS) as driver:
                await open_driver(driver, port)
                await driver.write_frames((RawFrame(opcode=1, data=b"\xff"),))
                events = await drain(driver)
    assert events == [("close", {"code": 1007, "reason": "invalid start byte at position 0"})]


@pytest.mark.parametrize("rst", [False, True])
async def test_a_drop_is_reported_as_1006_only(rst: bool) -> None:
    watcher = CloseWatcher()
    async with websockets_server(watcher) as port:
        with anyio.fail_after(10):
            async with RawClientDriver(LIMITS) as driver:
                await open_driver(driver, port)
                await driver.drop(rst=rst)
                events = await drain(driver)
                assert await driver.send("gone") == NOT_CONNECTED
            await anyio.sleep(0.05)
    assert events == [("close", {"code": 1006, "reason": ""})]
    assert watcher.codes == [1006]


async def test_insecure_turns_tls_checks_off_with_a_warning(
    trustme_ca: trustme.CA, tmp_path: Path
) -> None:
    leaf = trustme_ca.issue_cert("example.org")  # neither a trusted CA nor the right host
    certfile, keyfile = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    leaf.cert_chain_pems[0].write_to_path(str(certfile))
    leaf.private_key_pem.write_to_path(str(keyfile))
    context = tls.server_context(str(certfile), str(keyfile))
    warnings: list[str] = []
    url = ""
    async with websockets_server(echo, ssl=context) as port:
        url = f"wss://127.0.0.1:{port}/"
        with anyio.fail_after(10):
            async with RawClientDriver(LIMITS) as strict:
                await strict.connect(url, OPTIONS)
                refused = await next_value(strict, "error")
            async with RawClientDriver(LIMITS, insecure=True, warn=warnings.append) as insecure:
                await insecure.connect(url, OPTIONS)
                await next_value(insecure, "open")
    assert isinstance(refused, dict)
    assert refused["kind"] == "tls"
    assert warnings == [f"wscenario: warning: TLS certificate checks are off for {url}\n"]
