"""``wscenario.ohos`` end to end, against servers written with the ``websockets`` library."""

from __future__ import annotations

import datetime
import logging
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response
from wsproto.frame_protocol import FrameProtocol

from tests.engine.loop_turns import loop_turns
from tests.engine.test_client import read_client_close
from tests.engine.ws_peers import raw_server, read_head, upgrade_response
from wscenario.engine.tcp_stream import YIELD_EVERY
from wscenario.ohos import ListenerArgumentError, OhosError, WebSocket, create_websocket

pytestmark = pytest.mark.anyio

Handler = Callable[[ServerConnection], Awaitable[None]]
LINK_DOWN = [
    ("error", {"code": 200, "data": "0"}),
    ("close", {"code": 0, "reason": "The link is down"}),
]


@asynccontextmanager
async def serving(handler: Handler, *, scheme: str = "ws", **options: Any) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, ping_interval=None, **options) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"{scheme}://127.0.0.1:{port}/"


class Seen:
    """Every event of one WebSocket, as ``(name, value)`` in delivery order."""

    def __init__(self, ws: WebSocket) -> None:
        self.log: list[tuple[str, object]] = []
        self._read = 0
        for name in ("open", "message", "close", "error", "dataEnd", "headerReceive"):
            ws.on(name, self.listener(name))

    def listener(self, name: str) -> Callable[..., None]:
        def record(*args: object) -> None:
            self.log.append((name, args[-1] if args else None))

        return record

    async def until(self, last: str) -> list[tuple[str, object]]:
        """Unread events up to and including the next ``last`` (``headerReceive`` left out)."""
        with anyio.fail_after(5):
            while True:
                names = [name for name, _ in self.log[self._read :]]
                if last in names:
                    end = self._read + names.index(last) + 1
                    events, self._read = self.log[self._read : end], end
                    return [e for e in events if e[0] != "headerReceive" or last == e[0]]
                await anyio.sleep(0.01)

    async def quiet(self, duration: float) -> list[tuple[str, object]]:
        """Unread events that arrive within ``duration``."""
        await anyio.sleep(duration)
        events, self._read = self.log[self._read :], len(self.log)
        return events


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    async with serving(echo) as url:
        yield url


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """An unmasked server frame (payload under 126 bytes)."""
    return bytes([(0x80 if fin else 0) | opcode, len(payload)]) + payload


# ------------------------------------------------------------------------- data and open


async def test_echo_with_open_header_receive_message_and_data_end() -> None:
    async with serving(echo) as url, create_websocket() as ws:
        seen = Seen(ws)
        order: list[str] = []
        ws.on("open", lambda err, value: order.append("open"))
        ws.connect(url, lambda err, value: order.append(f"connect {err} {value}"))
        await seen.until("headerReceive")
        await anyio.sleep(0.05)
        assert order == ["connect None True", "open"]
        ws.on("open", lambda err, value: None)
        assert await ws.send("hello") is True
        assert await ws.send(b"\x00\xff") is True
        events = await seen.until("dataEnd") + await seen.until("dataEnd")
        assert events == [
            ("message", "hello"),
            ("dataEnd", None),
            ("message", b"\x00\xff"),
            ("dataEnd", None),
        ]
        headers = dict(seen.log)["headerReceive"]
        assert isinstance(headers, dict)
        assert headers["upgrade"] == "websocket"
        assert "sec-websocket-accept" in headers


async def test_open_value_and_the_handshake_request() -> None:
    requests: list[Request] = []

    def record(connection: ServerConnection, request: Request) -> None:
        requests.append(request)

    async with serving(echo, process_request=record) as url, create_websocket(api=20) as ws:
        seen = Seen(ws)
        port = url.split(":")[2].rstrip("/")
        assert await ws.connect(url + "p?q=1", {"header": {"X-Token": "t", "Skip": 5}}) is True
        assert await seen.until("open") == [
            ("open", {"status": 101, "message": "Switching Protocols"})
        ]
    [request] = requests
    assert request.path == "/p?q=1"
    assert request.headers["Host"] == f"127.0.0.1:{port}"
    assert request.headers["Origin"] == "http://127.0.0.1"
    assert request.headers["x-token"] == "t"
    assert "Skip" not in request.headers
    assert "Sec-WebSocket-Protocol" not in request.headers
    assert "Sec-WebSocket-Extensions" not in request.headers


async def test_fragmented_message_with_a_ping_between_is_one_message() -> None:
    pongs: list[bytes] = []

    async def fragments(ws: ServerConnection) -> None:
        ws.pong_handler = pongs.append  # type: ignore[attr-defined]
        transport = ws.transport
        transport.write(frame(0x1, b"hel", fin=False))
        transport.write(frame(0x9, b"hb"))
        transport.write(frame(0x0, b"lo"))
        await ws.wait_closed()

    async with serving(fragments) as url, create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(url)
        assert await seen.until("dataEnd") == [
            ("open", {"status": 101, "message": "Switching Protocols"}),
            ("message", "hello"),
            ("dataEnd", None),
        ]


async def test_legacy_api_delivers_each_fragment_without_data_end() -> None:
    async def fragments(ws: ServerConnection) -> None:
        ws.transport.write(frame(0x1, b"a", fin=False) + frame(0x0, b"b"))
        await ws.wait_closed()

    async with serving(fragments) as url, create_websocket(api=10) as ws:
        seen = Seen(ws)
        await ws.connect(url)
        await seen.until("open")
        assert await seen.quiet(0.3) == [("message", "a"), ("message", "b")]


async def test_data_without_a_message_listener_is_dropped() -> None:
    async def two(ws: ServerConnection) -> None:
        await ws.send("first")
        await anyio.sleep(0.2)
        await ws.send("second")
        await ws.wait_closed()

    async with serving(two) as url, create_websocket() as ws:
        seen = Seen(ws)
        ws.off("message")
        await ws.connect(url)
        await anyio.sleep(0.1)
        ws.on("message", seen.listener("message"))
        assert await seen.until("message") == [
            ("open", {"status": 101, "message": "Switching Protocols"}),
            ("message", "second"),
        ]


async def test_events_go_to_the_listener_present_at_delivery(echo_url: str) -> None:
    async with create_websocket() as ws:
        seen = Seen(ws)
        record = seen.listener("message")

        def first_message_drops_data_end(err: object, data: object) -> None:
            record(err, data)
            ws.off("dataEnd")

        ws.on("message", first_message_drops_data_end)
        await ws.connect(echo_url)
        await ws.send("one")
        await ws.send("two")
        events = await seen.quiet(0.3)
        assert [name for name, _ in events] == ["headerReceive", "open", "message", "message"]


# ---------------------------------------------------------------------------------- calls


async def test_sends_before_open_are_flushed_at_open() -> None:
    async with serving(echo) as url, create_websocket() as ws:
        seen = Seen(ws)
        ws.connect(url)
        assert await ws.send("early") is True
        assert await seen.until("message") == [
            ("open", {"status": 101, "message": "Switching Protocols"}),
            ("message", "early"),
        ]


async def test_call_errors_reach_promise_and_callback() -> None:
    async with create_websocket() as ws:
        with pytest.raises(OhosError) as raised:
            await ws.send("x")
        assert (raised.value.code, raised.value.message) == (-1, "Websocket Unknown Other Error")
        with pytest.raises(OhosError) as raised:
            await ws.connect("http://h/")
        assert raised.value.code == 2302001
        with pytest.raises(OhosError) as raised:
            await ws.connect("ws://h/", None)  # type: ignore[call-overload]
        assert (raised.value.code, raised.value.message) == (401, "Parameter error")
        results: list[tuple[object, object]] = []
        ws.close(lambda err, value: results.append((err, value)))
        ws.connect(42, lambda err, value: results.append((err, value)))  # type: ignore[call-overload]
        await anyio.sleep(0.05)
        assert [(e.code, v) for e, v in results] == [(2302999, None), (401, None)]  # type: ignore[attr-defined]


async def test_permission_denied() -> None:
    async with create_websocket(internet_permission=False) as ws:
        with pytest.raises(OhosError) as raised:
            await ws.connect("ws://127.0.0.1:1/")
        assert (raised.value.code, raised.value.message) == (201, "Permission denied")


async def test_on_and_off_throw_401_synchronously() -> None:
    ws = create_websocket()
    with pytest.raises(ListenerArgumentError) as raised:
        ws.on("open")
    assert raised.value.code == "401"
    with pytest.raises(ListenerArgumentError):
        ws.off(1)
    with pytest.raises(RuntimeError):
        ws.send("outside async with")
    async with ws:
        with pytest.raises(RuntimeError):
            await ws.__aenter__()


async def test_client_close_cuts_the_wire_reason_and_reports_it_whole() -> None:
    received: list[tuple[int | None, str | None]] = []

    async def keep(ws: ServerConnection) -> None:
        await ws.wait_closed()
        received.append((ws.close_code, ws.close_reason))

    async with serving(keep) as url, create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(url)
        await seen.until("open")
        reason = "é" * 100
        assert await ws.close({"code": 4000, "reason": reason}) is True
        with pytest.raises(OhosError) as raised:
            await ws.close()
        assert raised.value.code == 2302999
        with pytest.raises(OhosError) as raised:
            await ws.send("late")
        assert raised.value.code == -1
        assert await seen.until("close") == [("close", {"code": 1000, "reason": reason})]
        await anyio.sleep(0.1)
    assert received == [(1000, "é" * 61)]


async def test_reconnect_after_close() -> None:
    async with serving(echo) as url, create_websocket() as ws:
        seen = Seen(ws)
        for text in ("one", "two"):
            await ws.connect(url)
            await ws.send(text)
            await seen.until("message")
            await ws.close()
            assert await seen.until("close") == [
                ("dataEnd", None),
                ("close", {"code": 1000, "reason": "CLOSE_NORMAL"}),
            ]


async def test_reconnect_from_the_close_listener_after_a_server_close() -> None:
    async def close_at_once(ws: ServerConnection) -> None:
        await ws.close(4001, "again")

    async with serving(close_at_once) as url, create_websocket() as ws:
        seen = Seen(ws)
        closes: list[object] = []
        twice = anyio.Event()

        def reconnect(err: object, value: object) -> None:
            closes.append(value)
            if len(closes) == 1:
                ws.connect(url)
            else:
                twice.set()

        ws.on("close", reconnect)
        await ws.connect(url)
        with anyio.fail_after(5):
            await twice.wait()
        assert closes == [{"code": 4001, "reason": "again"}] * 2
        assert [name for name, _ in seen.log if name != "headerReceive"] == ["open", "open"]


# ---------------------------------------------------------------------------- peer close


@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (struct.pack("!H", 4000) + b"bye", {"code": 4000, "reason": "bye"}),
        (struct.pack("!H", 1011), {"code": 1011, "reason": "The link is down"}),
        (b"", {"code": 1000, "reason": "The link is down"}),
    ],
)
async def test_server_close_is_echoed_and_reported(
    payload: bytes, value: dict[str, object]
) -> None:
    echoed: list[tuple[int, str]] = []

    async def closing(ws: ServerConnection) -> None:
        ws.transport.write(frame(0x8, payload))
        with anyio.move_on_after(2):
            await ws.wait_closed()
        received = ws.protocol.close_rcvd
        if received is not None:
            echoed.append((received.code, received.reason))

    async with serving(closing) as url, create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(url)
        assert await seen.until("close") == [
            ("open", {"status": 101, "message": "Switching Protocols"}),
            ("close", value),
        ]
        with pytest.raises(OhosError):
            await ws.send("x")
        await anyio.sleep(0.2)
    code = struct.unpack("!H", payload[:2])[0] if payload else 1005
    assert echoed == [(code, payload[2:].decode())]


async def test_server_close_with_a_reserved_code_is_reported_as_1002() -> None:
    """websockets refuses to send 2000 or read it back, so a hand-built server sends it."""
    echoed: list[tuple[int, bytes]] = []

    async def closing(stream: anyio.abc.SocketStream) -> None:
        await stream.send(upgrade_response(await read_head(stream)))
        await stream.send(frame(0x8, struct.pack("!H", 2000) + b"odd"))
        echoed.append(await read_client_close(stream))

    async with raw_server(closing) as port, create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(f"ws://127.0.0.1:{port}/")
        assert await seen.until("close") == [
            ("open", {"status": 101, "message": "Switching Protocols"}),
            ("close", {"code": 1002, "reason": "odd"}),
        ]
        assert await seen.quiet(0.2) == []
    # the closing handshake completes: the device echoes the payload with the code rewritten
    assert echoed == [(1002, b"odd")]


# ----------------------------------------------------------------------------- link down


async def test_tcp_drop_mid_message_is_error_then_close_zero() -> None:
    async def drop(ws: ServerConnection) -> None:
        ws.transport.write(frame(0x1, b"partial", fin=False))
        await anyio.sleep(0.1)
        ws.transport.abort()

    async with serving(drop) as url, create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(url)
        assert await seen.until("close") == [
            ("open", {"status": 101, "message": "Switching Protocols"}),
            *LINK_DOWN,
        ]


async def test_server_that_never_answers_pings_is_a_link_down() -> None:
    done = anyio.Event()

    async def deaf(ws: ServerConnection) -> None:
        ws.transport.pause_reading()
        with anyio.move_on_after(5):
            await done.wait()

    async with serving(deaf) as url, create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(url, {"pingInterval": 1, "pongTimeout": 1})
        started = anyio.current_time()
        await seen.until("open")
        assert await seen.until("close") == LINK_DOWN
        assert 1.8 < anyio.current_time() - started < 3.0
        done.set()


async def test_the_heartbeat_pings_again_an_interval_after_each_pong(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each pong moves the next ping later than the timer was set for: it still comes."""
    caplog.set_level(logging.DEBUG, logger="websockets.server")
    async with serving(echo) as url, create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(url, {"pingInterval": 1, "pongTimeout": 1})
        await seen.until("open")
        await anyio.sleep(2.6)
        assert await seen.quiet(0.01) == []  # answered: the link stays up
    pings = [r for r in caplog.records if r.getMessage().startswith("< PING")]
    assert len(pings) == 2  # at about 1 s and 2 s


# ---------------------------------------------------------------------- handshake failure


async def test_non_101_answer_is_an_error_with_the_status_and_no_close() -> None:
    def refuse(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(404, "no such chat\n")

    async with serving(echo, process_request=refuse) as url, create_websocket() as ws:
        seen = Seen(ws)
        assert await ws.connect(url) is True
        assert await seen.until("error") == [("error", {"code": 200, "data": "404"})]
        assert await seen.quiet(0.3) == []
        assert await ws.connect(url) is True  # torn down: the object can connect again


async def test_unresolvable_host_fails_the_connect_after_an_error_event(echo_url: str) -> None:
    async with create_websocket() as ws:
        order: list[object] = []
        settled = anyio.Event()

        def connected(err: OhosError, value: object) -> None:
            order.append((err.code, err.message))
            settled.set()

        ws.on("error", order.append)
        ws.connect("ws://nowhere.invalid/", connected)
        with anyio.fail_after(5):
            await settled.wait()
        assert order == [{"code": 200, "data": "0"}, (-1, "Websocket connect failed")]
        with pytest.raises(OhosError) as raised:
            await ws.send("x")
        assert raised.value.code == -1
        assert await ws.connect(echo_url) is True


async def test_subprotocol_that_was_not_offered_fails_the_handshake() -> None:
    def pick(connection: ServerConnection, request: Request, response: Response) -> Response:
        response.headers["Sec-WebSocket-Protocol"] = "chat"
        return response

    async with serving(echo, process_response=pick) as url, create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(url)
        [(name, value)] = await seen.until("error")
        assert name == "error"
        assert isinstance(value, dict)
        assert value["code"] == 200
        assert await seen.quiet(0.3) == []


async def test_refused_connection_is_an_error_only() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    async with create_websocket() as ws:
        seen = Seen(ws)
        assert await ws.connect(f"ws://127.0.0.1:{port}/") is True
        assert await seen.until("error") == [("error", {"code": 200, "data": "0"})]


# ------------------------------------------------------------------------------------ TLS


def server_context(ca: trustme.CA, *, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def test_wss_with_the_ca_in_ca_path(trustme_ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "trustme_ca.pem"
    trustme_ca.cert_pem.write_to_path(str(ca_file))
    async with (
        serving(echo, scheme="wss", ssl=server_context(trustme_ca)) as url,
        create_websocket() as ws,
    ):
        seen = Seen(ws)
        await ws.connect(url, {"caPath": str(ca_file)})
        await ws.send("secure")
        assert await seen.until("message") == [
            ("open", {"status": 101, "message": "Switching Protocols"}),
            ("message", "secure"),
        ]


async def test_wss_with_an_unknown_ca_fails_unless_verification_is_skipped(
    trustme_ca: trustme.CA, tmp_path: Path
) -> None:
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    async with (
        serving(echo, scheme="wss", ssl=server_context(trustme_ca)) as url,
        create_websocket() as ws,
    ):
        seen = Seen(ws)
        await ws.connect(url, {"caPath": str(other)})
        assert await seen.until("error") == [("error", {"code": 200, "data": "0"})]
        await ws.connect(url, {"caPath": str(other), "skipServerCertVerification": True})
        assert await seen.until("open") == [
            ("open", {"status": 101, "message": "Switching Protocols"})
        ]


async def test_self_signed_server_is_accepted_by_default(
    trustme_ca: trustme.CA, tmp_path: Path
) -> None:
    """The CA's own certificate serves as a self-signed leaf; no caPath trusts it."""
    cert, key = tmp_path / "self.pem", tmp_path / "self.key"
    trustme_ca.cert_pem.write_to_path(str(cert))
    trustme_ca.private_key_pem.write_to_path(str(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    async with serving(echo, scheme="wss", ssl=context) as url, create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(url)
        assert await seen.until("open") == [
            ("open", {"status": 101, "message": "Switching Protocols"})
        ]


async def test_expired_certificate_is_refused_unless_verification_is_skipped(
    trustme_ca: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "trustme_ca.pem"
    trustme_ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    expired = trustme_ca.issue_cert(
        "127.0.0.1", not_before=past, not_after=past + datetime.timedelta(days=1)
    )
    expired.configure_cert(context)
    async with serving(echo, scheme="wss", ssl=context) as url, create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(url, {"caPath": str(ca_file)})
        assert await seen.until("error") == [("error", {"code": 200, "data": "0"})]
        await ws.connect(url, {"caPath": str(ca_file), "skipServerCertVerification": True})
        assert await seen.until("open") == [
            ("open", {"status": 101, "message": "Switching Protocols"})
        ]


async def test_missing_ca_file_is_refused_even_for_ws(tmp_path: Path) -> None:
    async with create_websocket() as ws:
        with pytest.raises(OhosError) as raised:
            await ws.connect("ws://127.0.0.1:1/", {"caPath": str(tmp_path / "none.pem")})
        assert (raised.value.code, raised.value.message) == (
            2302002,
            "Websocket certificate file does not exist",
        )


async def test_client_certificate_with_an_encrypted_key(
    trustme_ca: trustme.CA, tmp_path: Path
) -> None:
    client_ca = trustme.CA()
    leaf = client_ca.issue_cert("device@example.org")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    paths = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    trustme_ca.cert_pem.write_to_path(str(paths["ca"]))
    leaf.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    paths["key"].write_bytes(encrypted)

    async def who(ws: ServerConnection) -> None:
        peer = ws.transport.get_extra_info("peercert")
        await ws.send(repr(peer["subjectAltName"]))
        await ws.wait_closed()

    context = server_context(trustme_ca, client_ca=client_ca)
    async with serving(who, scheme="wss", ssl=context) as url, create_websocket() as ws:
        seen = Seen(ws)
        cert = {
            "certPath": str(paths["cert"]),
            "keyPath": str(paths["key"]),
            "keyPassword": "s3cret",
        }
        await ws.connect(url, {"caPath": str(paths["ca"]), "clientCert": cert})
        events = await seen.until("message")
        assert events[-1] == ("message", repr((("email", "device@example.org"),)))


async def test_a_promise_resolves_after_the_results_queued_before_it(echo_url: str) -> None:
    async with create_websocket() as ws:
        seen = Seen(ws)
        assert await ws.connect(echo_url) is True
        await seen.until("open")
        order: list[str] = []
        ws.send("a", lambda err, value: order.append(f"callback {err} {value}"))
        promise = ws.send("b")
        assert await promise is True
        order.append("promise")
        assert await ws.send("c") is True
        assert order == ["callback None True", "promise"]
        echoed = [(await seen.until("message"))[-1] for _ in range(3)]
        assert echoed == [("message", "a"), ("message", "b"), ("message", "c")]


async def test_a_settled_call_is_read_without_waiting(echo_url: str) -> None:
    async with create_websocket() as ws:
        connecting = ws.connect(echo_url)
        assert not connecting.done()
        with pytest.raises(RuntimeError, match="not settled"):
            connecting.result()
        assert await connecting is True
        assert connecting.done()
        assert connecting.result() is True
        again = ws.connect(echo_url)
        assert again.done()
        with pytest.raises(OhosError) as read:
            again.result()
        with pytest.raises(OhosError) as awaited:
            await again
        assert read.value is awaited.value


# ------------------------------------------------------------------- writing in the caller


async def test_send_and_write_keeps_the_order_of_the_sends_queued_before_it(
    echo_url: str,
) -> None:
    async with create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(echo_url)
        await seen.until("open")
        first = ws.send("a")  # queued for the writer task, not written yet
        second = await ws.send_and_write("b")
        assert second.done()  # settled once queued, as a send is
        assert await first is True
        assert await second is True
        assert await ws.send("c") is True
        echoed = [(await seen.until("message"))[-1] for _ in range(3)]
        assert echoed == [("message", "a"), ("message", "b"), ("message", "c")]


async def test_send_and_write_before_open_is_flushed_at_open(echo_url: str) -> None:
    async with create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(echo_url)
        assert await (await ws.send_and_write("early")) is True
        assert (await seen.until("message"))[-1] == ("message", "early")


async def test_a_caller_that_only_sends_still_lets_other_tasks_run(echo_url: str) -> None:
    async with create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(echo_url)
        await seen.until("open")
        sends = 3 * YIELD_EVERY
        runs: list[int] = []  # messages sent between two passes through the loop
        async with loop_turns() as turns:
            run, last = 0, turns()
            for _ in range(sends):
                await ws.send_and_write("m")
                run += 1
                if turns() != last:
                    runs.append(run)
                    run, last = 0, turns()
        # written at once, without a pass through the loop each, but one every YIELD_EVERY
        assert len(runs) >= 2
        assert max(runs) == YIELD_EVERY
        echoed = [(await seen.until("message"))[-1] for _ in range(sends)]
        assert echoed == [("message", "m")] * sends


@pytest.mark.parametrize("size", [4 << 20, 16 << 10, 1000], ids=["large", "quick", "small"])
async def test_send_and_write_to_a_server_that_stops_reading_goes_on(size: int) -> None:
    """The caller never waits for a full socket; the writer task writes what it cannot."""
    message = b"x" * size
    count = 6 if size > 0xFFFF else (40 << 20) // size  # far more than the socket buffers take
    wire_size = len(message) + (14 if size > 0xFFFF else 8)  # header, length, mask
    received = bytearray()
    reading, done = anyio.Event(), anyio.Event()

    async def slow_reader(stream: anyio.abc.SocketStream) -> None:
        await stream.send(upgrade_response(await read_head(stream)))
        await reading.wait()
        with anyio.move_on_after(10):
            while len(received) < count * wire_size:
                received.extend(await stream.receive())
        done.set()

    async with raw_server(slow_reader) as port, create_websocket() as ws:
        seen = Seen(ws)
        await ws.connect(f"ws://127.0.0.1:{port}/")
        await seen.until("open")
        with anyio.fail_after(5):
            calls = [await ws.send_and_write(message) for _ in range(count)]
        assert all(call.done() and call.result() is True for call in calls)
        reading.set()
        with anyio.fail_after(10):
            await done.wait()
    parser = FrameProtocol(client=False, extensions=[])
    parser.receive_bytes(bytes(received))
    payloads = [frame.payload for frame in parser.received_frames()]
    assert payloads == [message] * count
