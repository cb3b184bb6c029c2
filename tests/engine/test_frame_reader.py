"""The fast path for simple frames, held to wsproto's own parser on the same bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol, Opcode

from wscenario.engine.frame_reader import read_simple_frames
from wscenario.engine.frames import encode_frame

LIMIT = 1 << 20


def frame(opcode: int, payload: bytes, *, masked: bool = True, **kw: object) -> bytes:
    return encode_frame(opcode, payload, masked=masked, **kw)  # type: ignore[arg-type]


def test_whole_text_and_binary_frames_are_read_with_what_they_took() -> None:
    data = frame(1, "héllo".encode()) + frame(2, b"\x00\xff") + frame(1, b"")
    assert read_simple_frames(data, masked=True, max_size=LIMIT) == (
        ["héllo", b"\x00\xff", ""],
        len(data),
    )


def test_a_client_reads_unmasked_frames_and_16_bit_lengths() -> None:
    big = b"x" * 70_000
    data = frame(2, b"y" * 300, masked=False) + frame(2, big, masked=False)
    payloads, used = read_simple_frames(data, masked=False, max_size=LIMIT)
    assert payloads == [b"y" * 300]  # the 64-bit length is left to wsproto
    assert used == len(frame(2, b"y" * 300, masked=False))


@pytest.mark.parametrize(
    ("rest", "why"),
    [
        (frame(9, b"ping"), "a control frame"),
        (frame(1, b"part", fin=False), "a fragment"),
        (frame(1, b"x", rsv=0x40), "an RSV bit"),
        (frame(3, b"x"), "a reserved opcode"),
        (frame(1, b"x", masked=False), "a mask bit the role forbids"),
        (struct.pack("!BBH", 0x82, 0x80 | 126, 5) + b"\0" * 9, "a 16-bit length under 126"),
        (frame(1, b"\xff\xfe"), "text that is not UTF-8"),
        (frame(2, b"z" * 200)[:-1], "a frame not yet complete"),
        (frame(2, b"z" * 200)[:3], "a header not yet complete"),
        (frame(2, b"z" * 2000), "a frame over the size limit"),
    ],
)
def test_anything_else_stops_the_fast_path(rest: bytes, why: str) -> None:
    first = frame(1, b"first")
    after = b"" if "complete" in why else frame(1, b"after")  # a simple frame, never reached
    payloads, used = read_simple_frames(first + rest + after, masked=True, max_size=1000)
    assert (payloads, used) == (["first"], len(first)), why


def test_nothing_and_a_lone_byte_take_nothing() -> None:
    assert read_simple_frames(b"", masked=True, max_size=LIMIT) == ([], 0)
    assert read_simple_frames(b"\x81", masked=True, max_size=LIMIT) == ([], 0)


FRAMES = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 2, 3, 9, 10]),  # continuation, text, binary, reserved, ping, pong
        st.booleans(),  # fin
        st.sampled_from([0, 0, 0, 0x40]),  # rsv
        st.one_of(
            st.text(max_size=40).map(str.encode),
            st.binary(max_size=300),
            st.just(b"\xc3"),  # half a UTF-8 character
        ),
    ),
    max_size=8,
)


@given(FRAMES, st.booleans(), st.integers(min_value=0, max_value=40))
def test_what_the_fast_path_reads_is_what_wsproto_reads(
    frames: list[tuple[int, bool, int, bytes]], masked: bool, cut: int
) -> None:
    data = b"".join(
        frame(opcode, payload[:125] if opcode >= 8 else payload, masked=masked, fin=fin, rsv=rsv)
        for opcode, fin, rsv, payload in frames
    )
    data = data[: max(0, len(data) - cut)]
    payloads, used = read_simple_frames(data, masked=masked, max_size=LIMIT)

    parser = FrameProtocol(client=not masked, extensions=[])
    parser.receive_bytes(data[:used])
    whole = [(f.opcode, f.payload) for f in parser.received_frames()]
    assert whole == [(Opcode.TEXT if isinstance(p, str) else Opcode.BINARY, p) for p in payloads]

    # and it stopped at the first frame that is not simple: that one is not whole-and-final
    leading = 0
    for opcode, fin, rsv, payload in frames:
        simple = opcode in (1, 2) and fin and not rsv
        if not simple or (opcode == 1 and not _is_utf8(payload)):
            break
        leading += 1
    assert len(payloads) <= leading
    if len(payloads) < leading:
        assert used + len(frame(2, frames[len(payloads)][3], masked=masked)) > len(data)


def _is_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
