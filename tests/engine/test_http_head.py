"""Reading an HTTP head under the byte and header-count limits, from scripted chunks."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest
from anyio.streams.stapled import StapledByteStream

from wscenario.core.model import Limits
from wscenario.engine.http_head import (
    HeadTooLarge,
    accept_token,
    header_items,
    header_tokens,
    header_values,
    read_head,
)

pytestmark = pytest.mark.anyio


class Chunks(anyio.abc.ByteReceiveStream):
    """Hands out the given chunks one read at a time, then ends."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self.chunks:
            raise anyio.EndOfStream
        return self.chunks.pop(0)

    async def aclose(self) -> None:
        self.chunks = []


class NoSend(anyio.abc.ByteSendStream):
    """Reading a head never writes."""

    async def send(self, item: bytes) -> None:
        raise AssertionError("nothing is sent while reading a head")

    async def send_eof(self) -> None:
        raise AssertionError("nothing is sent while reading a head")

    async def aclose(self) -> None:
        pass


async def read(*chunks: bytes, limits: Limits | None = None) -> tuple[bytes, bytes]:
    return await read_head(StapledByteStream(NoSend(), Chunks(*chunks)), limits or Limits())


@pytest.mark.parametrize(
    ("chunks", "rest"),
    [
        ((b"HTTP/1.1 101 OK\r\nA: 1\r\n\r\nrest",), b"rest"),
        ((b"HTTP/1.1 101 OK\r\nA: 1\r", b"\n\r", b"\nrest"), b"rest"),
        ((b"HTTP/1.1 101 OK\r\nA: 1\r\n\r\n", b"later"), b""),
    ],
)
async def test_the_head_ends_at_the_blank_line_however_it_is_cut(
    chunks: tuple[bytes, ...], rest: bytes
) -> None:
    assert await read(*chunks) == (b"HTTP/1.1 101 OK\r\nA: 1\r\n\r\n", rest)


async def test_bare_line_feeds_end_a_head_too() -> None:
    assert await read(b"HTTP/1.1 101 OK\nA: 1\n\nframes") == (
        b"HTTP/1.1 101 OK\nA: 1\n\n",
        b"frames",
    )


async def test_limits_on_bytes_and_headers() -> None:
    limits = Limits(max_head_size=64, max_headers=2)
    with pytest.raises(HeadTooLarge, match="head over 64 bytes"):
        await read(b"GET / HTTP/1.1\r\nX: " + b"a" * 100 + b"\r\n\r\n", limits=limits)
    with pytest.raises(HeadTooLarge, match="head over 64 bytes"):
        await read(b"GET / HTTP/1.1\r\n", b"X: " + b"a" * 100, b"\r\n\r\n", limits=limits)
    with pytest.raises(HeadTooLarge, match="more than 2 headers"):
        await read(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits=limits)
    assert (await read(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", limits=limits))[1] == b""


async def test_an_end_of_stream_before_the_head_ends_is_raised() -> None:
    with pytest.raises(anyio.EndOfStream):
        await read(b"HTTP/1.1 101 OK\r\n")


def test_header_helpers() -> None:
    headers = header_items([(b"Connection", b"keep-alive, Upgrade"), (b"X-Bin", b"\xff")])
    assert headers == (("Connection", "keep-alive, Upgrade"), ("X-Bin", "ÿ"))
    assert header_values(headers, "connection") == ["keep-alive, Upgrade"]
    assert header_tokens(headers, "connection") == ["keep-alive", "Upgrade"]
    assert header_tokens(headers, "upgrade") == []
    # the example of RFC 6455 §1.3
    assert accept_token(b"dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
