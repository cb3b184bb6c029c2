"""Frames this side writes, parsed back by wsproto (an independent frame parser)."""

from __future__ import annotations

import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

from wscenario.engine.frames import close_code_allowed, close_payload, encode_frame, split_payload


def parsed(data: bytes, *, by_server: bool = True) -> list[tuple[Opcode, object, bool]]:
    """Frames as wsproto reads them (a server expects masked frames, a client unmasked)."""
    parser = FrameProtocol(client=not by_server, extensions=[])
    parser.receive_bytes(data)
    return [
        (frame.opcode, frame.payload, frame.message_finished) for frame in parser.received_frames()
    ]


@pytest.mark.parametrize("size", [0, 1, 3, 125, 126, 1024, 1025, 65535, 65536, 200_000])
@pytest.mark.parametrize("masked", [True, False])
def test_every_length_encoding_and_mask_round_trips(size: int, masked: bool) -> None:
    payload = bytes(index % 251 for index in range(size))
    frame = encode_frame(0x2, payload, masked=masked)
    frames = parsed(frame, by_server=masked)
    assert b"".join(data for _, data, _ in frames if isinstance(data, bytes)) == payload
    assert {opcode for opcode, _, _ in frames} == {Opcode.BINARY}
    if masked and size >= 4:
        assert payload not in frame  # the payload is not on the wire in clear


def test_fresh_mask_per_frame() -> None:
    frames = {encode_frame(0x1, b"same text", masked=True) for _ in range(20)}
    assert len(frames) == 20


def test_fragments_and_continuations() -> None:
    pieces = split_payload("héllo wörld".encode(), 4)
    data = b"".join(
        encode_frame(0x1 if index == 0 else 0x0, piece, masked=True, fin=index == len(pieces) - 1)
        for index, piece in enumerate(pieces)
    )
    frames = parsed(data)
    assert "".join(str(text) for _, text, _ in frames) == "héllo wörld"
    assert [final for _, _, final in frames] == [False, False, False, True]


def test_rsv_bits_and_reserved_opcodes_are_written_as_asked() -> None:
    assert encode_frame(0x1, b"", masked=False, rsv=0x40)[0] == 0x80 | 0x40 | 0x1
    assert encode_frame(0x3, b"", masked=False, fin=False)[0] == 0x03
    with pytest.raises(ParseFailed, match="Reserved bit set"):
        parsed(encode_frame(0x1, b"x", masked=True, rsv=0x40))
    with pytest.raises(ParseFailed, match="Invalid opcode"):
        parsed(encode_frame(0x3, b"x", masked=True))


@pytest.mark.parametrize(
    ("code", "reason", "payload"),
    [
        (None, "ignored without a code", b""),
        (1000, "", b"\x03\xe8"),
        (4000, "bye", b"\x0f\xa0bye"),
        (1005, "", b"\x03\xed"),
        (0, "", b"\x00\x00"),
        (65535, "", b"\xff\xff"),
    ],
)
def test_close_payloads_are_written_as_given(code: int | None, reason: str, payload: bytes) -> None:
    assert close_payload(code, reason) == payload


def test_a_long_close_reason_is_cut_on_a_character_boundary() -> None:
    payload = close_payload(1000, "é" * 100)  # 200 bytes of two-byte characters
    assert payload[2:].decode("utf-8") == "é" * 61
    assert len(close_payload(1000, "x" * 300)) == 125


def test_a_close_code_must_fit_two_bytes() -> None:
    with pytest.raises(ValueError, match="0 to 65535, not 65536"):
        close_payload(65536, "")
    with pytest.raises(ValueError, match="not -1"):
        close_payload(-1, "")


@pytest.mark.parametrize(
    ("data", "parts", "expected"),
    [
        (b"abcdefgh", 4, [b"ab", b"cd", b"ef", b"gh"]),
        (b"abcde", 2, [b"abc", b"de"]),
        (b"ab", 3, [b"a", b"b", b""]),
        (b"", 2, [b"", b""]),
    ],
)
def test_split_payload(data: bytes, parts: int, expected: list[bytes]) -> None:
    assert split_payload(data, parts) == expected


def test_which_close_codes_a_peer_may_send() -> None:
    allowed = [code for code in range(5100) if close_code_allowed(code)]
    assert allowed[:12] == [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000]
    assert allowed[-1] == 4999
    assert len(allowed) == 11 + 2000
    assert not close_code_allowed(65535)
