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

from tests.engine.test_server import (
    UPGRADE,
    WAIT,
    echo,
    next_event,
    read_to_the_end,
    running,
    served,
)
from tests.engine.ws_peers import read_head
from wscenario.core.model import Limits, ServerSpec
from wscenario.core.wire import SendMessage, SendPing
from wscenario.engine.deflate import CappedDeflate, negotiate
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
        ("permessage-deflate; foo=bar", None),
        ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", None),
        ("permessage-deflate; server_no_context_takeover=1", None),
        ("permessage-deflate; server_max_window_bits", None),
        ("permessage-deflate; server_max_window_bitsfoo=10", None),
        ("permessage-deflate; server_max_window_bits=8", None),
        ("permessage-deflate; Server_No_Context_Takeover", None),
        (
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
        ),
        ('permessage-deflate; server_max_window_bits="10"', None),
        ("permessage-deflate; client_max_window_bits=" + "9" * 5000, None),
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


# ----------------------------------------------------------------- a raw client, byte by byte

QUICK_CLOSE = Limits(close_timeout=0.2, handshake_timeout=1.0)
"""The raw client never answers a close: the server cuts it soon."""

OFFER = UPGRADE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")


def deflated(data: bytes, *, final_block: bool = False) -> bytes:
    """``data`` compressed as permessage-deflate sends it (no context, sync flush, tail cut)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    if final_block:
        return packer.compress(data) + packer.flush(zlib.Z_FINISH)
    return (packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH))[:-4]


async def raw_session(port: int, *frames: bytes) -> list[tuple[int, bytes]]:
    """Offer deflate, write ``frames``, and read every frame until the server ends; each as
    (first byte, payload)."""
    with anyio.fail_after(WAIT):
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(OFFER)
        head, _, data = (await read_head(stream)).partition(b"\r\n\r\n")
        assert b"permessage-deflate" in head.lower()
        for frame in frames:
            await stream.send(frame)
        data = await read_to_the_end(stream, data)
        await stream.aclose()
    read: list[tuple[int, bytes]] = []
    while len(data) >= 2:
        length, at = data[1] & 0x7F, 2
        if length == 126:
            length, at = int.from_bytes(data[2:4], "big"), 4
        read.append((data[0], data[at : at + length]))
        data = data[at + length :]
    return read


async def test_what_the_server_sends_is_compressed_each_fragment_with_its_part() -> None:
    message = "compress me " * 200

    async def fragments(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        await driver.send(message, fragments=4)
        await driver.close(1000, "")

    async with running({"/": fragments}, specs=DEFLATE, limits=QUICK_CLOSE) as (_, port):
        frames = await raw_session(port)
    data = [(first, payload) for first, payload in frames if first & 0x0F in (0x0, 0x1)]
    assert [first for first, _ in data] == [0x41, 0x00, 0x00, 0x80]  # RSV1 on the first only
    assert all(payload for _, payload in data[:-1]), "a fragment carried nothing"
    unpacker = zlib.decompressobj(-15)
    whole = b"".join(unpacker.decompress(payload) for _, payload in data)
    whole += unpacker.decompress(b"\x00\x00\xff\xff")
    assert whole.decode() == message
    assert sum(len(payload) for _, payload in data) < len(message) // 4


async def test_a_ping_between_compressed_fragments_leaves_the_message_whole() -> None:
    packed = deflated(b"hello world, hello world")
    first = encode_frame(0x1, packed[:5], masked=True, fin=False, rsv=0x40)
    ping = encode_frame(0x9, b"", masked=True)
    rest = encode_frame(0x0, packed[5:], masked=True)
    got: list[object] = []

    async def take(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        while (event := await driver.next_event(WAIT)) is not None and event.name != "close":
            got.append(event.value)
            if event.name == "messageReceive":
                await driver.close(1000, "")

    async with running({"/": take}, specs=DEFLATE, limits=QUICK_CLOSE) as (_, port):
        await raw_session(port, first, ping, rest)
    assert got == [b"", "hello world, hello world"]  # the ping, then the message


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        pytest.param(deflated(bytes(8 << 20)), 1009, id="8 MiB of zeros"),
        pytest.param(deflated(b"done", final_block=True) + b"x" * 70_000, 1007, id="after the end"),
    ],
)
async def test_a_hostile_compressed_message_costs_its_connection_and_little_memory(
    payload: bytes, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    inflated: list[int] = []
    inflate = CappedDeflate.frame_inbound_payload_data

    def counting(self: CappedDeflate, proto: Any, data: bytes) -> Any:
        result = inflate(self, proto, data)
        inflated.append(self._inflated)  # what the message has inflated to so far
        return result

    monkeypatch.setattr(CappedDeflate, "frame_inbound_payload_data", counting)
    limit = 64 * 1024
    route = {"/": Limits(max_message_size=limit, handshake_timeout=1.0)}  # the scenario's own
    listener = Limits(max_message_size=16 << 20, handshake_timeout=1.0)
    frame = encode_frame(0x2, payload, masked=True, rsv=0x40)
    async with running(specs=DEFLATE, limits=listener, route_limits=route) as (_, port):
        frames = await raw_session(port, frame)
        await served(port)
    closes = [body for first, body in frames if first & 0x0F == 0x8]
    assert [int.from_bytes(body[:2], "big") for body in closes] == [code]
    assert inflated  # the payload was inflated, and ...
    assert max(inflated) <= limit + 1  # ... never past the limit (and one byte to tell)


def frames_in(data: bytes) -> list[tuple[int, bytes]]:
    """Every whole unmasked frame in ``data``, as (first byte, payload)."""
    found: list[tuple[int, bytes]] = []
    at = 0
    while len(data) - at >= 2:
        length, start = data[at + 1] & 0x7F, at + 2
        if length == 126:
            length, start = int.from_bytes(data[at + 2 : at + 4], "big"), at + 4
        elif length == 127:
            length, start = int.from_bytes(data[at + 2 : at + 10], "big"), at + 10
        found.append((data[at], data[start : start + length]))
        at = start + length
    return found


async def test_a_compressed_send_cancelled_before_its_turn_leaves_later_ones_readable() -> None:
    """The compressor keeps its window across messages: a message it compressed but that was
    never written would leave the client unable to read the ones after it."""
    big = os.urandom(8 << 20)  # more than loopback buffers hold while the client waits
    text = "the same words again and again " * 20
    cancelled: list[bool] = []

    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        connection = driver.connection
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(connection.send, SendMessage(big))
            await anyio.sleep(0.1)  # that write is under way: the next one waits its turn
            with anyio.move_on_after(0.1) as waiting:
                await connection.send(SendMessage(text))
            cancelled.append(waiting.cancelled_caught)
        await connection.send(SendMessage(text))
        await driver.close(1000, "")

    async with running({"/": session}, specs=DEFLATE, limits=QUICK_CLOSE) as (_, port):
        with anyio.fail_after(WAIT):
            stream = await anyio.connect_tcp("127.0.0.1", port)
            await stream.send(OFFER)
            head, _, data = (await read_head(stream)).partition(b"\r\n\r\n")
            assert b"permessage-deflate" in head.lower()
            await anyio.sleep(0.4)  # not reading: the large message backs up
            data = await read_to_the_end(stream, data)
            await stream.aclose()
    assert cancelled == [True]
    unpacker = zlib.decompressobj(-15)  # one window for every message, as the server keeps
    messages = [
        unpacker.decompress(payload + b"\x00\x00\xff\xff")
        for first, payload in frames_in(data)
        if first & 0x0F in (0x1, 0x2)
    ]
    assert messages == [big, text.encode()]


async def test_frames_passed_on_one_by_one_are_compressed_and_make_one_message() -> None:
    async def session(driver: ServerDriver) -> None:
        await next_event(driver, "connect")
        connection = driver.connection
        async with anyio.create_task_group() as tasks:
            await connection.send_frame("one ", first=True, final=False)
            tasks.start_soon(connection.send, SendMessage("after"))  # waits for the end
            await anyio.sleep(0.05)
            await connection.send(SendPing(b"between"))
            await connection.send_frame("two", first=False, final=True)
        await next_event(driver, "close")

    async with running({"/": session}, specs=DEFLATE) as (_, port), compressing(port) as ws:
        with anyio.fail_after(WAIT):
            assert await ws.recv() == "one two"
            assert await ws.recv() == "after"
