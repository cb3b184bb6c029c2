"""The server handshake against websockets clients and raw hostile ones."""

from __future__ import annotations

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from tests.engine.ws_peers import LIMITS, accept_chat, engine_server, raw_server, serve_echo
from wscenario.core.model import Limits
from wscenario.engine.websocket import Accept, HandshakeRequest, Reject, accept

pytestmark = pytest.mark.anyio


async def test_websockets_clients_are_accepted_and_echoed() -> None:
    async with engine_server(accept_chat, serve_echo) as (port, outcomes):
        with anyio.fail_after(10):
            async with ws_connect(
                f"ws://127.0.0.1:{port}/chat",
                subprotocols=["chat.v1"],  # type: ignore[list-item]
                compression=None,
            ) as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                await ws.send(b"\x01")
                assert await ws.recv() == b"\x01"
                assert ws.subprotocol == "chat.v1"
                assert ws.response is not None
                assert ws.response.headers["X-Server"] == "engine"
    (done,) = outcomes
    assert done is not None
    assert (done.path, done.subprotocol) == ("/chat", "chat.v1")


async def test_permessage_deflate_offered_by_the_client_is_declined() -> None:
    async with engine_server(accept_chat, serve_echo) as (port, outcomes):
        with anyio.fail_after(10):
            async with ws_connect(f"ws://127.0.0.1:{port}/chat", compression="deflate") as ws:
                await ws.send("plain")
                assert await ws.recv() == "plain"
                assert ws.protocol.extensions == []
    (done,) = outcomes
    assert done is not None
    (offered,) = [value for name, value in done.headers if name == "Sec-WebSocket-Extensions"]
    assert "permessage-deflate" in offered


async def test_a_rejection_reaches_websockets_with_status_and_body() -> None:
    async with engine_server(accept_chat, serve_echo) as (port, outcomes):
        with anyio.fail_after(10), pytest.raises(InvalidStatus) as caught:
            await ws_connect(f"ws://127.0.0.1:{port}/other")
    response = caught.value.response
    assert response.status_code == 404
    assert response.body == b"no such path"
    assert response.headers["X-Path"] == "/other"
    assert outcomes == [None]


async def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on a fresh TCP connection and read everything the server answers."""
    answer = b""
    with anyio.fail_after(10):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            if data:
                await stream.send(data)
            try:
                while True:
                    answer += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    return answer


KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
UPGRADE = b"Upgrade: websocket\r\nConnection: Upgrade\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status", "detail"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"400", b"invalid HTTP request"),
        (b"garbage\r\n\r\n", b"400", b"invalid HTTP request"),
        (b"POST /chat HTTP/1.1\r\nHost: x\r\n" + UPGRADE + KEY + b"\r\n", b"400", b"GET"),
        (
            b"GET /chat HTTP/1.1\r\nHost: x\r\n" + UPGRADE + b"Sec-WebSocket-Version: 13\r\n\r\n",
            b"400",
            b"Sec-WebSocket-Key",
        ),
        (
            b"GET /chat HTTP/1.1\r\nHost: x\r\n"
            + UPGRADE
            + KEY
            + b"Sec-WebSocket-Version: 8\r\n\r\n",
            b"426",
            b"Sec-WebSocket-Version: 13",
        ),
        (b"GET /chat HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", b"431", b""),
        (b"GET /chat HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 200 + b"\r\n", b"431", b"headers"),
        (
            b"GET /chat HTTP/1.1\r\nHost: x\r\n"
            + UPGRADE
            + b"Sec-WebSocket-Key: abc\r\n"
            + b"Sec-WebSocket-Version: 13\r\n\r\n",
            b"400",
            b"16 bytes",
        ),
    ],
)
async def test_hostile_requests_get_an_http_error_and_cost_one_connection(
    request_bytes: bytes, status: bytes, detail: bytes
) -> None:
    async with engine_server(accept_chat, serve_echo) as (port, outcomes):
        answer = await exchange(port, request_bytes)
        # the server is still there for the next client
        async with ws_connect(f"ws://127.0.0.1:{port}/chat", compression=None) as ws:
            await ws.send("still up")
            assert await ws.recv() == "still up"
    assert answer.startswith(b"HTTP/1.1 " + status)
    assert detail in answer
    assert outcomes[0] is None


async def test_a_slow_request_head_gets_408() -> None:
    async with engine_server(accept_chat, serve_echo, Limits(handshake_timeout=0.2)) as (port, _):
        answer = await exchange(port, b"GET /chat HTTP/1.1\r\n")
    assert answer.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize(
    "answer",
    [Reject(200, b"", (("X-Bad", "a\r\nb"),)), Reject(99), Accept("chat", (("Bad Name", "x"),))],
)
async def test_an_answer_http_cannot_carry_is_a_500_and_a_clear_error(
    answer: Accept | Reject,
) -> None:
    errors: list[str] = []

    async def decide(request: HandshakeRequest) -> Accept | Reject:
        return answer

    async def handle(stream: anyio.abc.SocketStream) -> None:
        try:
            await accept(stream, LIMITS, decide)
        except ValueError as exc:
            errors.append(str(exc))

    async with raw_server(handle) as port:
        request = b"GET /chat HTTP/1.1\r\nHost: x\r\n" + UPGRADE + KEY
        reply = await exchange(port, request + b"Sec-WebSocket-Version: 13\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 500 Internal Server Error")
    (error,) = errors
    assert error.startswith(f"cannot answer the handshake with {answer}")
