"""What one side of a connection saw and did, as transcript events.

A :class:`WireRecorder` is told about the opening handshake, every wire event the engine
reports (``core.wire``), every frame this side wrote (as bytes on the wire) and a drop of the
connection by this side. It reassembles whole messages from their pieces in both directions,
so the transcript does not depend on how messages were fragmented, applies redaction, and
returns :class:`~wscenario.core.transcript.TranscriptEvent` objects stamped with the time it
is given. It never reads a clock and does no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from wscenario.core.redaction import Redactor
from wscenario.core.transcript import Role, TranscriptEvent
from wscenario.core.wire import (
    CloseReceived,
    ConnectionLost,
    DataFrame,
    HandshakeDone,
    HandshakeFailed,
    PingReceived,
    PongReceived,
    WireEvent,
    join_pieces,
)

Headers = Iterable[tuple[str, str]]

_CONTROL = {0x9: "ping", 0xA: "pong"}


class WireRecorder:
    """Turns one connection's traffic, seen from ``local``'s side, into transcript events."""

    def __init__(self, local: Role, redactor: Redactor) -> None:
        self.local: Role = local
        self.peer: Role = "server" if local == "client" else "client"
        self.redactor = redactor
        self.ended = False
        """A disconnect was recorded: later losses are the same end seen again."""
        self._received: list[str | bytes] = []
        self._received_kind = "text"
        self._sent: list[bytes] = []
        self._sent_opcode: int | None = None
        self._unparsed = b""

    # ------------------------------------------------------------------------- handshake

    def request(self, t: float, target: str, headers: Headers) -> TranscriptEvent:
        """The client's opening request."""
        redact = self.redactor
        fields = {"target": redact.target(target), "headers": redact.headers(headers)}
        return TranscriptEvent(t, "client", "request", fields)

    def response(
        self, t: float, status: int, reason: str, headers: Headers, body: bytes = b""
    ) -> TranscriptEvent:
        """The server's answer; ``body`` is kept for a refusal only."""
        fields: dict[str, object] = {
            "status": status,
            "reason": reason,
            "headers": self.redactor.headers(headers),
        }
        if status != 101:
            fields["body"] = body
        return TranscriptEvent(t, "server", "response", fields)

    def handshake(
        self, t: float, done: HandshakeDone, request_headers: Headers, response_headers: Headers
    ) -> list[TranscriptEvent]:
        """A successful opening handshake: the request and the 101."""
        return [
            self.request(t, done.path, request_headers),
            self.response(t, done.status, done.reason, response_headers),
        ]

    def handshake_failed(self, t: float, failed: HandshakeFailed) -> list[TranscriptEvent]:
        """A failed opening handshake: the refusal when one came, and what went wrong."""
        events = []
        if failed.status:
            events.append(self.response(t, failed.status, "", failed.headers, failed.body))
        events.append(TranscriptEvent(t, self.local, "error", {"message": failed.message}))
        self.ended = True
        return events

    # --------------------------------------------------------------------------- traffic

    def received(self, t: float, event: WireEvent) -> list[TranscriptEvent]:
        """What the engine reported: a message piece, control frame or the connection's loss."""
        peer = self.peer
        if isinstance(event, DataFrame):
            if event.first:
                self._received = []
                self._received_kind = event.kind
            self._received.append(event.data)
            if not event.final:
                return []
            data = join_pieces(self._received, self._received_kind)
            self._received = []
            if isinstance(data, str):
                return [self._text(t, peer, data)]
            return [TranscriptEvent(t, peer, "binary", {"data": data})]
        if isinstance(event, PingReceived | PongReceived):
            kind = "ping" if isinstance(event, PingReceived) else "pong"
            return [TranscriptEvent(t, peer, kind, {"data": event.data})]
        if isinstance(event, CloseReceived):
            return [TranscriptEvent(t, peer, "close", {"code": event.code, "reason": event.reason})]
        if isinstance(event, ConnectionLost) and not self.ended:
            self.ended = True
            fields = {"kind": event.kind, "message": event.message}
            return [TranscriptEvent(t, peer, "disconnect", fields)]
        return []

    def sent(self, t: float, data: bytes) -> list[TranscriptEvent]:
        """Whole frames this side wrote (masked or not), as the messages they complete."""
        events: list[TranscriptEvent] = []
        buffer = self._unparsed + data
        while (frame := _split_frame(buffer)) is not None:
            header, payload, size = frame
            buffer = buffer[size:]
            events.extend(self._sent_frame(t, header, payload))
        self._unparsed = buffer
        return events

    def dropped(self, t: float, *, rst: bool) -> list[TranscriptEvent]:
        """This side cut TCP without a closing handshake."""
        if self.ended:
            return []
        self.ended = True
        kind = "reset" if rst else "eof"
        fields = {"kind": kind, "message": f"connection dropped by the {self.local}"}
        return [TranscriptEvent(t, self.local, "disconnect", fields)]

    # ---------------------------------------------------------------------------- helpers

    def _text(self, t: float, role: Role, text: str) -> TranscriptEvent:
        return TranscriptEvent(t, role, "text", {"data": self.redactor.text(text)})

    def _sent_frame(self, t: float, first: int, payload: bytes) -> list[TranscriptEvent]:
        local = self.local
        fin = bool(first & 0x80)
        opcode = first & 0x0F
        if opcode in _CONTROL:
            return [TranscriptEvent(t, local, _CONTROL[opcode], {"data": payload})]
        if opcode == 0x8:
            return [self._sent_close(t, payload)]
        if opcode in (0x1, 0x2) and self._sent_opcode is None:
            self._sent_opcode = opcode
            self._sent = []
        elif opcode != 0x0 or self._sent_opcode is None:
            return [self._odd_frame(t, f"a frame with opcode {opcode:#x} out of place")]
        self._sent.append(payload)
        if not fin:
            return []
        data = b"".join(self._sent)
        opcode, self._sent_opcode, self._sent = self._sent_opcode, None, []
        if opcode == 0x2:
            return [TranscriptEvent(t, local, "binary", {"data": data})]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return [self._odd_frame(t, f"a text message that is not UTF-8 ({len(data)} bytes)")]
        return [self._text(t, local, text)]

    def _sent_close(self, t: float, payload: bytes) -> TranscriptEvent:
        if not payload:
            return TranscriptEvent(t, self.local, "close", {"code": None, "reason": ""})
        if len(payload) == 1:
            return self._odd_frame(t, "a close frame with a one-byte payload")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            return self._odd_frame(t, "a close frame whose reason is not UTF-8")
        code = int.from_bytes(payload[:2], "big")
        return TranscriptEvent(t, self.local, "close", {"code": code, "reason": reason})

    def _odd_frame(self, t: float, what: str) -> TranscriptEvent:
        message = f"the {self.local} sent {what}; it is not in the transcript"
        return TranscriptEvent(t, self.local, "error", {"message": message})


def _split_frame(buffer: bytes) -> tuple[int, bytes, int] | None:
    """The first whole frame in ``buffer``: (first header byte, unmasked payload, its size)."""
    if len(buffer) < 2:
        return None
    length = buffer[1] & 0x7F
    offset = 2
    if length == 126:
        if len(buffer) < 4:
            return None
        (length,) = struct.unpack_from("!H", buffer, 2)
        offset = 4
    elif length == 127:
        if len(buffer) < 10:
            return None
        (length,) = struct.unpack_from("!Q", buffer, 2)
        offset = 10
    mask_size = 4 if buffer[1] & 0x80 else 0
    end = offset + mask_size + length
    if len(buffer) < end:
        return None
    payload = buffer[offset + mask_size : end]
    if mask_size:
        payload = _unmask(payload, buffer[offset : offset + mask_size])
    return buffer[0], payload, end


def _unmask(payload: bytes, key: bytes) -> bytes:
    size = len(payload)
    repeated = (key * ((size >> 2) + 1))[:size]
    mixed = int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")
    return mixed.to_bytes(size, "little")
