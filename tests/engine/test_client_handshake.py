"""The client handshake against websockets and raw hostile servers."""

from __future__ import annotations

from http import HTTPStatus

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request

from tests.engine.ws_peers import (
    LIMITS,
    echo,
    raw_server,
    read_head,
    upgrade_response,
    websockets_server,
)
from wscenario.core.model import Limits
from wscenario.core.wire import (
    ConnectRequest,
)
from wscenario.engine.errors import HandshakeError
from wscenario.engine.websocket import (
    connect,
)

pytestmark = pytest.mark.anyio


async def failure_of(url: str, limits: Limits = LIMITS, **request: float) -> HandshakeError:
    with anyio.fail_after(10), pytest.raises(HandshakeError) as caught:
        await connect(ConnectRequest(url, **request), limits)  # type: ignore[arg-type]
    return caught.value


async def test_a_refusal_keeps_status_reason_headers_and_body() -> None:
    async def refuse(stream: anyio.abc.SocketStream) -> None:
        await read_head(stream)
        await stream.send(
            b"HTTP/1.1 403 Not Today\r\nX-Why: policy\r\nContent-Length: 5\r\n\r\nnope!"
        )

    async with raw_server(refuse) as port:
        failed = (await failure_of(f"ws://127.0.0.1:{port}/")).failed
    assert (failed.kind, failed.status, failed.body) == ("status", 403, b"nope!")
    assert ("X-Why", "policy") in failed.headers
    assert "403 Not Today" in failed.message


async def test_a_websockets_refusal_is_reported_with_its_body() -> None:
    def unauthorized(ws: ServerConnection, request: Request) -> object:
        return ws.respond(HTTPStatus.UNAUTHORIZED, "who are you?\n")

    async with websockets_server(echo, process_request=unauthorized) as port:
        failed = (await failure_of(f"ws://127.0.0.1:{port}/")).failed
    assert (failed.kind, failed.status, failed.body) == ("status", 401, b"who are you?\n")


async def test_a_refusal_body_is_kept_up_to_1_mib() -> None:
    async def big_refusal(stream: anyio.abc.SocketStream) -> None:
        await read_head(stream)
        size = 2 * 1024 * 1024
        await stream.send(f"HTTP/1.1 500 Oops\r\nContent-Length: {size}\r\n\r\n".encode())
        await stream.send(b"b" * size)
        await anyio.sleep(5)

    async with raw_server(big_refusal) as port:
        failed = (await failure_of(f"ws://127.0.0.1:{port}/")).failed
    assert (failed.status, failed.body) == (500, b"b" * 1024 * 1024)


async def test_the_reason_phrase_is_kept_exactly() -> None:
    async def odd_reason(stream: anyio.abc.SocketStream) -> None:
        request = await read_head(stream)
        await stream.send(upgrade_response(request, reason="Web Socket Protocol Handshake"))
        await anyio.sleep(1)

    async with raw_server(odd_reason) as port:
        with anyio.fail_after(10):
            connection, done = await connect(ConnectRequest(f"ws://127.0.0.1:{port}/"), LIMITS)
            await connection.abort()
    assert done.reason == "Web Socket Protocol Handshake"


async def test_a_silent_server_times_the_handshake_out() -> None:
    async def silent(stream: anyio.abc.SocketStream) -> None:
        await anyio.sleep(5)

    async with raw_server(silent) as port:
        failed = (await failure_of(f"ws://127.0.0.1:{port}/", Limits(handshake_timeout=0.2))).failed
    assert failed.kind == "timeout"


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"HTTP/1.1 101 OK\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", "over 16384 bytes"),
        (b"HTTP/1.1 101 OK\r\n" + b"X-Many: 1\r\n" * 200 + b"\r\n", "more than 128 headers"),
    ],
)
async def test_an_oversized_response_head_in_one_write_is_refused(
    head: bytes, message: str
) -> None:
    async def oversized(stream: anyio.abc.SocketStream) -> None:
        await read_head(stream)
        await stream.send(head)
        await anyio.sleep(1)

    async with raw_server(oversized) as port:
        failed = (await failure_of(f"ws://127.0.0.1:{port}/")).failed
    assert failed.kind == "too-large"
    assert message in failed.message


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (b"\x00\x01\x02 garbage\r\n\r\n", "protocol"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "protocol"),
        (
            (
                b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: d3Jvbmc=\r\n\r\n"
            ),
            "accept",
        ),
        (b"HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n\r\n", "protocol"),
        (b"", "protocol"),
    ],
)
async def test_broken_handshake_answers_fail_clearly(answer: bytes, kind: str) -> None:
    async def broken(stream: anyio.abc.SocketStream) -> None:
        await read_head(stream)
        if answer:
            await stream.send(answer)
            await anyio.sleep(1)

    async with raw_server(broken) as port:
        failed = (await failure_of(f"ws://127.0.0.1:{port}/")).failed
    assert failed.kind == kind
    assert failed.message


async def test_a_subprotocol_that_was_not_offered_fails() -> None:
    async def wrong_protocol(stream: anyio.abc.SocketStream) -> None:
        request = await read_head(stream)
        await stream.send(upgrade_response(request, "Sec-WebSocket-Protocol: other"))
        await anyio.sleep(1)

    async with raw_server(wrong_protocol) as port:
        with anyio.fail_after(10), pytest.raises(HandshakeError) as caught:
            await connect(ConnectRequest(f"ws://127.0.0.1:{port}/", subprotocols=("chat",)), LIMITS)
    assert caught.value.failed.kind == "protocol"
    assert "other" in caught.value.failed.message


async def test_the_offered_subprotocol_and_headers_reach_websockets() -> None:
    seen: list[tuple[str | None, ...]] = []

    async def watcher(ws: ServerConnection) -> None:
        assert ws.request is not None
        headers = ws.request.headers
        seen.append((ws.subprotocol, headers.get("X-Token"), headers.get("Host")))
        seen.append((headers.get("Sec-WebSocket-Extensions"),))
        await ws.close()

    # the server would accept permessage-deflate if it were offered: it is not
    async with websockets_server(watcher, subprotocols=["b.v2"], compression="deflate") as port:
        with anyio.fail_after(10):
            request = ConnectRequest(
                f"ws://127.0.0.1:{port}/",
                headers=(("X-Token", "t1"),),
                subprotocols=("a.v1", "b.v2"),
            )
            connection, done = await connect(request, LIMITS)
            await connection.aclose()
    assert seen == [("b.v2", "t1", f"127.0.0.1:{port}"), (None,)]
    assert done.subprotocol == connection.subprotocol == "b.v2"


async def test_connection_refused_and_bad_urls_and_unknown_hosts() -> None:
    async with raw_server(lambda stream: anyio.lowlevel.checkpoint()) as port:
        pass  # the port is free again
    assert (await failure_of(f"ws://127.0.0.1:{port}/")).failed.kind == "refused"
    assert (await failure_of("http://127.0.0.1/")).failed.kind == "invalid"
    assert (await failure_of("ws://127.0.0.1:99999/")).failed.kind == "invalid"
    assert (await failure_of("ws://host.invalid/")).failed.kind == "dns"


async def test_tcp_and_tls_deadlines() -> None:
    async def never_connects() -> anyio.abc.ByteStream:
        await anyio.sleep(5)
        raise AssertionError("the connect deadline should have passed")

    with anyio.fail_after(10), pytest.raises(HandshakeError) as caught:
        await connect(
            ConnectRequest("ws://127.0.0.1:9/", connect_timeout=0.1),
            LIMITS,
            stream_factory=never_connects,
        )
    assert (caught.value.failed.kind, caught.value.failed.message) == (
        "timeout",
        "no TCP connection within 0.1 s",
    )

    async def silent(stream: anyio.abc.SocketStream) -> None:
        await anyio.sleep(5)

    async with raw_server(silent) as port:
        failed = (await failure_of(f"wss://127.0.0.1:{port}/", handshake_timeout=0.2)).failed
    assert failed.kind == "timeout"


async def test_a_header_with_a_line_break_is_refused_before_sending() -> None:
    with anyio.fail_after(10), pytest.raises(HandshakeError) as caught:
        await connect(
            ConnectRequest("ws://127.0.0.1:9/", headers=(("X-A", "ok\r\nX-Injected: 1"),)),
            LIMITS,
            stream_factory=_never_used_stream,
        )
    assert caught.value.failed.kind == "invalid"


async def _never_used_stream() -> anyio.abc.ByteStream:
    sender, receiver = anyio.create_memory_object_stream[bytes](10)
    from anyio.streams.stapled import StapledObjectStream

    return StapledObjectStream(sender, receiver)  # type: ignore[return-value]
