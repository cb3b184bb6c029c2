"""The public entry point: our own client and server sides talking to each other."""

from __future__ import annotations

import anyio
import pytest

from tests.engine.ws_peers import LIMITS, accept_chat, engine_server, serve_echo
from wscenario.core.wire import (
    CloseReceived,
    ConnectRequest,
    DataFrame,
    HandshakeDone,
    SendClose,
    SendMessage,
)
from wscenario.engine import websocket
from wscenario.engine.errors import ConnectionClosed

pytestmark = pytest.mark.anyio


async def test_our_client_and_our_server_exchange_and_close() -> None:
    async with engine_server(accept_chat, serve_echo) as (port, outcomes):
        with anyio.fail_after(10):
            request = ConnectRequest(f"ws://127.0.0.1:{port}/chat", subprotocols=("chat.v1",))
            connection, done = await websocket.connect(request, LIMITS)
            await connection.send(SendMessage("ping?"))
            echoed = await connection.receive()
            await connection.send(SendClose(4321, "done"))
            answer = await connection.receive()
            with pytest.raises(ConnectionClosed):
                await connection.receive()
            await connection.aclose()
    assert (done.subprotocol, connection.subprotocol) == ("chat.v1", "chat.v1")
    assert ("X-Server", "engine") in done.headers
    assert echoed == DataFrame("text", "ping?", True, True)
    assert answer == CloseReceived(4321, "done")
    (server_done,) = outcomes
    assert isinstance(server_done, HandshakeDone)
    assert (server_done.path, server_done.subprotocol) == ("/chat", "chat.v1")
    assert ("Sec-WebSocket-Protocol", "chat.v1") in server_done.headers
