"""Transcript lines: encoding, strict decoding, and the streaming reader."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wscenario.core.redaction_policy import RedactionPolicy, RedactionRule
from wscenario.core.transcript import (
    DEFAULT_MAX_LINE_LENGTH,
    End,
    Header,
    TranscriptError,
    TranscriptEvent,
    TranscriptReader,
    decode_line,
    empty_counts,
    encode_data_event,
    encode_end,
    encode_event,
    encode_header,
    read_all,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "transcripts"

HEADER = Header(
    tool="wscenario 0.1.0",
    url="ws://127.0.0.1:8765/chat",
    side="proxy",
    started="2026-11-25T16:00:00.123456+00:00",
    redaction=RedactionPolicy(rules=(RedactionRule.for_pointer("/auth/token"),)),
)


def event_line(**fields: Any) -> bytes:
    text = {} if "type" in fields else {"type": "text", "data": "x"}
    obj = {"t": 0.5, "from": "client"} | text | fields
    return json.dumps(obj).encode()


def header_line(**fields: Any) -> bytes:
    obj = json.loads(encode_header(HEADER)) | fields
    return json.dumps(obj).encode()


END_LINE = encode_end(End(1.0, "complete", empty_counts()))


def end_line(**fields: Any) -> bytes:
    return json.dumps(json.loads(END_LINE) | fields).encode()


# ------------------------------------------------------------------------ round trips


def test_header_round_trips() -> None:
    line = encode_header(HEADER)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert decode_line(line, 1) == HEADER


def test_header_without_tls_means_none() -> None:
    obj = json.loads(encode_header(HEADER))
    del obj["tls"]
    decoded = decode_line(json.dumps(obj).encode(), 1)
    assert isinstance(decoded, Header)
    assert decoded.tls == "none"


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("request", {"target": "/a?b=c", "headers": (("Host", "h"), ("X", "é"))}),
        ("response", {"status": 101, "reason": "Switching Protocols", "headers": ()}),
        ("response", {"status": 403, "reason": "No", "headers": (), "body": b"\x00no"}),
        ("text", {"data": 'ünï ✓ "quoted"\n'}),
        ("binary", {"data": bytes(range(256))}),
        ("ping", {"data": b""}),
        ("pong", {"data": b"p"}),
        ("close", {"code": 1000, "reason": "bye"}),
        ("close", {"code": None, "reason": ""}),
        ("disconnect", {"kind": "reset", "message": "reset by peer"}),
        ("error", {"message": "upstream refused"}),
    ],
)
def test_events_round_trip(kind: str, fields: dict[str, Any]) -> None:
    event = TranscriptEvent(1.25, "server", kind, fields)
    line = encode_event(event)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert decode_line(line, 3) == event


def test_non_ascii_text_is_written_as_utf8() -> None:
    line = encode_event(TranscriptEvent(0.0, "client", "text", {"data": "ü"}))
    assert "ü".encode() in line


def test_lone_surrogate_is_written_as_a_json_escape_and_refused_when_read() -> None:
    # writing never fails; reading refuses text that could not be sent or written as YAML
    line = encode_event(TranscriptEvent(0.0, "client", "text", {"data": "a\udc80"}))
    assert b"\\udc80" in line
    with pytest.raises(TranscriptError, match="line 2: holds text that is not valid Unicode"):
        decode_line(line, 2)


@pytest.mark.parametrize(
    ("kind", "data"),
    [("text", 'a "quoted"\\ line\n\x00 ü'), ("binary", b"\x00\xff"), ("ping", bytearray(b"p"))],
)
def test_message_lines_are_the_json_of_the_event(kind: str, data: str | bytes) -> None:
    line = encode_data_event(12.3456789, "client", kind, data)
    expected = base64.b64encode(data).decode() if isinstance(data, bytes | bytearray) else data
    assert json.loads(line) == {"t": 12.345679, "from": "client", "type": kind, "data": expected}
    assert list(json.loads(line)) == ["t", "from", "type", "data"]


def test_lone_surrogate_in_other_fields_is_refused_when_read() -> None:
    event = TranscriptEvent(0.5, "server", "close", {"code": 1000, "reason": "\udc80"})
    line = encode_event(event)
    assert b"\\udc80" in line
    with pytest.raises(TranscriptError, match="not valid Unicode"):
        decode_line(line, 2)


def test_a_valid_surrogate_pair_escape_is_read() -> None:
    line = b'{"t":0.1,"from":"client","type":"text","data":"\\ud83d\\ude00"}'
    decoded = decode_line(line, 2)
    assert isinstance(decoded, TranscriptEvent)
    assert decoded.fields["data"] == "\U0001f600"


@pytest.mark.parametrize("t", [math.inf, math.nan])
def test_a_time_that_is_not_finite_is_refused(t: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        encode_event(TranscriptEvent(t, "client", "text", {"data": ""}))


def test_times_are_rounded_to_microseconds() -> None:
    line = encode_event(TranscriptEvent(1 / 3, "client", "text", {"data": ""}))
    assert json.loads(line)["t"] == 0.333333


def test_end_round_trips() -> None:
    counts = empty_counts()
    counts["server"]["pong"] = 2
    end = End(2.5, "io-error", counts)
    assert decode_line(encode_end(end), 9) == end


# --------------------------------------------------------------------- strict decoding


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"\xff{}", "not valid UTF-8"),
        (b"{", "not valid JSON"),
        (b'{"t": NaN}', "not valid JSON"),
        (b'{"t": 1, "t": 2}', "duplicate key"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b"[1]", "must hold a JSON object"),
        (header_line(wscenario_transcript=2), "unknown transcript version 2"),
        (header_line(wscenario_transcript=True), "unknown transcript version True"),
        (header_line(extra=1), "unknown fields: extra"),
        (header_line(started="yesterday"), "not an ISO 8601 time"),
        (header_line(started="2026-11-25T16:00:00"), "UTC offset"),
        (header_line(side="sideways"), "side must be one of"),
        (header_line(tls="maybe"), "tls must be one of"),
        (header_line(tool=1), "tool must be a string"),
        (header_line(redaction=[]), "redaction must be an object"),
        (event_line(t="0"), "t must be a number"),
        (event_line(t=True), "t must be a number"),
        (event_line(t=-1), "0 or more"),
        (event_line(t=1e400), "not valid JSON"),
        (event_line(t=1e300), "more than a year"),
        (event_line(type="telepathy"), "unknown type 'telepathy'"),
        (event_line(type=3), "unknown type 3"),
        (event_line(**{"from": "proxy"}), "from must be one of"),
        (event_line(**{"from": ["client"]}), "from must be one of"),
        (event_line(data=42), "data must be a string"),
        (event_line(extra=1), "unknown fields: extra"),
        (event_line(type="binary", data="not base64!"), "data is not valid base64"),
        (event_line(type="binary", data="é"), "data is not valid base64"),
        (event_line(type="close", code="1000", reason=""), "code must be null"),
        (event_line(type="close", code=70000, reason=""), "code must be null"),
        (event_line(type="close", code=True, reason=""), "code must be null"),
        (event_line(type="close", reason=""), "lacks code"),
        (event_line(type="disconnect", kind="meteor", message=""), "kind must be one of"),
        (event_line(type="request", target="/", headers=[["a"]]), "headers must be a list"),
        (event_line(type="request", target="/", headers={}), "headers must be a list"),
        (event_line(type="request", target="/", headers=[["a", 1]]), "headers must be a list"),
        (
            event_line(type="response", status=99, reason="", headers=[]),
            "status must be a whole number",
        ),
        (
            event_line(type="response", status=1.5, reason="", headers=[]),
            "status must be a whole number",
        ),
        (
            event_line(type="response", status=404, reason="", headers=[], body="%%%"),
            "body is not valid base64",
        ),
        (end_line(counts={}), "counts must be an object"),
        (end_line(counts=[]), "counts must be an object"),
        (
            end_line(counts={"client": {}, "server": {}}),
            "counts.client must have exactly the keys",
        ),
    ],
)
def test_invalid_lines_are_errors_with_line_numbers(line: bytes, message: str) -> None:
    with pytest.raises(TranscriptError, match=r"^line 7: ") as info:
        decode_line(line, 7)
    assert info.value.lineno == 7
    assert message in info.value.message


def test_end_record_checks() -> None:
    good = json.loads(END_LINE)
    bad_count = json.loads(END_LINE)
    bad_count["counts"]["server"]["ping"] = -1
    with pytest.raises(TranscriptError, match=r"counts.server.ping must be a whole number"):
        decode_line(json.dumps(bad_count).encode(), 2)
    bad_status = good | {"status": "fine"}
    with pytest.raises(TranscriptError, match="status must be one of"):
        decode_line(json.dumps(bad_status).encode(), 2)
    extra = good | {"from": "client"}
    with pytest.raises(TranscriptError, match="unknown fields: from"):
        decode_line(json.dumps(extra).encode(), 2)


def test_time_going_backwards_is_an_error() -> None:
    assert isinstance(decode_line(event_line(t=2), 4, previous_t=2.0), TranscriptEvent)
    with pytest.raises(TranscriptError, match=r"t goes backwards \(1 after 2\)"):
        decode_line(event_line(t=1), 4, previous_t=2.0)


def test_error_without_a_line_number_is_about_the_file() -> None:
    assert str(TranscriptError(0, "empty")) == "empty"


# ---------------------------------------------------------------------------- reading


def read_chunks(chunks: list[bytes]) -> tuple[list[Any], TranscriptReader]:
    return read_all(chunks)


def whole_transcript() -> bytes:
    events = [
        TranscriptEvent(0.1, "client", "text", {"data": "a\nb"}),
        TranscriptEvent(0.2, "server", "binary", {"data": b"\n\n"}),
    ]
    return encode_header(HEADER) + b"".join(map(encode_event, events)) + END_LINE


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_reader_is_independent_of_chunking(size: int) -> None:
    data = whole_transcript()
    records, reader = read_all(data[i : i + size] for i in range(0, len(data), size))
    assert [type(r).__name__ for r in records] == ["Header", "TranscriptEvent"] * 1 + [
        "TranscriptEvent",
        "End",
    ]
    assert reader.complete
    assert reader.header == HEADER
    assert reader.warnings == []


def test_reader_accepts_lines() -> None:
    records, reader = read_all(whole_transcript().splitlines(keepends=True))
    assert len(records) == 4
    assert reader.complete


def test_valid_fixtures_read_completely() -> None:
    for path in sorted((FIXTURES / "valid").glob("*.jsonl")):
        records, reader = read_all([path.read_bytes()])
        if path.name == "torn_last_line.jsonl":
            assert not reader.complete
            assert reader.warnings == [
                "line 5: the last line is torn and was skipped",
                "the transcript is incomplete: it has no end record",
            ]
            assert len(records) == 4
        else:
            assert reader.complete, path.name
            assert reader.warnings == [], path.name
            assert isinstance(records[-1], End)


@pytest.mark.parametrize(
    ("name", "lineno", "message"),
    [
        ("invalid_json_mid_file", 4, "not valid JSON"),
        ("unknown_version", 1, "unknown transcript version 2"),
        ("wrong_types", 4, "data must be a string"),
        ("invalid_base64", 4, "data is not valid base64"),
        ("negative_delay", 2, "0 or more"),
        ("huge_delay", 4, "more than a year"),
        ("time_goes_backwards", 4, "t goes backwards"),
        ("unknown_type", 4, "unknown type 'telepathy'"),
    ],
)
def test_hostile_fixtures_are_errors(name: str, lineno: int, message: str) -> None:
    data = (FIXTURES / "hostile" / f"{name}.jsonl").read_bytes()
    with pytest.raises(TranscriptError) as info:
        read_all([data])
    assert info.value.lineno == lineno
    assert message in info.value.message


def test_invalid_json_on_the_last_terminated_line_is_torn() -> None:
    data = encode_header(HEADER) + b'{"t": 0.1, "fr\n'
    records, reader = read_all([data])
    assert records == [HEADER]
    assert reader.warnings[0] == "line 2: the last line is torn and was skipped"


def test_invalid_json_then_an_unterminated_line_is_corruption() -> None:
    data = encode_header(HEADER) + b'{"t": 0.1, "fr\n{"t"'
    with pytest.raises(TranscriptError, match=r"^line 2: not valid JSON"):
        read_all([data])


def test_unterminated_whole_last_line_is_kept() -> None:
    records, reader = read_all([whole_transcript().rstrip(b"\n")])
    assert isinstance(records[-1], End)
    assert reader.warnings == []


def test_unterminated_invalid_record_at_the_end_is_an_error() -> None:
    with pytest.raises(TranscriptError, match=r"^line 2: data must be a string"):
        read_all([encode_header(HEADER) + event_line(data=1)])


def test_over_long_line_is_an_error_without_reading_it_whole() -> None:
    reader = TranscriptReader(max_line_length=1000)
    reader.feed(encode_header(HEADER))
    reader.feed(b"x" * 600)
    with pytest.raises(TranscriptError, match=r"^line 2: line longer than 1000 bytes"):
        reader.feed(b"x" * 600)
    assert len(reader._buffer) <= 1200


def test_over_long_terminated_line_in_one_chunk_is_an_error() -> None:
    reader = TranscriptReader(max_line_length=100)
    with pytest.raises(TranscriptError, match=r"^line 1: line longer than 100 bytes"):
        reader.feed(b"y" * 200 + b"\n")


def test_default_line_limit_fits_a_16_mib_binary_message() -> None:
    line = encode_event(TranscriptEvent(1.0, "client", "binary", {"data": bytes(16 << 20)}))
    assert len(line) < DEFAULT_MAX_LINE_LENGTH


@pytest.mark.parametrize(
    ("data", "lineno", "message"),
    [
        (b"", 0, "empty transcript"),
        (encode_event(TranscriptEvent(0, "client", "text", {"data": ""})), 1, "first line"),
        (encode_header(HEADER) * 2, 2, "a second header"),
        (encode_header(HEADER) + END_LINE + END_LINE, 3, "after the end record"),
        (encode_header(HEADER) + b"\n" + END_LINE, 2, "not valid JSON"),
    ],
)
def test_reader_checks_the_order_of_lines(data: bytes, lineno: int, message: str) -> None:
    with pytest.raises(TranscriptError) as info:
        read_all([data])
    assert info.value.lineno == lineno
    assert message in info.value.message


def test_missing_end_record_is_incomplete() -> None:
    records, reader = read_all([encode_header(HEADER)])
    assert records == [HEADER]
    assert not reader.complete
    assert reader.warnings == ["the transcript is incomplete: it has no end record"]


def test_reader_tracks_time_across_lines() -> None:
    late = encode_event(TranscriptEvent(5.0, "client", "text", {"data": ""}))
    early = encode_event(TranscriptEvent(4.0, "server", "text", {"data": ""}))
    with pytest.raises(TranscriptError, match=r"^line 3: t goes backwards"):
        read_all([encode_header(HEADER) + late + early])


@given(
    texts=st.lists(st.text(), max_size=5),
    blobs=st.lists(st.binary(), max_size=5),
    cuts=st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=20),
)
def test_any_messages_round_trip_whatever_the_chunks(
    texts: list[str], blobs: list[bytes], cuts: list[int]
) -> None:
    events = [TranscriptEvent(0.5, "client", "text", {"data": text}) for text in texts]
    events += [TranscriptEvent(1.0, "server", "binary", {"data": blob}) for blob in blobs]
    data = encode_header(HEADER) + b"".join(map(encode_event, events)) + END_LINE
    chunks = []
    position = 0
    for cut in cuts * (len(data) // sum(cuts) + 1):
        chunks.append(data[position : position + cut])
        position += cut
    records, reader = read_all(chunks)
    assert records == [HEADER, *events, decode_line(END_LINE, 1)]
    assert reader.complete
