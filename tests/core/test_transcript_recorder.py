"""The wire recorder: whole messages in both directions, redacted, whatever the framing."""

from __future__ import annotations

import os
import struct

import pytest

from wscenario.core.redaction import Redactor
from wscenario.core.redaction_policy import RedactionPolicy, RedactionRule
from wscenario.core.transcript import TranscriptEvent
from wscenario.core.transcript_recorder import WireRecorder
from wscenario.core.wire import (
    CloseReceived,
    ConnectionLost,
    DataFrame,
    HandshakeDone,
    HandshakeFailed,
    PingReceived,
    PongReceived,
)

REDACTOR = Redactor(b"key", RedactionPolicy(rules=(RedactionRule.for_pointer("/token"),)))


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = False) -> bytes:
    """A frame built independently of the engine (RFC 6455 §5.2)."""
    first = (0x80 if fin else 0) | opcode
    bit = 0x80 if masked else 0
    size = len(payload)
    if size < 126:
        head = bytes((first, bit | size))
    elif size < 0x10000:
        head = struct.pack("!BBH", first, bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, bit | 127, size)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def kinds(events: list[TranscriptEvent]) -> list[tuple[str, str, object]]:
    return [(e.from_, e.type, dict(e.fields)) for e in events]


def test_handshake_is_redacted() -> None:
    recorder = WireRecorder("client", REDACTOR)
    done = HandshakeDone(101, "Switching Protocols", (), None, "/chat?token=abc")
    request, response = recorder.handshake(
        0.5, done, [("Authorization", "Bearer x"), ("Host", "h")], [("Upgrade", "websocket")]
    )
    assert request.t == 0.5
    assert request.from_ == "client"
    assert request.fields["target"] == REDACTOR.target("/chat?token=abc")
    assert "abc" not in str(request.fields["target"])
    assert request.fields["headers"] == (
        ("Authorization", REDACTOR.placeholder("authorization", "Bearer x")),
        ("Host", "h"),
    )
    assert (response.from_, response.type) == ("server", "response")
    assert response.fields == {
        "status": 101,
        "reason": "Switching Protocols",
        "headers": (("Upgrade", "websocket"),),
    }


def test_failed_handshake_records_the_refusal() -> None:
    recorder = WireRecorder("client", REDACTOR)
    failed = HandshakeFailed("status", "server answered 403", 403, (("X", "y"),), b"no")
    response, error = recorder.handshake_failed(1.0, failed)
    assert response.fields == {"status": 403, "reason": "", "headers": (("X", "y"),), "body": b"no"}
    assert kinds([error]) == [("client", "error", {"message": "server answered 403"})]
    assert recorder.ended
    refused = WireRecorder("client", REDACTOR).handshake_failed(1.0, HandshakeFailed("dns", "?"))
    assert [e.type for e in refused] == ["error"]


@pytest.mark.parametrize("local", ["client", "server"])
def test_received_pieces_become_whole_messages(local: str) -> None:
    recorder = WireRecorder(local, REDACTOR)  # type: ignore[arg-type]
    peer = "server" if local == "client" else "client"
    events = []
    for piece in (
        DataFrame("text", '{"tok', True, False),
        DataFrame("text", 'en":"s"}', False, True),
        DataFrame("binary", b"\x00", True, False),
        DataFrame("binary", b"\x01", False, False, False),
        DataFrame("binary", b"\x02", False, True),
        PingReceived(b"p"),
        PongReceived(b""),
        CloseReceived(None),
        CloseReceived(1000, "bye"),
    ):
        events += recorder.received(2.0, piece)
    assert kinds(events) == [
        (peer, "text", {"data": REDACTOR.text('{"token":"s"}')}),
        (peer, "binary", {"data": b"\x00\x01\x02"}),
        (peer, "ping", {"data": b"p"}),
        (peer, "pong", {"data": b""}),
        (peer, "close", {"code": None, "reason": ""}),
        (peer, "close", {"code": 1000, "reason": "bye"}),
    ]


def test_the_loss_is_recorded_once() -> None:
    recorder = WireRecorder("client", REDACTOR)
    lost = ConnectionLost("protocol", "bad frame", 1002)
    assert kinds(recorder.received(1.0, lost)) == [
        ("server", "disconnect", {"kind": "protocol", "message": "bad frame"})
    ]
    assert recorder.received(1.1, lost) == []
    assert recorder.dropped(1.2, rst=True) == []
    assert recorder.received(1.3, HandshakeDone(101, "", ())) == []


@pytest.mark.parametrize("rst", [True, False])
def test_dropping_is_recorded_for_this_side(rst: bool) -> None:
    recorder = WireRecorder("server", REDACTOR)
    assert kinds(recorder.dropped(1.0, rst=rst)) == [
        (
            "server",
            "disconnect",
            {"kind": "reset" if rst else "eof", "message": "connection dropped by the server"},
        )
    ]
    assert recorder.received(1.1, ConnectionLost("eof")) == []


@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("size", [0, 5, 125, 126, 70_000])
def test_sent_frames_become_whole_messages(masked: bool, size: int) -> None:
    recorder = WireRecorder("client", REDACTOR)
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    text = "é" * (size // 2)
    encoded = text.encode()
    wire = [
        frame(0x2, data, masked=masked),
        frame(0x1, encoded[:1], fin=False, masked=masked),
        frame(0x9, b"between", masked=masked),
        frame(0x0, encoded[1:], fin=False, masked=masked),
        frame(0x0, b"", masked=masked),
        frame(0xA, b"", masked=masked),
        frame(0x8, struct.pack("!H", 4000) + "ü".encode(), masked=masked),
        frame(0x8, b"", masked=masked),
    ]
    events = []
    for chunk in wire:
        events += recorder.sent(3.0, chunk)
    assert kinds(events) == [
        ("client", "binary", {"data": data}),
        ("client", "ping", {"data": b"between"}),
        ("client", "text", {"data": text}),
        ("client", "pong", {"data": b""}),
        ("client", "close", {"code": 4000, "reason": "ü"}),
        ("client", "close", {"code": None, "reason": ""}),
    ]


def test_frames_split_across_writes_are_joined() -> None:
    recorder = WireRecorder("server", REDACTOR)
    wire = frame(0x1, b"x" * 300) + frame(0x2, b"y" * 70_000, masked=True)
    events = []
    position = 0
    for cut in (1, 3, 200, 305, 309, len(wire)):
        events += recorder.sent(1.0, wire[position:cut])
        position = cut
    assert [(e.type, len(e.fields["data"])) for e in events] == [("text", 300), ("binary", 70_000)]


@pytest.mark.parametrize(
    ("wire", "what"),
    [
        (frame(0x3, b""), "a frame with opcode 0x3 out of place"),
        (frame(0x0, b"x"), "a frame with opcode 0x0 out of place"),
        (frame(0x1, b"a", fin=False) + frame(0x2, b"b"), "a frame with opcode 0x2 out of place"),
        (frame(0x1, b"\xff"), "a text message that is not UTF-8 (1 bytes)"),
        (frame(0x8, b"\x03"), "a close frame with a one-byte payload"),
        (frame(0x8, b"\x03\xe8\xff"), "a close frame whose reason is not UTF-8"),
    ],
)
def test_odd_raw_frames_are_noted(wire: bytes, what: str) -> None:
    recorder = WireRecorder("client", REDACTOR)
    events = recorder.sent(1.0, wire)
    assert kinds(events)[-1] == (
        "client",
        "error",
        {"message": f"the client sent {what}; it is not in the transcript"},
    )
