"""permessage-deflate (RFC 7692) for a fake server that asks for it, with decompression capped.

``negotiate`` answers a client's offers; the ``CappedDeflate`` it returns is wsproto's extension
with one change: a message stops inflating past ``max_size`` bytes and fails with 1009, so a
small compressed frame cannot grow into an unbounded one (a "zip bomb"). Outgoing messages are
compressed with ``compress``.
"""

from __future__ import annotations

import zlib

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

from wscenario.engine.http_head import header_tokens

RSV1 = 0x40
"""The first byte's bit that marks a compressed message."""


class CappedDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate, inflating at most ``max_size`` bytes per message."""

    def __init__(self, max_size: int) -> None:
        super().__init__()
        self.max_size = max_size
        self._inflated = 0

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        """A new message starts counting its inflated bytes from 0."""
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            self._inflated = 0
        return super().frame_inbound_header(proto, opcode, rsv, payload_length)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        """Inflate at most what is left of ``max_size`` (and one byte to tell it is over).

        Bytes after the end of a deflate stream (a final block) are refused: zlib would keep
        them unread, uncounted, without bound.
        """
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        assert self._decompressor is not None
        room = self.max_size - self._inflated
        try:
            inflated = self._decompressor.decompress(bytes(data), room + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        if self._decompressor.eof and self._decompressor.unused_data:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(inflated)
        if self._inflated > self.max_size or self._decompressor.unconsumed_tail:
            return CloseReason.MESSAGE_TOO_BIG
        return inflated

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        """The message's last inflated bytes; a control frame between its fragments (a ping)
        leaves the message's state alone, and a stream that ended starts afresh."""
        if fin and not self._inbound_is_compressible:
            return None  # a control frame: the message it interrupts goes on
        ended = self._decompressor is not None and self._decompressor.eof
        result = super().frame_inbound_complete(proto, fin)
        if fin and ended:
            self._decompressor = None
        if isinstance(result, bytes):
            self._inflated += len(result)
            if self._inflated > self.max_size:
                return CloseReason.MESSAGE_TOO_BIG
        return result

    def compress(
        self, proto: FrameProtocol, data: bytes, *, first: bool, fin: bool
    ) -> tuple[int, bytes]:
        """One outgoing frame's RSV bits and payload: the message's first frame sets RSV1."""
        opcode = Opcode.BINARY if first else Opcode.CONTINUATION
        rsv, payload = self.frame_outbound(proto, opcode, RsvBits(False, False, False), data, fin)
        if not fin:  # each fragment carries its part now, not all of it with the last one
            assert self._compressor is not None
            payload += self._compressor.flush(zlib.Z_SYNC_FLUSH)
        return (RSV1 if rsv.rsv1 else 0), payload


def negotiate(
    request_headers: tuple[tuple[str, str], ...], max_size: int
) -> tuple[CappedDeflate, str] | None:
    """The extension and the ``Sec-WebSocket-Extensions`` answer for the first acceptable
    permessage-deflate offer, or ``None`` (the client offered none this side can take)."""
    for offer in header_tokens(request_headers, "sec-websocket-extensions"):
        if offer.split(";")[0].strip().lower() != PerMessageDeflate.name or not _valid(offer):
            continue
        extension = CappedDeflate(max_size)
        parameters = extension.accept(offer)
        assert isinstance(parameters, str)  # _valid lets through only what wsproto takes
        answer = PerMessageDeflate.name + (f"; {parameters}" if parameters else "")
        return extension, answer
    return None


_FLAGS = ("server_no_context_takeover", "client_no_context_takeover")
_WINDOWS = ("server_max_window_bits", "client_max_window_bits")
_BITS = frozenset(str(bits) for bits in range(9, 16))


def _valid(offer: str) -> bool:
    """Whether the offer's parameters are ones RFC 7692 (section 7.1) allows, each once:
    the two no-context-takeover flags without a value, and window bits of 9 to 15 (zlib's
    range, written as a plain number), ``client_max_window_bits`` possibly without one."""
    seen: set[str] = set()
    for parameter in offer.split(";")[1:]:
        name, has_value, value = (part.strip() for part in parameter.partition("="))
        if name in seen or name not in (*_FLAGS, *_WINDOWS):
            return False
        seen.add(name)
        if name in _FLAGS and has_value:
            return False
        if (
            name in _WINDOWS
            and (has_value or name == "server_max_window_bits")
            and value not in _BITS
        ):
            return False
    return True
