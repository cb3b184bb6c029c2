"""The ohos client driver against a ``websockets`` echo server: events and call outcomes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.abc
import pytest
from websockets.asyncio.server import ServerConnection, serve

from tests.engine.test_client import read_client_close
from tests.engine.ws_peers import raw_server, read_head, upgrade_response
from wscenario.core.events import CallError, Event
from wscenario.core.model import ClientCert, ConnectOptions, RawFrame
from wscenario.engine.ohos_driver import OhosDriver, ServerOnlyStep, options_object

pytestmark = pytest.mark.anyio


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    async with serve(echo, "127.0.0.1", 0, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"


async def next_value(driver: OhosDriver, name: str) -> object:
    event = await driver.next_event(5)
    assert event is not None
    assert event.name == name
    return event.value


async def test_echo_session(echo_url: str) -> None:
    async with OhosDriver() as driver:
        assert await driver.connect(echo_url, ConnectOptions()) is None
        headers = await next_value(driver, "headerReceive")
        assert isinstance(headers, dict)
        assert headers["upgrade"] == "websocket"
        assert await next_value(driver, "open") == {"status": 101, "message": "Switching Protocols"}
        assert await driver.send("hi") is None
        assert await driver.send(b"\x01") is None
        assert await next_value(driver, "message") == "hi"
        assert await next_value(driver, "dataEnd") is None
        assert await next_value(driver, "message") == b"\x01"
        assert await next_value(driver, "dataEnd") is None
        assert await driver.close(4000, None) is None
        close = await driver.next_event(5)
        assert close is not None
        assert close == Event("close", {"code": 1000, "reason": "CLOSE_NORMAL"}, close.t)
        assert close.t > 0
        assert await driver.send("late") == CallError(-1, "Websocket Unknown Other Error")
        assert await driver.close(None, None) == CallError(2302999, "Websocket Unknown Other Error")
        assert await driver.next_event(0.1) is None


async def test_connect_errors_are_call_errors() -> None:
    async with OhosDriver(api=20) as driver:
        assert await driver.connect("http://h/", ConnectOptions()) == CallError(
            2302001, "Websocket url error"
        )
    async with OhosDriver(internet_permission=False) as driver:
        assert await driver.connect("ws://h/", ConnectOptions()) == CallError(
            201, "Permission denied"
        )


async def test_close_while_connecting_opens_then_closes(echo_url: str) -> None:
    async with OhosDriver() as driver:
        await driver.connect(echo_url, ConnectOptions())
        assert await driver.close(1000, "bye") is None
        await next_value(driver, "headerReceive")
        assert await next_value(driver, "open") == {"status": 101, "message": "Switching Protocols"}
        assert await next_value(driver, "close") == {"code": 1000, "reason": "bye"}


async def test_refused_connection_is_an_error_event_only() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    async with OhosDriver() as driver:
        assert await driver.connect(f"ws://127.0.0.1:{port}/", ConnectOptions()) is None
        assert await next_value(driver, "error") == {"code": 200, "data": "0"}
        assert await driver.next_event(0.2) is None
        assert driver.handshake_failure is not None
        url, failed = driver.handshake_failure
        assert (url, failed.kind) == (f"ws://127.0.0.1:{port}/", "refused")


async def test_an_unknown_host_is_a_dns_failure() -> None:
    async with OhosDriver() as driver:
        assert driver.handshake_failure is None
        error = await driver.connect("ws://no-such-host.invalid/", ConnectOptions())
        assert error is not None
        assert driver.handshake_failure is not None
        url, failed = driver.handshake_failure
        assert (url, failed.kind) == ("ws://no-such-host.invalid/", "dns")
        assert failed.message.startswith("cannot resolve host: ")


async def test_server_only_steps_are_refused() -> None:
    async with OhosDriver() as driver:
        with pytest.raises(ServerOnlyStep):
            await driver.ping(b"")
        with pytest.raises(AssertionError, match="fake-server step"):
            await driver.drop(rst=True)
        with pytest.raises(ServerOnlyStep):
            await driver.write_frames((RawFrame(opcode=1),))
        with pytest.raises(ServerOnlyStep):
            await driver.stop_reading()
        with pytest.raises(ServerOnlyStep):
            await driver.send("x", fragments=2)
        with pytest.raises(ServerOnlyStep):
            await driver.close(1000, None, no_payload=True)


def test_options_become_request_options() -> None:
    assert options_object(ConnectOptions()) == {}
    options = ConnectOptions(
        header={"authorization": "Bearer t"},
        protocol="chat",
        ca_path=Path("/tls/ca.pem"),
        client_cert=ClientCert(Path("/c.pem"), Path("/k.pem"), "pw"),
        ping_interval=5,
        pong_timeout=2,
        skip_server_cert_verification=True,
    )
    assert options_object(options) == {
        "header": {"authorization": "Bearer t"},
        "protocol": "chat",
        "caPath": "/tls/ca.pem",
        "clientCert": {"certPath": "/c.pem", "keyPath": "/k.pem", "keyPassword": "pw"},
        "pingInterval": 5,
        "pongTimeout": 2,
        "skipServerCertVerification": True,
    }


async def test_leaving_waits_for_the_answer_to_an_earlier_close() -> None:
    closed_after_the_answer = anyio.Event()

    async def slow_to_answer(stream: anyio.abc.SocketStream) -> None:
        await stream.send(upgrade_response(await read_head(stream)))
        code, reason = await read_client_close(stream)
        with anyio.move_on_after(0.3):
            await stream.receive()  # EndOfStream, ending the handler, if the client left early
        await stream.send(bytes([0x88, 2 + len(reason)]) + code.to_bytes(2, "big") + reason)
        with pytest.raises(anyio.EndOfStream):  # the client closes TCP, and only then
            await stream.receive()
        closed_after_the_answer.set()

    async with raw_server(slow_to_answer) as port:
        async with OhosDriver() as driver:
            await driver.connect(f"ws://127.0.0.1:{port}/", ConnectOptions())
            assert await next_value(driver, "headerReceive")
            assert await next_value(driver, "open")
            assert await driver.close(None, None) is None
        with anyio.fail_after(2):
            await closed_after_the_answer.wait()
