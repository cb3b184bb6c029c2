"""The most common frames, read without wsproto: whole text or binary messages in one frame.

wsproto's frame parser is pure Python and costs 10-20 µs per frame, whatever its size; most
frames of a busy session are the simplest kind, a whole message in one final frame.
``read_simple_frames`` takes such frames off the front of a buffer and stops at the first
frame that is anything else: a control frame, a fragment, RSV bits, a frame not yet complete,
a length not in its shortest form or over the size limit, a mask bit the role forbids, or text
that is not UTF-8. That frame and everything after it is left to wsproto, which reports any
error exactly as before; so the fast path never decides what is a protocol error.
"""

from __future__ import annotations

from wscenario.engine.frames import mask_payload

_FIN = 0x80
_TEXT = 0x1
_BINARY = 0x2
_MASK_BIT = 0x80
_LENGTH_16 = 126
_SHORT_LENGTH = 126
"""Lengths below this fit the first length byte; a 16-bit length must not be one of them."""


def read_simple_frames(
    data: bytes, *, masked: bool, max_size: int
) -> tuple[list[str | bytes], int]:
    """The payloads of the leading simple frames of ``data``, and how many bytes they took.

    ``masked``: frames must be masked (a server reads a client's frames) or must not be (a
    client reads a server's). A frame longer than ``max_size`` bytes is left to wsproto (and
    to the connection's limits). Text payloads come back as ``str``, binary as ``bytes``.
    """
    payloads: list[str | bytes] = []
    offset = 0
    end = len(data)
    while end - offset >= 2:
        first = data[offset]
        second = data[offset + 1]
        opcode = first & 0x0F
        if first & 0xF0 != _FIN or (opcode != _TEXT and opcode != _BINARY):
            break  # a fragment, RSV bits, or a control or reserved opcode
        if bool(second & _MASK_BIT) != masked:
            break
        length = second & 0x7F
        head = offset + 2
        if length == _LENGTH_16:
            if end - head < 2:
                break
            length = int.from_bytes(data[head : head + 2], "big")
            if length < _SHORT_LENGTH:
                break  # not the shortest form: wsproto calls that a protocol error
            head += 2
        elif length > _LENGTH_16:
            break  # 64-bit lengths: large frames, where wsproto's cost does not matter
        if length > max_size:
            break
        key = b""
        if masked:
            key = data[head : head + 4]
            head += 4
        stop = head + length
        if stop > end:
            break  # not complete yet
        payload = data[head:stop]
        if masked:
            payload = bytes(mask_payload(payload, key))
        if opcode == _TEXT:
            try:
                payloads.append(payload.decode("utf-8"))
            except UnicodeDecodeError:
                break  # wsproto reports it (1007)
        else:
            payloads.append(payload)
        offset = stop
    return payloads, offset
