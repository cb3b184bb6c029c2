"""The most common frames, read without wsproto: whole text or binary messages in one frame.

wsproto's frame parser is pure Python and costs 10-20 µs per frame, whatever its size, and a
large frame reaches it in pieces that it copies several times over. Most frames of a busy
session are the simplest kind, a whole message in one final frame. ``read_simple_frames``
takes such frames off the front of a buffer and stops at the first frame that is anything
else: a control frame, a fragment, RSV bits, a length not in its shortest form or over the
size limit, a mask bit the role forbids, or text that is not UTF-8. That frame and everything
after it is left to wsproto, which reports any error exactly as before; so the fast path
never decides what is a protocol error.

A simple frame that is not complete yet comes back as a ``FrameInParts``: its payload is taken
read by read, and text is checked as UTF-8 as it comes, so a bad byte is caught as soon as it
arrives, as wsproto would catch it. Should that happen, ``received()`` gives back the frame's
bytes as they came, for wsproto to read and report.
"""

from __future__ import annotations

import codecs
from typing import NamedTuple

from wscenario.engine.frames import mask_payload

_FIN = 0x80
_TEXT = 0x1
_BINARY = 0x2
_MASK_BIT = 0x80
_LENGTH_16 = 126
_LENGTH_64 = 127
_SHORT_LENGTH = 126
"""Lengths below this fit the first length byte; a 16-bit length must not be one of them."""
_LONG_LENGTH = 0x10000
"""Lengths from here on need the 64-bit form, and only they may use it."""


class FrameInParts:
    """A simple frame whose payload spans several reads, collected as it comes.

    ``head`` is the frame's header as received; ``key`` the masking key (empty when the frame
    is not masked). Give it each read with ``take``; once nothing is ``missing``, ``payload()``
    is the frame's text or bytes. ``failed`` is set when text turned out not to be UTF-8.
    """

    def __init__(self, head: bytes, *, text: bool, length: int, key: bytes) -> None:
        self.missing = length
        self.failed = False
        self._head = head
        self._key = key
        self._length = length
        self._parts: list[bytes | bytearray] = []  # a binary payload so far, unmasked
        self._text: list[str] = []  # a text payload so far, decoded as it came
        self._decoder = codecs.getincrementaldecoder("utf-8")() if text else None
        self._bad = b""  # the bytes a text payload failed at: those held back, and the part

    def take(self, data: bytes) -> bytes:
        """Take the frame's next bytes from ``data``; what comes after the frame is returned."""
        rest = b""
        if len(data) > self.missing:
            data, rest = data[: self.missing], data[self.missing :]
        phase = (self._length - self.missing) % 4  # where the key stands at this part
        self.missing -= len(data)
        part: bytes | bytearray = data
        if self._key:  # unmasked without a second copy: decoder and join take a bytearray
            part = mask_payload(data, self._key[phase:] + self._key[:phase])
        decoder = self._decoder
        if decoder is None:
            self._parts.append(part)
            return rest
        held = decoder.getstate()[0]  # the start of a character the last part cut in two
        try:
            self._text.append(decoder.decode(part, final=self.missing == 0))
        except UnicodeDecodeError:
            self.failed = True
            self._bad = held + part
        return rest

    def payload(self) -> str | bytes:
        """The whole payload: ``str`` for a text frame, ``bytes`` for a binary one."""
        if self._decoder is not None:
            return "".join(self._text)
        return bytes(self._parts[0]) if len(self._parts) == 1 else b"".join(self._parts)

    def received(self) -> bytes:
        """The frame's bytes so far, exactly as they came (masked again, if they were)."""
        if self._decoder is None:
            payload = b"".join(self._parts)
        else:
            # UTF-8 encodes back to the very bytes it was decoded from
            tail = self._bad if self.failed else self._decoder.getstate()[0]
            payload = "".join(self._text).encode("utf-8") + tail
        if self._key:
            payload = bytes(mask_payload(payload, self._key))
        return self._head + payload


class SimpleFrames(NamedTuple):
    """What ``read_simple_frames`` took from the front of a buffer, and where it stopped."""

    payloads: list[str | bytes]
    """The leading simple frames' payloads: ``str`` for text, ``bytes`` for binary."""
    used: int
    """How many bytes they took."""
    unfinished: FrameInParts | None = None
    """The simple frame after them that the buffer holds only the start of (it has taken the
    rest of the buffer)."""
    head_cut: bool = False
    """The rest of the buffer is the start of a simple frame's head: the next read completes
    it. A connection keeps it rather than hand it to wsproto, which, once it holds part of a
    frame, goes on reading every frame after it too."""


def read_simple_frames(data: bytes, *, masked: bool, max_size: int) -> SimpleFrames:
    """The leading simple frames of ``data``, and the simple frame that follows them, if
    ``data`` ends inside it.

    ``masked``: frames must be masked (a server reads a client's frames) or must not be (a
    client reads a server's). A frame longer than ``max_size`` bytes is left to wsproto (and
    to the connection's limits).
    """
    payloads: list[str | bytes] = []
    offset = 0
    end = len(data)
    while offset < end:
        first = data[offset]
        opcode = first & 0x0F
        if first & 0xF0 != _FIN or (opcode != _TEXT and opcode != _BINARY):
            break  # a fragment, RSV bits, or a control or reserved opcode
        if end - offset < 2:
            return SimpleFrames(payloads, offset, head_cut=True)
        second = data[offset + 1]
        if bool(second & _MASK_BIT) != masked:
            break
        length = second & 0x7F
        head = offset + 2
        if length == _LENGTH_16:
            if end - head < 2:
                return SimpleFrames(payloads, offset, head_cut=True)
            length = int.from_bytes(data[head : head + 2], "big")
            if length < _SHORT_LENGTH:
                break  # not the shortest form: wsproto calls that a protocol error
            head += 2
        elif length == _LENGTH_64:
            if end - head < 8:
                return SimpleFrames(payloads, offset, head_cut=True)
            length = int.from_bytes(data[head : head + 8], "big")
            if length < _LONG_LENGTH:
                break  # not the shortest form either
            head += 8
        if length > max_size:
            break
        key = b""
        if masked:
            if end - head < 4:
                return SimpleFrames(payloads, offset, head_cut=True)
            key = data[head : head + 4]
            head += 4
        stop = head + length
        if stop > end:  # not complete yet: the rest of it comes in later reads
            unfinished = FrameInParts(
                data[offset:head], text=opcode == _TEXT, length=length, key=key
            )
            unfinished.take(data[head:])
            return SimpleFrames(payloads, offset, unfinished)
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
    return SimpleFrames(payloads, offset)
