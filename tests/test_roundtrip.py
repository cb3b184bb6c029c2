"""A session between real peers, recorded by ``wscenario record``, then played back every way.

A ``websockets`` server (echo, one message sent as three fragments, a close with 4001 "bye"
when asked) and a ``websockets`` client talk through the recording proxy. The transcript then
replays against the same server, plays the server to the same client (who must see the same
conversation), and converts to a client scenario that validates and passes against the server.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from tests.engine.test_replay import MESSAGES
from tests.engine.ws_peers import websockets_server
from tests.test_convert_cli import wscenario
from tests.test_record_cli import line_with, recording, transcripts
from tests.test_serve_cli import finish
from wscenario.cli import main

pytestmark = pytest.mark.anyio

FRAGMENTED = b"\x01\x04frag" + b"\x00\x03men" + b"\x80\x03ted"
"""Text "fragmented" in three frames (text, continuation, final continuation), unmasked."""

CLOSE = Close(4001, "bye")
"""How the server closes, when asked for ``bye``."""


async def talker(ws: ServerConnection) -> None:
    """Echo every message; ``fragments``: one message in three frames; ``bye``: close 4001."""
    async for message in ws:
        if message == "fragments":
            ws.transport.write(FRAGMENTED)  # websockets would end with an empty fourth frame
        elif message == "bye":
            await ws.close(CLOSE.code, CLOSE.reason)
            return
        else:
            await ws.send(message)


@dataclass(frozen=True)
class Conversation:
    """What the client received, message by message, and the close frame that ended it."""

    messages: list[str | bytes]
    close: Close | None


async def converse(url: str) -> Conversation:
    """The client's script: send ``MESSAGES``, ask for fragments, then for the server's close."""
    received: list[str | bytes] = []
    with anyio.fail_after(10):
        async with connect(url, proxy=None, compression=None) as ws:
            for message in [*MESSAGES, "fragments"]:
                await ws.send(message)
                received.append(await ws.recv())
            await ws.send("bye")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
    return Conversation(received, closed.value.rcvd)


EXPECTED = Conversation([*MESSAGES, "fragmented"], CLOSE)


@dataclass(frozen=True)
class Recorded:
    """The server's URL (with the path the client used) and the session's transcript."""

    url: str
    transcript: Path


@pytest.fixture
async def recorded(tmp_path: Path) -> AsyncIterator[Recorded]:
    """The conversation with ``talker`` through ``wscenario record``; the server stays up."""
    folder = tmp_path / "rec"
    async with websockets_server(talker) as port:
        upstream = f"ws://127.0.0.1:{port}"
        async with recording("--upstream", upstream, "--out", str(folder)) as proxy:
            assert await converse(proxy.url + "/chat?room=1") == EXPECTED
            await line_with(proxy, "transcript")
            proxy.process.send_signal(signal.SIGTERM)
            code, printed, err = await finish(proxy)
        assert code == 0, printed + err
        (transcript,) = transcripts(folder)
        yield Recorded(f"{upstream}/chat?room=1", transcript)


async def test_the_transcript_replays_against_the_same_server(recorded: Recorded) -> None:
    code, out = await wscenario(
        "replay", str(recorded.transcript), "--against", recorded.url, "--timing", "fast"
    )
    assert code == 0, out
    assert "1 passed, 0 failed" in out


async def test_the_replayed_server_gives_the_client_the_same_conversation(
    recorded: Recorded,
) -> None:
    command = [sys.executable, "-m", "wscenario", "replay", str(recorded.transcript), "--serve",
               "--listen", "127.0.0.1:0", "--once", "--timing", "fast"]  # fmt: skip
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        output = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(10):
            first = (await output.receive_until(b"\n", 4096)).decode()
        url = first.split(" on ", 1)[1]  # replaying the server side of NAME on URL
        assert url.startswith("ws://127.0.0.1:"), first
        assert await converse(url + "?room=1") == EXPECTED
        with anyio.fail_after(10):
            rest = b"".join([chunk async for chunk in output]).decode()
            assert await process.wait() == 0, first + rest
    assert "1 passed, 0 failed" in rest


async def test_the_converted_client_scenario_validates_and_passes_against_the_server(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "x.yaml"
    command = ["convert", str(recorded.transcript), "--side", "client", "-o", str(scenario)]
    assert main(command) == 0, capsys.readouterr().err
    assert main(["validate", str(scenario)]) == 0, capsys.readouterr().out
    code, out = await wscenario("run", str(scenario), "--url", recorded.url)
    assert code == 0, out
    assert "1 passed, 0 failed" in out
