"""HTTP heads of the opening handshake, read under the limits both roles share.

h11 accepts any head that arrives in one read, however large, and counts no headers, so the
head is cut out and checked here before h11 parses it.
"""

from __future__ import annotations

import base64
import hashlib
import re

import anyio
import anyio.abc

from wscenario.core.model import Limits
from wscenario.engine.connection import READ_SIZE

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HEAD_END = re.compile(rb"\r?\n\r?\n")


class HeadTooLarge(Exception):
    """The peer's HTTP head is over the byte or header-count limit."""


async def read_head(stream: anyio.abc.ByteStream, limits: Limits) -> tuple[bytes, bytes]:
    """Read one HTTP head; returns it and the bytes after it.

    Enforced here because h11 accepts any head that arrives in one read.
    """
    buffer = bytearray()
    searched = 0
    while True:
        found = _HEAD_END.search(buffer, max(0, searched - 3))
        if found is not None:
            break
        if len(buffer) > limits.max_head_size:
            raise HeadTooLarge(f"head over {limits.max_head_size} bytes")
        searched = len(buffer)
        buffer += await stream.receive(READ_SIZE)
    end = found.end()
    if end > limits.max_head_size:
        raise HeadTooLarge(f"head over {limits.max_head_size} bytes")
    head = bytes(buffer[:end])
    if head.count(b"\n") - 2 > limits.max_headers:
        raise HeadTooLarge(f"more than {limits.max_headers} headers")
    return head, bytes(buffer[end:])


def header_items(items: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    """h11's raw header items as text (Latin-1, which never fails), names as received."""
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in items)


def header_values(headers: tuple[tuple[str, str], ...], name: str) -> list[str]:
    """Every value of the header ``name`` (given in lower case)."""
    return [value for key, value in headers if key.lower() == name]


def header_tokens(headers: tuple[tuple[str, str], ...], name: str) -> list[str]:
    """The comma-separated tokens of every ``name`` header, stripped."""
    return [
        token.strip()
        for value in header_values(headers, name)
        for token in value.split(",")
        if token.strip()
    ]


def accept_token(key: bytes) -> str:
    """The ``Sec-WebSocket-Accept`` value for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode("ascii")
