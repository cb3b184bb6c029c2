"""A raw-profile client with ``frames: true`` sees each data frame as it came (websockets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection

from tests.engine.ws_peers import websockets_server
from wscenario.core.scenario_loader import load_scenario
from wscenario.engine.client import run_client_scenario
from wscenario.engine.raw_driver import frame_value

pytestmark = pytest.mark.anyio

SCENARIO = """\
wscenario: 1
name: frames as they came
client: {{url: "ws://127.0.0.1:{port}/", profile: raw, frames: true}}
steps:
  - connect: {{}}
  - expect: open
  - expect: {{frame: {{opcode: 1, fin: false, text: "hel"}}}}
  - expect: {{frame: {{opcode: 0, fin: false, text: "lo"}}}}
  - expect: {{frame: {{opcode: 0, fin: true, text: ""}}}}
  - expect: {{frame: {{opcode: 2, fin: true, hex: "00ff"}}}}
  - expect: {{frame: {{opcode: 2, fin: false, hex: "68656164"}}}}
  - expect: {{frame: {{opcode: 0, fin: false, hex: "{big}"}}}}
  - expect: {{frame: {{opcode: 0, fin: true}}}}
  - close: {{}}
  - expect: {{close: {{code: 1000}}}}
"""


async def test_each_data_frame_is_an_event_with_its_opcode_and_fin(tmp_path: Path) -> None:
    """websockets ends a message sent from an iterable with an empty final frame: seen too."""
    big = b"\x01" * 200_000  # one frame larger than a read: its pieces make one event

    async def fragmenting(ws: ServerConnection) -> None:
        await ws.send(["hel", "lo"])
        await ws.send(b"\x00\xff")
        await ws.send([b"head", big])
        await ws.wait_closed()

    async with websockets_server(fragmenting) as port:
        path = tmp_path / "client.yaml"
        path.write_text(SCENARIO.format(port=port, big=big.hex()))
        result = await run_client_scenario(load_scenario(path), env={})
    assert result.outcome == "passed", result


def test_a_frame_value_names_its_opcode_and_carries_text_or_hex() -> None:
    assert frame_value("hé", first=True, fin=False) == {"opcode": 1, "fin": False, "text": "hé"}
    assert frame_value(b"\x00", first=False, fin=True) == {"opcode": 0, "fin": True, "hex": "00"}
    assert frame_value(b"", first=True, fin=True) == {"opcode": 2, "fin": True, "hex": ""}
