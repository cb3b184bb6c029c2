"""The fast path for simple frames, held to wsproto's own parser on the same bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol, Opcode

from wscenario.engine.frame_reader import FrameInParts, SimpleFrames, read_simple_frames
from wscenario.engine.frames import encode_frame

LIMIT = 1 << 20


def frame(opcode: int, payload: bytes, *, masked: bool = True, **kw: object) -> bytes:
    return encode_frame(opcode, payload, masked=masked, **kw)  # type: ignore[arg-type]


def test_whole_text_and_binary_frames_are_read_with_what_they_took() -> None:
    data = frame(1, "héllo".encode()) + frame(2, b"\x00\xff") + frame(1, b"")
    assert read_simple_frames(data, masked=True, max_size=LIMIT) == SimpleFrames(
        ["héllo", b"\x00\xff", ""], len(data)
    )


def test_a_client_reads_unmasked_frames_with_16_and_64_bit_lengths() -> None:
    big = b"x" * 70_000
    data = frame(2, b"y" * 300, masked=False) + frame(2, big, masked=False)
    assert read_simple_frames(data, masked=False, max_size=LIMIT) == SimpleFrames(
        [b"y" * 300, big], len(data)
    )


@pytest.mark.parametrize(
    ("rest", "why"),
    [
        (frame(9, b"ping"), "a control frame"),
        (frame(1, b"part", fin=False), "a fragment"),
        (frame(1, b"x", rsv=0x40), "an RSV bit"),
        (frame(3, b"x"), "a reserved opcode"),
        (frame(1, b"x", masked=False), "a mask bit the role forbids"),
        (struct.pack("!BBH", 0x82, 0x80 | 126, 5) + b"\0" * 9, "a 16-bit length under 126"),
        (struct.pack("!BBQ", 0x82, 0x80 | 127, 200) + b"\0" * 204, "a 64-bit length under 2**16"),
        (frame(1, b"\xff\xfe"), "text that is not UTF-8"),
        (frame(2, b"z" * 2000), "a frame over the size limit"),
    ],
)
def test_anything_else_stops_the_fast_path(rest: bytes, why: str) -> None:
    first = frame(1, b"first")
    after = frame(1, b"after")  # a simple frame, never reached
    result = read_simple_frames(first + rest + after, masked=True, max_size=1000)
    assert result == SimpleFrames(["first"], len(first)), why


def test_nothing_and_a_lone_byte_take_nothing() -> None:
    assert read_simple_frames(b"", masked=True, max_size=LIMIT) == SimpleFrames([], 0)
    assert read_simple_frames(b"\x89", masked=True, max_size=LIMIT) == SimpleFrames([], 0)


@pytest.mark.parametrize("masked", [True, False])
def test_a_head_cut_short_is_told_from_one_that_is_whole_or_not_simple(masked: bool) -> None:
    first = frame(1, b"first", masked=masked)

    def cut(rest: bytes) -> bool:
        read = read_simple_frames(first + rest, masked=masked, max_size=LIMIT)
        assert read.used == len(first)
        return read.head_cut

    for payload in (b"x" * 5, b"x" * 300, b"x" * 70_000):
        whole = frame(2, payload, masked=masked)
        head = len(whole) - len(payload)
        assert all(cut(whole[:at]) for at in range(1, head))
        assert not cut(whole[:head])  # whole: the frame's payload is under way
    assert not cut(b"")
    assert not cut(frame(9, b"", masked=masked)[:1])  # a ping
    assert not cut(frame(1, b"x", fin=False, masked=masked)[:1])  # a fragment
    assert not cut(frame(1, b"x", masked=not masked)[:2])  # the wrong mask bit


def read_in_parts(data: bytes, cuts: list[int], *, masked: bool) -> tuple[list[str | bytes], bool]:
    """Read ``data`` cut at ``cuts``; the payloads and whether text failed.

    A frame whose head is cut waits for the next part, as a connection keeps it.
    """
    payloads: list[str | bytes] = []
    unfinished: FrameInParts | None = None
    left = b""
    for start, stop in zip([0, *cuts], [*cuts, len(data)], strict=True):
        piece = left + data[start:stop]
        if unfinished is not None:
            piece = unfinished.take(piece)
            if unfinished.failed:
                return payloads, True
            if unfinished.missing:
                continue
            payloads.append(unfinished.payload())
            unfinished = None
        read = read_simple_frames(piece, masked=masked, max_size=LIMIT)
        payloads.extend(read.payloads)
        unfinished = read.unfinished
        if unfinished is not None and unfinished.failed:
            return payloads, True
        assert read.head_cut or unfinished is not None or read.used == len(piece)
        left = piece[read.used :] if read.head_cut else b""
    assert unfinished is None
    assert not left
    return payloads, False


@given(
    st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=70_000)), max_size=4),
    st.booleans(),
    st.lists(st.integers(min_value=0), max_size=6),
)
def test_a_frame_read_in_parts_is_the_frame_read_whole(
    messages: list[str | bytes], masked: bool, cut_at: list[int]
) -> None:
    data = b"".join(
        frame(1, m.encode(), masked=masked) if isinstance(m, str) else frame(2, m, masked=masked)
        for m in messages
    )
    cuts = sorted({at % (len(data) + 1) for at in cut_at})
    assert read_in_parts(data, cuts, masked=masked) == (messages, False)


@pytest.mark.parametrize("masked", [True, False])
def test_text_that_is_not_utf8_fails_in_the_part_where_it_arrives(masked: bool) -> None:
    payload = "é".encode() * 50_000 + b"\xff" + b"a" * 1000
    data = frame(1, payload, masked=masked)
    head = len(data) - len(payload)
    bad = head + 100_000  # the offset of the bad byte
    found, used, unfinished, _ = read_simple_frames(data[: bad - 1], masked=masked, max_size=LIMIT)
    assert (found, used) == ([], 0)
    assert unfinished is not None
    assert not unfinished.failed
    assert unfinished.take(data[bad - 1 : bad]) == b""
    assert not unfinished.failed  # a whole "é": nothing wrong yet
    assert unfinished.take(data[bad : bad + 10]) == b""
    assert unfinished.failed
    assert unfinished.missing == len(data) - bad - 10
    assert unfinished.received() == data[: bad + 10]  # as it came: wsproto reads it again


def test_a_part_may_end_in_the_middle_of_a_character() -> None:
    data = frame(1, "é".encode() * 100, masked=False)
    found, used, unfinished, _ = read_simple_frames(data[:51], masked=False, max_size=LIMIT)
    assert (found, used) == ([], 0)
    assert unfinished is not None
    assert unfinished.missing
    assert unfinished.take(data[51:] + frame(2, b"next", masked=False)) == frame(
        2, b"next", masked=False
    )
    assert unfinished.missing == 0
    assert not unfinished.failed
    assert unfinished.payload() == "é" * 100


def test_bad_text_that_starts_in_the_first_read_fails_at_once() -> None:
    data = frame(1, b"\xff" + b"a" * 300, masked=True)
    found, used, unfinished, _ = read_simple_frames(data[:50], masked=True, max_size=LIMIT)
    assert (found, used) == ([], 0)
    assert unfinished is not None
    assert unfinished.failed
    assert unfinished.received() == data[:50]


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
    payloads, used, unfinished, _ = read_simple_frames(data, masked=masked, max_size=LIMIT)

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
    # a frame that stops short is unfinished when its head is whole, and then it is simple
    if unfinished is not None:
        opcode, fin, rsv, _ = frames[len(payloads)]
        assert opcode in (1, 2)
        assert fin
        assert not rsv
        assert unfinished.received() == data[used:]


def _is_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
