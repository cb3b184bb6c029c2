"""permessage-deflate on the fake server: negotiated only when a scenario asks for it, against
the ``websockets`` client; decompression capped at the message size (a raw "zip bomb")."""

from __future__ import annotations

import os
import zlib
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import connect
from wsproto.frame_protocol import FrameProtocol

from tests.engine.test_server import UPGRADE, WAIT, echo, next_event, running, served
from wscenario.core.model import Limits, ServerSpec
from wscenario.engine.deflate import negotiate
from wscenario.engine.frames import encode_frame
from wscenario.engine.server_driver import ServerDriver

pytestmark = pytest.mark.anyio

DEFLATE = {"/": ServerSpec(path="/", permessage_deflate=True)}


def compressing(port: int, **options: Any) -> connect:
    """A websockets client that offers permessage-deflate."""
    return connect(
        f"ws://127.0.0.1:{port}/", compression="deflate", proxy=None, open_timeout=WAIT, **options
    )


async def test_messages_both_ways_are_compressed_when_the_scenario_asks() -> None:
    text = "quote " * 2000
    data = os.urandom(50_000) + bytes(50_000)
    async with running(specs=DEFLATE) as (_, port), compressing(port) as ws:
        assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
        for message in (text, data, "", b"x"):
            await ws.send(message)
            assert await ws.recv() == message


async def test_a_fragmented_answer_is_compressed_and_arrives_whole() -> None:
    seen: list[bytes] = []

    class Observer:
        def frame_sent(self, frame: bytes) -> None:
            seen.append(frame)

        def event_received(self, event: object) -> None: ...
        def dropped(self, *, rst: bool) -> None: ...
        def transport_closed(self) -> None: ...

    async def fragments(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        driver.connection.observer = Observer()
        await driver.send("fragmented " * 100, fragments=3)
        await driver.send(b"\x00" * 1000)
        await next_event(driver, "close")

    specs = {"/": ServerSpec(path="/", permessage_deflate=True)}
    async with running({"/": fragments}, specs=specs) as (_, port), compressing(port) as ws:
        assert await ws.recv() == "fragmented " * 100
        assert await ws.recv() == b"\x00" * 1000
    # what the observer (a transcript) is told is the plain message, not the compressed bytes
    plain = FrameProtocol(client=True, extensions=[])
    plain.receive_bytes(b"".join(seen))
    payloads = [frame.payload for frame in plain.received_frames()]
    assert "".join(p for p in payloads if isinstance(p, str)) == "fragmented " * 100
    assert bytes(b"".join(p for p in payloads if isinstance(p, bytes | bytearray))) == (
        b"\x00" * 1000
    )


async def test_without_the_scenarios_consent_nothing_is_compressed() -> None:
    async with running() as (_, port), compressing(port) as ws:
        assert ws.protocol.extensions == []
        await ws.send("plain")
        assert await ws.recv() == "plain"


async def test_a_message_that_inflates_past_the_limit_is_closed_with_1009() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = bomb.compress(bytes(8 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    assert len(payload) < 20_000  # 8 MiB of zeros, a few KiB on the wire
    frame = encode_frame(0x2, payload[:-4], masked=True, rsv=0x40)
    request = UPGRADE.replace(
        b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    )
    limits = Limits(max_message_size=1 << 20, handshake_timeout=1.0)
    async with running(specs=DEFLATE, limits=limits) as (_, port):
        with anyio.fail_after(WAIT):
            stream = await anyio.connect_tcp("127.0.0.1", port)
            await stream.send(request)
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            assert b"permessage-deflate" in head.lower()
            await stream.send(frame)
            answer = b""
            try:
                while True:
                    answer += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
            await stream.aclose()
        close = answer[answer.index(b"\x88") :]
        assert int.from_bytes(close[2:4], "big") == 1009
        await served(port)


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        ("permessage-deflate", "permessage-deflate"),
        (
            "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=15",
        ),
        ("permessage-deflate; server_max_window_bits=99, permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits=x", None),
        ("x-webkit-deflate-frame", None),
    ],
)
def test_negotiate_takes_the_first_usable_offer(offer: str, answer: str | None) -> None:
    found = negotiate((("Sec-WebSocket-Extensions", offer),), 1000)
    assert (None if found is None else found[1]) == answer


async def test_a_client_that_offers_nothing_gets_no_compression() -> None:
    async with (
        running({"/": echo}, specs=DEFLATE) as (_, port),
        connect(f"ws://127.0.0.1:{port}/", compression=None, proxy=None) as ws,
    ):
        assert ws.protocol.extensions == []
        await ws.send("no offer, no compression")
        assert await ws.recv() == "no offer, no compression"
