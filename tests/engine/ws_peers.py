"""Peers for the engine's tests: websockets and raw TCP servers, and our own server side.

A raw server gets the accepted stream and writes whatever bytes a hostile or odd peer would.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from websockets.asyncio.server import ServerConnection, serve

from wscenario.core.model import Limits
from wscenario.core.wire import (
    CloseReceived,
    ConnectionLost,
    ConnectRequest,
    DataFrame,
    HandshakeDone,
    SendClose,
    SendMessage,
)
from wscenario.engine.websocket import (
    Accept,
    Decide,
    HandshakeRequest,
    Reject,
    WebSocketConnection,
    accept,
    connect,
)

RawHandler = Callable[[anyio.abc.SocketStream], Awaitable[None]]


@asynccontextmanager
async def websockets_server(
    handler: Callable[[ServerConnection], Awaitable[None]], **options: Any
) -> AsyncIterator[int]:
    """Run a websockets server (compression off) on 127.0.0.1; yields its port."""
    options.setdefault("compression", None)
    async with serve(handler, "127.0.0.1", 0, **options) as server:
        port: int = next(iter(server.sockets)).getsockname()[1]
        yield port


@asynccontextmanager
async def raw_server(handler: RawHandler) -> AsyncIterator[int]:
    """Serve every TCP connection on 127.0.0.1 with ``handler``; yields the port."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(SocketAttribute.local_port)

    async def contained(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            with suppress(anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                await handler(stream)

    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, contained)
        yield port
        group.cancel_scope.cancel()


class CloseWatcher:
    """A websockets handler: writes ``raw`` bytes, sends ``messages``, notes the close."""

    def __init__(self, *messages: str | bytes | list[str], raw: bytes = b"") -> None:
        self.messages = messages
        self.raw = raw
        self.seen: list[tuple[int | None, str | None]] = []

    async def __call__(self, ws: ServerConnection) -> None:
        if self.raw:
            ws.transport.write(self.raw)
        for message in self.messages:
            await ws.send(message)
        await ws.wait_closed()
        self.seen.append((ws.close_code, ws.close_reason))

    @property
    def codes(self) -> list[int | None]:
        return [code for code, _ in self.seen]


async def read_head(stream: anyio.abc.ByteStream) -> bytes:
    """Read bytes until the end of an HTTP head."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    return data


def accept_for(request: bytes) -> str:
    """The Sec-WebSocket-Accept value that answers ``request``."""
    found = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", request)
    assert found is not None
    digest = hashlib.sha1(found.group(1) + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    return base64.b64encode(digest).decode()


def upgrade_response(request: bytes, *extra: str, reason: str = "Switching Protocols") -> bytes:
    """A valid 101 for ``request`` with ``extra`` header lines."""
    lines = [
        f"HTTP/1.1 101 {reason}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_for(request)}",
        *extra,
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


LIMITS = Limits(close_timeout=2.0, handshake_timeout=2.0)
"""Short deadlines, so that a test that goes wrong fails fast."""


async def echo(ws: ServerConnection) -> None:
    """A websockets handler that echoes every message."""
    async for message in ws:
        await ws.send(message)


async def open_client(port: int, limits: Limits = LIMITS, path: str = "/") -> WebSocketConnection:
    """A client connection to ``ws://127.0.0.1:port/path``."""
    connection, _ = await connect(ConnectRequest(f"ws://127.0.0.1:{port}{path}"), limits)
    return connection


Serve = Callable[[WebSocketConnection], Awaitable[None]]


@asynccontextmanager
async def engine_server(
    decide: Decide, serve: Serve, limits: Limits = LIMITS
) -> AsyncIterator[tuple[int, list[HandshakeDone | None]]]:
    """Our own server side: ``accept`` then ``serve``; yields the port and each outcome."""
    outcomes: list[HandshakeDone | None] = []

    async def handle(stream: anyio.abc.SocketStream) -> None:
        accepted = await accept(stream, limits, decide)
        outcomes.append(accepted[1] if accepted else None)
        if accepted:
            await serve(accepted[0])

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, handle)
        yield listener.extra(SocketAttribute.local_port), outcomes
        group.cancel_scope.cancel()


async def accept_chat(request: HandshakeRequest) -> Accept | Reject:
    """Accept ``/chat`` (selecting ``chat.v1`` when offered); 404 for other paths."""
    if request.path != "/chat":
        return Reject(404, b"no such path", (("X-Path", request.path),))
    chosen = "chat.v1" if "chat.v1" in request.subprotocols else None
    return Accept(chosen, (("X-Server", "engine"),))


async def serve_echo(connection: WebSocketConnection) -> None:
    """Echo whole one-frame messages; answer the close; stop when the connection ends."""
    while True:
        event = await connection.receive()
        if isinstance(event, DataFrame):
            if event.first and event.final:
                await connection.send(SendMessage(event.data))
        elif isinstance(event, CloseReceived):
            await connection.send(SendClose(event.code, event.reason))
            await connection.aclose()
            return
        elif isinstance(event, ConnectionLost):
            return
