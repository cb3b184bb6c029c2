"""Transcripts: what went over the wire in one WebSocket connection, as JSON Lines.

The format is described in ``docs/transcripts.md`` and ``schemas/transcript.schema.json``.
A transcript is a :class:`Header` line, then :class:`TranscriptEvent` lines in time order,
then an :class:`End` line. This module encodes records to bytes, decodes and strictly
checks one line (:func:`decode_line`), and parses a whole transcript as a stream of bytes
(:class:`TranscriptReader`) with a bounded line length, so a hostile file costs a clear
error, never a traceback or unbounded memory.

In a decoded event's ``fields``, base64 values are ``bytes`` (``data`` of binary, ping and
pong; ``body`` of response) and header lists are tuples of ``(name, value)`` pairs.
"""

from __future__ import annotations

import base64
import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeAlias

from wscenario.core.redaction_policy import RedactionPolicy
from wscenario.core.valid_unicode import holds_only_valid_unicode

FORMAT_VERSION = 1
"""The value of ``wscenario_transcript`` in the header this module reads and writes."""

Role: TypeAlias = Literal["client", "server"]
Side: TypeAlias = Literal["client", "server", "proxy"]
EndStatus: TypeAlias = Literal["complete", "interrupted", "aborted", "io-error"]

ROLES: tuple[Role, ...] = ("client", "server")
SIDES: tuple[Side, ...] = ("client", "server", "proxy")
TLS_MODES = ("none", "strict", "device", "insecure")
END_STATUSES: tuple[EndStatus, ...] = ("complete", "interrupted", "aborted", "io-error")
COUNTED_TYPES = ("text", "binary", "ping", "pong", "close")
"""The event types an end record counts per role."""
DISCONNECT_KINDS = ("eof", "reset", "timeout", "protocol", "tls")
EVENT_TYPES = (
    "request",
    "response",
    "text",
    "binary",
    "ping",
    "pong",
    "close",
    "disconnect",
    "error",
)

MAX_T = 366 * 24 * 3600.0
"""The largest ``t`` accepted (a year): larger is a hostile or broken file, not a recording."""

MAX_MESSAGE_SIZE = 16 * 1024 * 1024
DEFAULT_MAX_LINE_LENGTH = MAX_MESSAGE_SIZE * 4 // 3 + 1024 * 1024
"""A line long enough for a 16 MiB message in base64, plus room for the rest of the record."""

Counts: TypeAlias = Mapping[str, Mapping[str, int]]


class TranscriptError(Exception):
    """A transcript line is invalid; ``lineno`` is 1-based (0: the file as a whole)."""

    def __init__(self, lineno: int, message: str) -> None:
        self.lineno = lineno
        self.message = message
        super().__init__(f"line {lineno}: {message}" if lineno else message)


@dataclass(frozen=True)
class Header:
    """The first line: who wrote the transcript, for which URL, when, and what was redacted.

    ``started`` is an ISO 8601 time with a UTC offset; ``tls`` is ``none`` for ``ws://``, else
    the verification mode used (``strict``, ``device`` or ``insecure``).
    """

    tool: str
    url: str
    side: Side
    started: str
    redaction: RedactionPolicy = field(default_factory=RedactionPolicy)
    tls: str = "none"


@dataclass(frozen=True)
class TranscriptEvent:
    """One event: ``t`` seconds after the start, sent by ``from_``; ``fields`` by ``type``."""

    t: float
    from_: Role
    type: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class End:
    """The last line: how the connection ended and how many of each event each role sent."""

    t: float
    status: EndStatus
    counts: Counts


Record: TypeAlias = Header | TranscriptEvent | End


def empty_counts() -> dict[str, dict[str, int]]:
    """Zero counts for both roles, ready to be incremented."""
    return {role: dict.fromkeys(COUNTED_TYPES, 0) for role in ROLES}


# ------------------------------------------------------------------------------- encoding


def _dump(obj: Mapping[str, Any]) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate: JSON's \u escapes carry it
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def encode_header(header: Header) -> bytes:
    """The header as one JSON line."""
    return _dump(
        {
            "wscenario_transcript": FORMAT_VERSION,
            "tool": header.tool,
            "url": header.url,
            "side": header.side,
            "started": header.started,
            "redaction": header.redaction.to_json(),
            "tls": header.tls,
        }
    )


def encode_event(event: TranscriptEvent) -> bytes:
    """The event as one JSON line (bytes as base64, header pairs as two-item lists)."""
    fields = event.fields
    if len(fields) == 1 and isinstance(data := fields.get("data"), str | bytes | bytearray):
        return encode_data_event(event.t, event.from_, event.type, data)
    obj: dict[str, Any] = {"t": _round_t(event.t), "from": event.from_, "type": event.type}
    for name, value in event.fields.items():
        if isinstance(value, bytes | bytearray):
            obj[name] = base64.b64encode(value).decode("ascii")
        elif name == "headers":
            obj[name] = [[key, val] for key, val in value]
        else:
            obj[name] = value
    return _dump(obj)


def encode_data_event(t: float, from_: str, type_: str, data: str | bytes | bytearray) -> bytes:
    """An event whose only field is ``data`` (a message, ping or pong) as one JSON line.

    The same line as :func:`encode_event` gives, built without an intermediate object.

    Raises:
        ValueError: ``t`` is not finite.
    """
    if not math.isfinite(t):
        raise ValueError(f"t is not a finite number: {t!r}")
    start = f'{{"t":{_round_t(t)!r},{_data_prefix(from_, type_)}'
    if not isinstance(data, str):
        return f'{start}"{base64.b64encode(data).decode("ascii")}"}}\n'.encode("ascii")
    try:
        return f"{start}{_encode_text(data)}}}\n".encode()
    except UnicodeEncodeError:  # a lone surrogate: JSON's \u escapes carry it
        return f"{start}{_encode_ascii(data)}}}\n".encode("ascii")


_encode_text = json.JSONEncoder(ensure_ascii=False).encode
_encode_ascii = json.JSONEncoder().encode


@functools.lru_cache(maxsize=64)
def _data_prefix(from_: str, type_: str) -> str:
    return f'"from":{_encode_ascii(from_)},"type":{_encode_ascii(type_)},"data":'


def encode_end(end: End) -> bytes:
    """The end record as one JSON line."""
    counts = {role: dict(end.counts[role]) for role in ROLES}
    return _dump({"t": _round_t(end.t), "type": "end", "status": end.status, "counts": counts})


def _round_t(t: float) -> float:
    return round(t, 6)


# ------------------------------------------------------------------------------- decoding


def decode_line(line: bytes, lineno: int, *, previous_t: float = 0.0) -> Record:
    """Decode and check one line (with or without its ``\\n``).

    ``previous_t`` is the time of the line before; an event or end record earlier than that
    is an error.

    Raises:
        TranscriptError: the line is not valid UTF-8 JSON, or not a valid header, event or
            end record.
    """
    obj = _parse_json(line, lineno)
    try:
        if "wscenario_transcript" in obj:
            return _header(obj)
        t = _time(obj.get("t"), previous_t)
        if obj.get("type") == "end":
            return _end(obj, t)
        return _event(obj, t)
    except ValueError as exc:
        raise TranscriptError(lineno, str(exc)) from None


class _Invalid(ValueError):
    """A line is JSON but not a valid record (the message says why)."""


class _SyntaxError(TranscriptError):
    """The line is not JSON at all (what a torn write leaves)."""


def _parse_json(line: bytes, lineno: int) -> dict[str, Any]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _SyntaxError(lineno, f"not valid UTF-8 (byte {exc.start})") from None
    try:
        obj = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError, duplicate keys, NaN, over-long integers
        raise _SyntaxError(lineno, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise _SyntaxError(lineno, "not valid JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise TranscriptError(lineno, "a line must hold a JSON object")
    # a lone surrogate can only come from a \u escape; such text cannot be sent or written
    if b"\\u" in line and not holds_only_valid_unicode(obj):
        raise TranscriptError(lineno, "holds text that is not valid Unicode (a lone surrogate)")
    return obj


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in an object")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _header(obj: dict[str, Any]) -> Header:
    version = obj["wscenario_transcript"]
    if not _is_int(version) or version != FORMAT_VERSION:
        raise _Invalid(
            f"unknown transcript version {version!r}: this wscenario reads version {FORMAT_VERSION}"
        )
    required = {"wscenario_transcript", "tool", "url", "side", "started", "redaction"}
    _keys(obj, "header", required, {"tls"})
    started = _str(obj, "started")
    try:
        when = datetime.fromisoformat(started)
    except ValueError:
        raise _Invalid(f"started is not an ISO 8601 time: {started!r}") from None
    if when.tzinfo is None:
        raise _Invalid("started must include a UTC offset")
    return Header(
        tool=_str(obj, "tool"),
        url=_str(obj, "url"),
        side=_choice(obj, "side", SIDES),
        started=started,
        redaction=RedactionPolicy.from_json(obj["redaction"]),
        tls=_choice(obj, "tls", TLS_MODES) if "tls" in obj else "none",
    )


def _time(value: object, previous_t: float) -> float:
    if not _is_number(value):
        raise _Invalid("t must be a number of seconds")
    t = float(value)  # type: ignore[arg-type]
    if not math.isfinite(t) or t < 0:
        raise _Invalid(f"t must be a finite number of seconds, 0 or more, not {value!r}")
    if t > MAX_T:
        raise _Invalid(f"t is {t:g} seconds, more than a year after the start")
    if t < previous_t:
        raise _Invalid(f"t goes backwards ({t:g} after {previous_t:g})")
    return t


def _end(obj: dict[str, Any], t: float) -> End:
    _keys(obj, "end record", {"t", "type", "status", "counts"})
    counts = obj["counts"]
    if not isinstance(counts, dict) or set(counts) != set(ROLES):
        raise _Invalid("counts must be an object with the keys client and server")
    checked: dict[str, dict[str, int]] = {}
    for role in ROLES:
        per_role = counts[role]
        if not isinstance(per_role, dict) or set(per_role) != set(COUNTED_TYPES):
            raise _Invalid(f"counts.{role} must have exactly the keys {', '.join(COUNTED_TYPES)}")
        for name, count in per_role.items():
            if not _is_int(count) or count < 0:
                raise _Invalid(f"counts.{role}.{name} must be a whole number, 0 or more")
        checked[role] = dict(per_role)
    return End(t, _choice(obj, "status", END_STATUSES), checked)


_EVENT_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "request": ({"target", "headers"}, set()),
    "response": ({"status", "reason", "headers"}, {"body"}),
    "text": ({"data"}, set()),
    "binary": ({"data"}, set()),
    "ping": ({"data"}, set()),
    "pong": ({"data"}, set()),
    "close": ({"code", "reason"}, set()),
    "disconnect": ({"kind", "message"}, set()),
    "error": ({"message"}, set()),
}


def _event(obj: dict[str, Any], t: float) -> TranscriptEvent:
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in _EVENT_FIELDS:
        raise _Invalid(f"unknown type {kind!r}: expected one of {', '.join(EVENT_TYPES)}, end")
    required, optional = _EVENT_FIELDS[kind]
    _keys(obj, f"a {kind} event", required | {"t", "from", "type"}, optional)
    role = _choice(obj, "from", ROLES)
    fields: dict[str, Any] = {}
    if kind == "request":
        fields = {"target": _str(obj, "target"), "headers": _headers(obj)}
    elif kind == "response":
        status = obj["status"]
        if not _is_int(status) or not 100 <= status <= 999:
            raise _Invalid("status must be a whole number from 100 to 999")
        fields = {"status": status, "reason": _str(obj, "reason"), "headers": _headers(obj)}
        if "body" in obj:
            fields["body"] = _base64(obj, "body")
    elif kind == "text":
        fields = {"data": _str(obj, "data")}
    elif kind in ("binary", "ping", "pong"):
        fields = {"data": _base64(obj, "data")}
    elif kind == "close":
        code = obj["code"]
        if code is not None and (not _is_int(code) or not 0 <= code <= 65535):
            raise _Invalid("code must be null or a whole number from 0 to 65535")
        fields = {"code": code, "reason": _str(obj, "reason")}
    elif kind == "disconnect":
        fields = {"kind": _choice(obj, "kind", DISCONNECT_KINDS), "message": _str(obj, "message")}
    else:
        fields = {"message": _str(obj, "message")}
    return TranscriptEvent(t, role, kind, fields)


def _keys(
    obj: Mapping[str, Any],
    what: str,
    required: set[str],
    optional: frozenset[str] | set[str] = frozenset(),
) -> None:
    missing = required - set(obj)
    if missing:
        raise _Invalid(f"{what} lacks {', '.join(sorted(missing))}")
    extra = set(obj) - required - optional
    if extra:
        raise _Invalid(f"{what} has unknown fields: {', '.join(sorted(extra))}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _str(obj: Mapping[str, Any], name: str) -> str:
    value = obj[name]
    if not isinstance(value, str):
        raise _Invalid(f"{name} must be a string")
    return value


def _choice(obj: Mapping[str, Any], name: str, choices: Iterable[str]) -> Any:
    value = obj[name]
    options = tuple(choices)
    if value not in options or not isinstance(value, str):
        raise _Invalid(f"{name} must be one of {', '.join(options)}, not {value!r}")
    return value


def _headers(obj: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    value = obj["headers"]
    if not isinstance(value, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)
        for pair in value
    ):
        raise _Invalid("headers must be a list of [name, value] string pairs")
    return tuple((name, val) for name, val in value)


def _base64(obj: Mapping[str, Any], name: str) -> bytes:
    value = _str(obj, name)
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII string
        raise _Invalid(f"{name} is not valid base64") from None


# -------------------------------------------------------------------------------- reading


class TranscriptReader:
    """Parse a transcript fed as byte chunks (or lines), one record at a time.

    ``feed`` returns the records completed by a chunk, ``finish`` those left at the end of the
    input. Lines longer than ``max_line_length`` are an error as soon as they are seen, so
    memory stays bounded. A torn last line (no ``\\n``, or not JSON, at the very end) is
    skipped with a warning; a missing end record leaves ``complete`` false with a warning;
    any other invalid line is a :class:`TranscriptError` with its line number.
    """

    def __init__(self, max_line_length: int = DEFAULT_MAX_LINE_LENGTH) -> None:
        self.max_line_length = max_line_length
        self.header: Header | None = None
        self.end: End | None = None
        self.warnings: list[str] = []
        self._buffer = bytearray()
        self._lineno = 0
        self._previous_t = 0.0
        self._torn: _SyntaxError | None = None

    @property
    def complete(self) -> bool:
        """The end record was read."""
        return self.end is not None

    def feed(self, data: bytes) -> list[Record]:
        """The records completed by ``data``.

        Raises:
            TranscriptError: an invalid or over-long line.
        """
        records: list[Record] = []
        position = 0
        searched = len(self._buffer)  # the buffer holds no newline yet
        self._buffer += data
        newline = self._buffer.find(b"\n", searched)
        while newline >= 0:
            records.extend(self._line(bytes(self._buffer[position:newline])))
            position = newline + 1
            newline = self._buffer.find(b"\n", position)
        del self._buffer[:position]
        if len(self._buffer) > self.max_line_length:
            raise self._too_long()
        return records

    def finish(self) -> list[Record]:
        """The record on an unterminated last line, if it is whole; then the final checks.

        Raises:
            TranscriptError: the input holds no header, or its last line is invalid JSON
                after a line that already was.
        """
        records: list[Record] = []
        if self._buffer:
            line = bytes(self._buffer)
            self._buffer.clear()
            records.extend(self._line(line))  # invalid JSON here is left in ``_torn``
        if self._torn is not None:
            self.warnings.append(f"line {self._torn.lineno}: the last line is torn and was skipped")
            self._torn = None
        if self.header is None:
            raise TranscriptError(0, "empty transcript: no header line")
        if self.end is None:
            self.warnings.append("the transcript is incomplete: it has no end record")
        return records

    def _too_long(self) -> TranscriptError:
        return TranscriptError(self._lineno + 1, f"line longer than {self.max_line_length} bytes")

    def _line(self, line: bytes) -> list[Record]:
        if self._torn is not None:
            raise TranscriptError(self._torn.lineno, self._torn.message)
        self._lineno += 1
        if len(line) > self.max_line_length:
            raise TranscriptError(self._lineno, f"line longer than {self.max_line_length} bytes")
        try:
            record = decode_line(line, self._lineno, previous_t=self._previous_t)
        except _SyntaxError as exc:
            self._torn = exc  # an error unless it turns out to be the last line
            return []
        self._check_order(record)
        return [record]

    def _check_order(self, record: Record) -> None:
        if self.end is not None:
            raise TranscriptError(self._lineno, "a line after the end record")
        if isinstance(record, Header):
            if self.header is not None:
                raise TranscriptError(self._lineno, "a second header line")
            self.header = record
            return
        if self.header is None:
            raise TranscriptError(self._lineno, "the first line must be the header")
        self._previous_t = record.t
        if isinstance(record, End):
            self.end = record


def read_all(
    chunks: Iterable[bytes], max_line_length: int = DEFAULT_MAX_LINE_LENGTH
) -> tuple[list[Record], TranscriptReader]:
    """Every record of a transcript given as chunks, and the reader (for its warnings)."""
    reader = TranscriptReader(max_line_length)
    records: list[Record] = []
    for chunk in chunks:
        records.extend(reader.feed(chunk))
    records.extend(reader.finish())
    return records, reader
