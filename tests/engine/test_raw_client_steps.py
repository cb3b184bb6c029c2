"""A raw-profile client's own fault steps (ping, raw frames, drop) against a websockets server."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tests.engine.ws_peers import websockets_server
from wscenario.core.scenario_loader import load_scenario
from wscenario.engine.client import run_client_scenario

pytestmark = pytest.mark.anyio

SCENARIO = """\
wscenario: 1
name: a client that misbehaves on purpose
client: {{url: "ws://127.0.0.1:{port}/", profile: raw}}
steps:
  - connect: {{}}
  - expect: open
  - ping: {{data: are you there}}
  - expect: {{pong: are you there}}
  - frames:
      - {{opcode: 1, data: "hel", fin: false}}
      - {{opcode: 0, data: "lo", delay: 10ms}}
  - expect: {{message: hello}}
  - drop: {{mode: {mode}}}
"""


@pytest.mark.parametrize("mode", ["fin", "rst"])
async def test_a_raw_client_pings_writes_raw_frames_and_drops(tmp_path: Path, mode: str) -> None:
    received: list[str | bytes] = []
    ended = anyio.Event()
    close_codes: list[int | None] = []

    async def echo(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                received.append(message)
                await ws.send(message)
        except ConnectionClosed:
            pass
        close_codes.append(ws.close_code)
        ended.set()

    async with websockets_server(echo) as port:
        path = tmp_path / "client.yaml"
        path.write_text(SCENARIO.format(port=port, mode=mode))
        result = await run_client_scenario(load_scenario(path), env={})
        with anyio.fail_after(5):
            await ended.wait()
    assert result.outcome == "passed", result
    assert received == ["hello"]  # the two raw frames made one message
    assert close_codes == [1006]  # no close frame: the server saw the connection drop
