"""One client scenario run end to end against a websockets server, for each profile."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path
from typing import Any, Self

import anyio
import anyio.abc
import pytest
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

import wscenario.engine.client
from tests.engine.ws_peers import (
    CloseWatcher,
    raw_server,
    read_head,
    upgrade_response,
    websockets_server,
)
from wscenario.core.diagnostics import Position
from wscenario.core.model import (
    ClientSpec,
    Close,
    Connect,
    ConnectOptions,
    EventMatcher,
    Expect,
    Limits,
    Profile,
    Scenario,
    Send,
    ServerSpec,
    Step,
    TextMatcher,
    TextPayload,
    Unordered,
)
from wscenario.engine.client import ScenarioInterrupted, mentioned_events, run_client_scenario
from wscenario.engine.event_queue import READ_AHEAD
from wscenario.engine.ohos_driver import OhosDriver
from wscenario.engine.raw_driver import RawClientDriver
from wscenario.errors import UsageError


def at(line: int) -> dict[str, Any]:
    return {"position": Position("c.yaml", line, 3), "pointer": f"/steps/{line}"}


def expect(line: int, event: str, **kw: Any) -> Expect:
    return Expect(matcher=EventMatcher(event, **kw), **at(line))


def client(port: int, *steps: Step, profile: Profile = "ohos", **fields: Any) -> Scenario:
    spec = ClientSpec(url=f"ws://127.0.0.1:{port}/", profile=profile)
    return Scenario(path=Path("c.yaml"), name="c", steps=steps, client=spec, timeout=2, **fields)


async def echo(connection: ServerConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in connection:
            await connection.send(message)


def echo_steps(*extra: Step) -> tuple[Step, ...]:
    return (
        Connect(**at(1)),
        expect(2, "open"),
        Send(payload=TextPayload("hi {{ who }}"), **at(3)),
        expect(4, "message", payload=TextMatcher("hi you")),
        *extra,
        Close(code=1000, reason="bye", **at(6)),
        expect(7, "close", fields={"code": 1000, "reason": "bye"}),
    )


def test_mentioned_events() -> None:
    scenario = client(
        1,
        expect(1, "open"),
        Unordered(expects=(expect(10, "message"), expect(11, "dataEnd")), **at(2)),
        ignore=(EventMatcher("headerReceive"),),
    )
    assert mentioned_events(scenario) == {"open", "message", "dataEnd", "headerReceive"}


@pytest.mark.anyio
async def test_ohos_listens_to_data_end_only_when_mentioned() -> None:
    async with websockets_server(echo) as port:
        quiet = await run_client_scenario(
            client(port, *echo_steps()), env={}, variables={"who": "you"}
        )
        chatty = await run_client_scenario(
            client(port, *echo_steps(expect(5, "dataEnd"))), env={}, variables={"who": "you"}
        )
    assert quiet.outcome == "passed", quiet.session.steps
    assert [e.name for e in quiet.session.events] == ["open", "message", "close"]
    assert chatty.outcome == "passed", chatty.session.steps
    assert [e.name for e in chatty.session.events] == ["open", "message", "dataEnd", "close"]
    assert quiet.name == "c"
    assert quiet.side == "client"


@pytest.mark.anyio
async def test_raw_profile_reports_the_protocol() -> None:
    async with websockets_server(echo) as port:
        result = await run_client_scenario(
            client(port, *echo_steps(), profile="raw"), env={}, variables={"who": "you"}
        )
    assert result.outcome == "passed", result.session.steps
    opened = result.session.events[0]
    assert opened.name == "open"
    assert isinstance(opened.value, dict)
    assert opened.value["status"] == 101


@pytest.mark.anyio
async def test_scenario_vars_are_the_default_variables() -> None:
    async with websockets_server(echo) as port:
        scenario = client(port, *echo_steps(), vars={"who": "you"})
        result = await run_client_scenario(scenario, env={})
    assert result.outcome == "passed"
    assert result.session.variables == {"who": "you"}


@pytest.mark.anyio
async def test_server_scenario_is_refused() -> None:
    scenario = Scenario(path=Path("s.yaml"), name="s", steps=(), server=ServerSpec())
    with pytest.raises(UsageError, match="server scenario"):
        await run_client_scenario(scenario, env={})


@pytest.mark.anyio
async def test_driver_failure_is_a_could_not_run_result(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(OhosDriver):
        async def __aenter__(self) -> Self:
            raise OSError("no file descriptors left")

    monkeypatch.setattr(wscenario.engine.client, "OhosDriver", Broken)
    result = await run_client_scenario(client(1, Connect(**at(1))), env={})
    assert result.outcome == "error"
    assert result.session.error == "no file descriptors left"
    assert result.session.total_steps == 1


async def free_port() -> int:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port: int = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    return port


@pytest.mark.anyio
@pytest.mark.parametrize("profile", ["ohos", "raw"])
async def test_an_unreachable_server_means_the_scenario_could_not_run(profile: Profile) -> None:
    port = await free_port()
    result = await run_client_scenario(client(port, *echo_steps(), profile=profile), env={})
    assert result.outcome == "error"
    assert result.session.error == f"could not reach ws://127.0.0.1:{port}/: connection refused"
    assert result.session.failed_step is not None


@pytest.mark.anyio
async def test_an_unknown_host_means_the_scenario_could_not_run() -> None:
    spec = ClientSpec(url="ws://no-such-host.invalid:8080/")
    scenario = Scenario(path=Path("c.yaml"), name="c", steps=echo_steps(), client=spec, timeout=2)
    result = await run_client_scenario(scenario, env={})
    assert result.outcome == "error"
    assert result.session.error is not None
    assert result.session.error.startswith(
        "could not reach ws://no-such-host.invalid:8080/: cannot resolve host: "
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("profile", "error"), [("ohos", {"code": 200, "data": "0"}), ("raw", {"kind": "refused"})]
)
async def test_a_scenario_expecting_the_unreachable_server_passes(
    profile: Profile, error: dict[str, Any]
) -> None:
    steps = (Connect(**at(1)), expect(2, "error", fields=error))
    result = await run_client_scenario(client(await free_port(), *steps, profile=profile), env={})
    assert result.outcome == "passed"
    assert result.session.error is None


@pytest.mark.anyio
async def test_a_server_refusing_the_handshake_was_reached() -> None:
    def not_found(ws: ServerConnection, request: Any) -> object:
        return ws.respond(404, "nothing here\n")

    async with websockets_server(echo, process_request=not_found) as port:
        result = await run_client_scenario(client(port, *echo_steps(), profile="raw"), env={})
    assert result.outcome == "failed"
    assert result.session.error is None


class ClosedWatcher(CloseWatcher):
    """Notes the close code and reason the server saw, and tells when it has."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = anyio.Event()

    async def __call__(self, ws: ServerConnection) -> None:
        await super().__call__(ws)
        self.closed.set()


POLITE_CLOSE = {"ohos": (1000, "CLOSE_NORMAL"), "raw": (1000, "")}
"""What each profile's cleanup writes in its close frame."""


@pytest.mark.anyio
@pytest.mark.parametrize("profile", ["ohos", "raw"])
@pytest.mark.parametrize("outcome", ["passed", "failed"])
async def test_a_connection_left_open_is_closed_politely(profile: Profile, outcome: str) -> None:
    watcher = ClosedWatcher()
    steps: tuple[Step, ...] = (Connect(**at(1)), expect(2, "open"))
    if outcome == "failed":
        steps += (Expect(matcher=EventMatcher("message"), timeout=0.1, **at(3)),)
    async with websockets_server(watcher) as port:
        result = await run_client_scenario(client(port, *steps, profile=profile), env={})
        with anyio.fail_after(2):
            await watcher.closed.wait()
    assert watcher.seen == [POLITE_CLOSE[profile]]
    assert result.outcome == outcome
    assert [e.name for e in result.session.events] == ["open"]


async def read_client_close(stream: anyio.abc.ByteStream) -> tuple[int, bytes]:
    """Read masked client frames until a close frame; its code and reason bytes."""
    data = b""
    while True:
        while len(data) < 6 or len(data) < 6 + (data[1] & 0x7F):
            data += await stream.receive()
        length = data[1] & 0x7F
        mask, payload = data[2:6], data[6 : 6 + length]
        if data[0] & 0x0F == 0x8:
            plain = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
            return struct.unpack("!H", plain[:2])[0], plain[2:]
        data = data[6 + length :]


@pytest.mark.anyio
@pytest.mark.parametrize("profile", ["ohos", "raw"])
async def test_a_silent_server_delays_the_end_by_the_close_timeout_at_most(
    profile: Profile,
) -> None:
    closes: list[tuple[int, bytes]] = []

    async def silent(stream: anyio.abc.SocketStream) -> None:
        await stream.send(upgrade_response(await read_head(stream)))
        closes.append(await read_client_close(stream))
        await anyio.sleep(30)

    steps = (Connect(**at(1)), expect(2, "open"))
    async with raw_server(silent) as port:
        scenario = client(port, *steps, profile=profile, limits=Limits(close_timeout=0.3))
        begin = anyio.current_time()
        result = await run_client_scenario(scenario, env={})
        elapsed = anyio.current_time() - begin
    assert closes == [(1000, POLITE_CLOSE[profile][1].encode())]
    assert 0.3 <= elapsed < 1.5
    assert result.outcome == "passed"
    assert [e.name for e in result.session.events] == ["open"]


@pytest.mark.anyio
@pytest.mark.parametrize("profile", ["ohos", "raw"])
async def test_a_stopped_scenario_closes_with_going_away(profile: Profile) -> None:
    watcher = ClosedWatcher()
    steps = (Connect(**at(1)), expect(2, "open"), expect(3, "message"))
    stop = anyio.CancelScope()
    opened: list[str] = []

    def on_step(step: object) -> None:
        opened.append("step")
        if len(opened) == 2:
            stop.cancel()

    async with websockets_server(watcher) as port:
        scenario = client(port, *steps, profile=profile)
        with anyio.fail_after(5), pytest.raises(ScenarioInterrupted):
            await run_client_scenario(scenario, env={}, on_step=on_step, stop=stop)
        with anyio.fail_after(2):
            await watcher.closed.wait()
    assert watcher.seen == [(1001, "going away")]


@pytest.mark.anyio
@pytest.mark.parametrize("profile", ["ohos", "raw"])
async def test_a_flooding_server_is_held_back_while_the_scenario_sleeps(profile: Profile) -> None:
    count = 2000

    async def flood(connection: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            for number in range(count):
                await connection.send(str(number))
            await connection.wait_closed()

    async with websockets_server(flood) as port:
        driver = (
            OhosDriver(limits=Limits())
            if profile == "ohos"
            else RawClientDriver(Limits(), clock=anyio.current_time)
        )
        async with driver:
            assert await driver.connect(f"ws://127.0.0.1:{port}/", ConnectOptions()) is None
            await anyio.sleep(0.5)  # the scenario is busy: the driver stops reading
            assert len(driver._events) <= READ_AHEAD + 2 < count  # open (+ headerReceive), messages
            texts: list[object] = []
            while len(texts) < count and (event := await driver.next_event(2.0)) is not None:
                if event.name == "message":
                    texts.append(event.value)
    assert texts == [str(number) for number in range(count)]  # nothing lost, in order
