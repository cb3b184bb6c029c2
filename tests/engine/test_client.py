"""One client scenario run end to end against a websockets server, for each profile."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Self

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

import wscenario.engine.client
from tests.engine.ws_peers import websockets_server
from wscenario.core.diagnostics import Position
from wscenario.core.model import (
    ClientSpec,
    Close,
    Connect,
    EventMatcher,
    Expect,
    Profile,
    Scenario,
    Send,
    ServerSpec,
    Step,
    TextMatcher,
    TextPayload,
    Unordered,
)
from wscenario.engine.client import mentioned_events, run_client_scenario
from wscenario.engine.ohos_driver import OhosDriver
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
