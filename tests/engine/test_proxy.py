"""The recording proxy between a real websockets client and a real websockets server."""

from __future__ import annotations

import contextlib
import itertools
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import anyio
import anyio.abc
import pytest
import trustme
from anyio.abc import SocketAttribute
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.http11 import Request, Response

from tests.engine.ws_peers import (
    LIMITS,
    echo,
    raw_server,
    read_head,
    upgrade_response,
    websockets_server,
)
from tests.tls_files import tls_files, trusting
from wscenario.core.model import Limits
from wscenario.core.wire import ConnectRequest, DataFrame, PingReceived
from wscenario.engine.proxy import (
    ConnectionReport,
    RecordingProxy,
    Role,
    Upstream,
    _FlushBeforeRead,
    forwarded_headers,
    upstream_context,
)
from wscenario.engine.server import open_listener
from wscenario.engine.tls import server_context
from wscenario.engine.websocket import connect, encode_frame

pytestmark = pytest.mark.anyio


@dataclass
class ListRecorder:
    """Keeps every event of one connection, and how it ended."""

    url: str
    events: list[tuple[Role, str, dict[str, Any]]] = field(default_factory=list)
    status: str | None = None

    def event(self, from_: Role, type_: str, fields: Mapping[str, Any]) -> None:
        self.events.append((from_, type_, dict(fields)))

    def message(self, from_: Role, type_: str, data: str | bytes) -> None:
        self.events.append((from_, type_, {"data": data}))

    async def end(self, status: str) -> str | None:
        self.status = status
        return f"{self.url}.jsonl"

    def of(self, *types: str) -> list[tuple[Role, str, dict[str, Any]]]:
        return [event for event in self.events if event[1] in types]


@dataclass
class Running:
    port: int
    proxy: RecordingProxy
    recorders: list[ListRecorder]
    closed: list[ConnectionReport]
    first_closed: anyio.Event

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def ended(self) -> ListRecorder:
        """The first connection's recorder, once that connection has ended."""
        with anyio.fail_after(5):
            await self.first_closed.wait()
        return self.recorders[0]


@asynccontextmanager
async def proxy_to(
    upstream: Upstream, limits: Limits = LIMITS, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Running]:
    recorders: list[ListRecorder] = []
    closed: list[ConnectionReport] = []

    async def recorder(url: str) -> ListRecorder:
        recorders.append(ListRecorder(url))
        return recorders[-1]

    first_closed = anyio.Event()

    def on_close(report: ConnectionReport) -> None:
        closed.append(report)
        first_closed.set()

    proxy = RecordingProxy(upstream, recorder, limits=limits, tls=tls, on_close=on_close)
    listener = await open_listener("127.0.0.1", 0)
    port = listener.listeners[0].extra(SocketAttribute.local_port)
    async with anyio.create_task_group() as group:
        await group.start(proxy.serve, listener)
        yield Running(port, proxy, recorders, closed, first_closed)
        proxy.stop()


def ws_upstream(port: int, path: str = "") -> Upstream:
    return Upstream(f"ws://127.0.0.1:{port}{path}")


async def test_messages_of_every_kind_pass_both_ways_and_are_recorded() -> None:
    big = bytes(range(256)) * 400  # 100 KiB
    async with websockets_server(echo) as port, proxy_to(ws_upstream(port)) as running:
        async with ws_connect(running.url + "/chat") as client:
            await client.send("hello")
            assert await client.recv() == "hello"
            await client.send(b"\x00\xff")
            assert await client.recv() == b"\x00\xff"
            await client.send(big)
            assert await client.recv() == big
            pong = await client.ping(b"are you there")
            with anyio.fail_after(5):
                await pong
        recorder = await running.ended()
    assert recorder.url == f"ws://127.0.0.1:{port}/chat"
    messages = recorder.of("text", "binary")
    assert messages == [
        ("client", "text", {"data": "hello"}),
        ("server", "text", {"data": "hello"}),
        ("client", "binary", {"data": b"\x00\xff"}),
        ("server", "binary", {"data": b"\x00\xff"}),
        ("client", "binary", {"data": big}),
        ("server", "binary", {"data": big}),
    ]
    assert ("client", "ping", {"data": b"are you there"}) in recorder.events
    assert ("server", "pong", {"data": b"are you there"}) in recorder.events
    assert [event[:2] for event in recorder.events[:2]] == [
        ("client", "request"),
        ("server", "response"),
    ]
    assert recorder.status == "complete"


async def test_fragments_pass_on_as_they_came_pings_between_them_included() -> None:
    def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
        return encode_frame(opcode, payload, masked=False, fin=fin)

    async def fragments(ws: ServerConnection) -> None:
        ws.transport.write(
            frame(0x1, b"one ", fin=False)
            + frame(0x9, b"between")
            + frame(0x0, b"two ", fin=False)
            + frame(0x0, "thr\u00e9e".encode())
        )
        await ws.send([b"\x01", b"\x02"])  # websockets ends it with an empty final frame
        await ws.send("whole")
        await ws.wait_closed()

    async with websockets_server(fragments) as port, proxy_to(ws_upstream(port)) as running:
        with anyio.fail_after(5):
            connection, _ = await connect(ConnectRequest(running.url), LIMITS)
            events = [await connection.receive() for _ in range(8)]
            await connection.aclose()
        recorder = await running.ended()
    assert events == [
        DataFrame("text", "one ", True, False),
        PingReceived(b"between"),
        DataFrame("text", "two ", False, False),
        DataFrame("text", "thr\u00e9e", False, True),
        DataFrame("binary", b"\x01", True, False),
        DataFrame("binary", b"\x02", False, False),
        DataFrame("binary", b"", False, True),
        DataFrame("text", "whole", True, True),
    ]
    assert recorder.of("text", "binary") == [  # the transcript keeps whole messages
        ("server", "text", {"data": "one two thr\u00e9e"}),
        ("server", "binary", {"data": b"\x01\x02"}),
        ("server", "text", {"data": "whole"}),
    ]


async def test_close_codes_and_reasons_pass_through_byte_for_byte() -> None:
    seen: list[tuple[int | None, str | None]] = []

    async def watch(ws: ServerConnection) -> None:
        await ws.wait_closed()
        seen.append((ws.close_code, ws.close_reason))

    async with websockets_server(watch) as port, proxy_to(ws_upstream(port)) as running:
        async with ws_connect(running.url) as client:
            await client.close(4321, "tschüss ✓")
        recorder = await running.ended()
    assert seen == [(4321, "tschüss ✓")]
    assert recorder.of("close") == [
        ("client", "close", {"code": 4321, "reason": "tschüss ✓"}),
        ("server", "close", {"code": 4321, "reason": "tschüss ✓"}),
    ]
    assert running.closed[0].code == 4321
    assert running.closed[0].closed_by == "client"


async def test_a_server_close_reaches_the_client() -> None:
    async def leave(ws: ServerConnection) -> None:
        await ws.close(4000, "server says bye")

    async with websockets_server(leave) as port, proxy_to(ws_upstream(port)) as running:
        async with ws_connect(running.url) as client:
            with pytest.raises(Exception):  # noqa: B017, PT011 - websockets' closed error
                await client.recv()
            assert (client.close_code, client.close_reason) == (4000, "server says bye")
        recorder = await running.ended()
    assert recorder.status == "complete"
    assert running.closed[0].closed_by == "server"


async def test_a_client_that_stops_reading_holds_the_upstream_back() -> None:
    sent = [0]

    async def flood(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send("x" * 1024)
                sent[0] += 1

    async with websockets_server(flood) as port, proxy_to(ws_upstream(port)) as running:
        client = await ws_connect(running.url, max_queue=1)  # takes one message, then stops
        with anyio.fail_after(10):
            before = -1
            while sent[0] != before:  # until the upstream can write no more
                before = sent[0]
                await anyio.sleep(0.3)
        client.transport.abort()  # a close would have to read through all that is buffered
        recorder = await running.ended()
    assert 0 < before < 50_000  # what the sockets' buffers hold, not an unbounded queue
    assert len(recorder.of("text")) < before  # nothing was read that could not be passed on


async def test_subprotocol_headers_and_path_reach_the_upstream() -> None:
    requests: list[Request] = []

    def keep(connection: ServerConnection, request: Request) -> None:
        requests.append(request)

    options = {"subprotocols": ["chat.v2", "chat.v1"], "process_request": keep}
    async with (
        websockets_server(echo, **options) as port,
        proxy_to(ws_upstream(port, "/base?tenant=a")) as running,
        ws_connect(
            running.url + "/room/1?token=s3cret",
            subprotocols=["chat.v1"],  # type: ignore[list-item]
            additional_headers={"Authorization": "Bearer abc", "Proxy-Authorization": "x"},
        ) as client,
    ):
        assert client.subprotocol == "chat.v1"
        await client.send("hi")
        assert await client.recv() == "hi"
    (request,) = requests
    assert request.path == "/base/room/1?tenant=a&token=s3cret"
    assert request.headers["Authorization"] == "Bearer abc"
    assert "Proxy-Authorization" not in request.headers
    assert "Sec-WebSocket-Extensions" not in request.headers  # the client offered deflate
    assert request.headers["Host"] == f"127.0.0.1:{port}"


async def test_an_upstream_refusal_is_passed_on_with_its_status_and_body() -> None:
    def refuse(connection: ServerConnection, request: Request) -> Response:
        response = connection.respond(HTTPStatus.UNAUTHORIZED, "no token, no entry\n")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async with (
        websockets_server(echo, process_request=refuse) as port,
        proxy_to(ws_upstream(port)) as running,
    ):
        with pytest.raises(InvalidStatus) as refused:
            await ws_connect(running.url)
        recorder = await running.ended()
    response = refused.value.response
    assert response.status_code == 401
    assert response.body == b"no token, no entry\n"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    (answer,) = recorder.of("response")
    assert answer[2]["status"] == 401
    assert answer[2]["body"] == b"no token, no entry\n"
    assert answer[2]["reason"] == "Unauthorized"
    assert recorder.status == "aborted"


async def test_an_upstream_that_is_down_gives_502_promptly() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there any more
    async with proxy_to(ws_upstream(port)) as running:
        with anyio.fail_after(2), pytest.raises(InvalidStatus) as refused:
            await ws_connect(running.url)
        recorder = await running.ended()
    assert refused.value.response.status_code == 502
    assert b"connection refused" in (refused.value.response.body or b"")
    assert [event[1] for event in recorder.events] == ["request", "error"]
    assert recorder.events[1][2]["message"] == (
        "upstream: connection refused; the proxy answered the client 502"
    )
    assert recorder.status == "aborted"


async def test_an_upstream_that_never_answers_gives_504() -> None:
    async def silent(stream: anyio.abc.SocketStream) -> None:
        await read_head(stream)
        await anyio.sleep(5)

    limits = Limits(handshake_timeout=0.3, close_timeout=1.0)
    async with raw_server(silent) as port, proxy_to(ws_upstream(port), limits) as running:
        with anyio.fail_after(3), pytest.raises(InvalidStatus) as refused:
            await ws_connect(running.url)
        recorder = await running.ended()
    assert refused.value.response.status_code == 504
    (note,) = recorder.of("error")
    assert note[2]["message"].endswith("; the proxy answered the client 504")


async def test_an_upstream_dropping_tcp_aborts_the_client() -> None:
    async def drop(ws: ServerConnection) -> None:
        await ws.recv()
        ws.transport.abort()

    async with websockets_server(drop) as port, proxy_to(ws_upstream(port)) as running:
        async with ws_connect(running.url) as client:
            await client.send("bye?")
            with anyio.fail_after(5), pytest.raises(ConnectionClosedError):
                await client.recv()
            assert client.protocol.close_rcvd is None  # no close frame came: 1006
            assert client.close_code == 1006
        recorder = await running.ended()
    assert recorder.status == "aborted"
    (lost,) = recorder.of("disconnect")
    assert lost[0] == "server"
    assert lost[2]["kind"] in {"eof", "reset"}
    (note,) = recorder.of("error")  # the client's leg was cut by the proxy, not the server
    assert note[0] == "server"
    assert note[2]["message"].startswith("the proxy ")
    assert "the client's TCP connection: the upstream left" in note[2]["message"]
    assert not own_closes(recorder)


async def test_a_protocol_break_gets_its_code_and_the_server_1011_both_recorded() -> None:
    seen: list[int | None] = []

    async def watch(ws: ServerConnection) -> None:
        await ws.wait_closed()
        seen.append(ws.close_code)

    small = Limits(max_message_size=1000, close_timeout=2.0, handshake_timeout=2.0)
    async with websockets_server(watch) as port, proxy_to(ws_upstream(port), small) as running:
        async with ws_connect(running.url) as client:
            await client.send("x" * 2000)
            with anyio.fail_after(5), pytest.raises(ConnectionClosedError):
                await client.recv()
            assert client.close_code == 1009
        recorder = await running.ended()
    assert seen == [1011]
    (lost,) = recorder.of("disconnect")
    assert lost[:2] == ("client", "disconnect")
    assert lost[2]["kind"] == "protocol"
    assert own_closes(recorder) == [
        ("server", 1009, "message over 1000 bytes"),
        ("client", 1011, "the client broke the protocol (1009)"),
    ]
    assert recorder.events[-1] == (  # the upstream's answer
        "server",
        "close",
        {"code": 1011, "reason": "the client broke the protocol (1009)"},
    )


async def test_stopping_the_proxy_closes_both_legs_with_1001_and_records_them() -> None:
    seen: list[int | None] = []

    async def echo_once(ws: ServerConnection) -> None:
        await ws.send(await ws.recv())
        await ws.wait_closed()
        seen.append(ws.close_code)

    async with websockets_server(echo_once) as port, proxy_to(ws_upstream(port)) as running:
        client = await ws_connect(running.url)
        await client.send("keep me")
        assert await client.recv() == "keep me"
        running.proxy.stop()
        with anyio.fail_after(5):
            await client.wait_closed()
        recorder = await running.ended()
    assert client.close_code == 1001
    assert seen == [1001]
    assert recorder.status == "interrupted"
    assert sorted(own_closes(recorder)) == [
        ("client", 1001, "proxy shutting down"),
        ("server", 1001, "proxy shutting down"),
    ]
    closes = recorder.of("close")
    assert len(closes) == 4  # the proxy's two, and each peer's answer
    assert ("client", "close", {"code": 1001, "reason": "proxy shutting down"}) in closes[2:]
    notes = [event[2]["message"] for event in recorder.of("error")]
    assert notes == [
        "the proxy, not the upstream, sent the next close: the proxy stopped",
        "the proxy, not the client, sent the next close: the proxy stopped",
    ]


# ----------------------------------------------------------------------------- TLS upstream


@asynccontextmanager
async def wss_server(ca: trustme.CA) -> AsyncIterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    async with websockets_server(echo, ssl=context) as port:
        yield port


async def test_a_wss_upstream_is_verified_against_an_added_ca(
    trustme_ca: trustme.CA, tmp_path: Any
) -> None:
    cafile = tmp_path / "ca.pem"
    trustme_ca.cert_pem.write_to_path(str(cafile))
    context = upstream_context(cafile=str(cafile))
    async with wss_server(trustme_ca) as port:
        upstream = Upstream(f"wss://127.0.0.1:{port}", context, "strict")
        async with proxy_to(upstream) as running, ws_connect(running.url) as client:
            await client.send("over tls")
            assert await client.recv() == "over tls"
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


async def test_a_wss_upstream_with_an_unknown_ca_is_refused_with_502() -> None:
    stranger = trustme.CA()
    async with wss_server(stranger) as port:
        upstream = Upstream(f"wss://127.0.0.1:{port}", upstream_context(), "strict")
        async with proxy_to(upstream) as running:
            with anyio.fail_after(5), pytest.raises(InvalidStatus) as refused:
                await ws_connect(running.url)
            recorder = await running.ended()
    assert refused.value.response.status_code == 502
    assert b"certificate" in (refused.value.response.body or b"")
    assert recorder.of("error")


async def test_insecure_upstream_tls_accepts_any_certificate() -> None:
    async with wss_server(trustme.CA()) as port:
        upstream = Upstream(f"wss://127.0.0.1:{port}", upstream_context(insecure=True))
        async with proxy_to(upstream) as running, ws_connect(running.url) as client:
            await client.send("unchecked")
            assert await client.recv() == "unchecked"


async def test_the_proxy_listens_for_wss_with_its_own_certificate(
    trustme_ca: trustme.CA, tmp_path: Any
) -> None:
    files = tls_files(tmp_path, trustme_ca)
    listening = server_context(str(files.cert), str(files.key))
    async with websockets_server(echo) as port, proxy_to(ws_upstream(port), tls=listening) as p:
        url = p.url.replace("ws://", "wss://") + "/secure"
        async with ws_connect(url, ssl=trusting(trustme_ca)) as client:
            await client.send("private")
            assert await client.recv() == "private"
        with pytest.raises(ssl.SSLCertVerificationError):
            await ws_connect(url, ssl=ssl.create_default_context())  # a CA it does not know
        recorder = await p.ended()
    assert recorder.url == f"ws://127.0.0.1:{port}/secure"
    assert recorder.of("text") == [
        ("client", "text", {"data": "private"}),
        ("server", "text", {"data": "private"}),
    ]
    assert len(p.recorders) == 1  # the refused TLS handshake never reached the proxy's decision


# ------------------------------------------------------------------------------ the pieces


def test_hop_by_hop_and_websocket_headers_are_not_forwarded() -> None:
    headers = (
        ("Host", "a"),
        ("Connection", "Upgrade, X-Hop"),
        ("X-Hop", "1"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Key", "k"),
        ("Sec-WebSocket-Extensions", "permessage-deflate"),
        ("Cookie", "c=1"),
        ("Origin", "http://o"),
    )
    assert forwarded_headers(headers) == (("Cookie", "c=1"), ("Origin", "http://o"))


def test_upstream_urls_join_paths_and_queries() -> None:
    upstream = Upstream("wss://example.com:8443/api/?v=2")
    assert upstream.url_for("/chat?x=1") == "wss://example.com:8443/api/chat?v=2&x=1"
    assert Upstream("ws://h").url_for("/") == "ws://h/"
    with pytest.raises(ValueError, match="ws:// or wss://"):
        Upstream("http://example.com")


def test_an_unreadable_cafile_is_a_clear_error(tmp_path: Any) -> None:
    from wscenario.engine.errors import TlsSetupError

    with pytest.raises(TlsSetupError, match="cannot read CA file"):
        upstream_context(cafile=str(tmp_path / "missing.pem"))
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(TlsSetupError, match="no usable certificate"):
        upstream_context(cafile=str(empty))


class FakeStream(anyio.abc.ByteStream):
    """Records what is written and closed; reads give ``b"in"``."""

    def __init__(self) -> None:
        self.log: list[bytes] = []

    async def send(self, item: bytes) -> None:
        self.log.append(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        self.log.append(b"<read>")
        return b"in"

    async def send_eof(self) -> None:
        self.log.append(b"<eof>")

    async def aclose(self) -> None:
        self.log.append(b"<closed>")


async def test_the_other_leg_writes_before_this_one_waits_for_bytes() -> None:
    inner = FakeStream()
    stream = _FlushBeforeRead(inner)
    assert await stream.receive() == b"in"  # nothing to run before it yet

    async def flush_other_leg() -> None:
        inner.log.append(b"<flushed>")

    stream.before_read = flush_other_leg
    await stream.send(b"frame")
    assert await stream.receive() == b"in"
    await stream.send_eof()
    await stream.aclose()
    assert inner.log == [b"<read>", b"frame", b"<flushed>", b"<read>", b"<eof>", b"<closed>"]
    assert stream.extra_attributes == inner.extra_attributes


async def test_a_burst_of_messages_is_forwarded_whole_and_in_order() -> None:
    burst = [f"message {n}" for n in range(300)]

    async def send_burst(ws: ServerConnection) -> None:
        for message in burst:
            await ws.send(message)
        await ws.wait_closed()

    async with websockets_server(send_burst) as port, proxy_to(ws_upstream(port)) as running:
        async with ws_connect(running.url) as client:
            received = [await client.recv() for _ in burst]
        recorder = await running.ended()
    assert received == burst
    assert [event[2]["data"] for event in recorder.of("text")] == burst


# ----------------------------------------------------------------- what the proxy says itself


def own_closes(recorder: ListRecorder) -> list[tuple[Role, int | None, str]]:
    """The closes the proxy wrote itself: each comes right after an ``error`` saying so."""
    found = []
    for before, event in itertools.pairwise(recorder.events):
        if before[1] == "error" and "the proxy, not the" in before[2]["message"]:
            assert event[1] == "close"
            assert event[0] == before[0]
            found.append((event[0], event[2]["code"], event[2]["reason"]))
    return found


async def test_a_close_the_upstream_never_answers_gets_the_proxys_1000() -> None:
    async def deaf(stream: anyio.abc.SocketStream) -> None:
        await stream.send(upgrade_response(await read_head(stream)))
        await anyio.sleep(5)

    limits = Limits(close_timeout=0.3, handshake_timeout=2.0)
    async with raw_server(deaf) as port, proxy_to(ws_upstream(port), limits) as running:
        client = await ws_connect(running.url, close_timeout=3)
        with anyio.fail_after(5):
            await client.close(4000, "bye")
        recorder = await running.ended()
    assert client.close_code == 1000
    assert own_closes(recorder) == [("server", 1000, "")]
    (note,) = recorder.of("error")
    assert note[2]["message"].endswith("the upstream did not answer the close in time")
    assert recorder.status == "aborted"
