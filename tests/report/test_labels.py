"""One-line descriptions of steps and expectations."""

from __future__ import annotations

from typing import Any

import pytest

from wscenario.core.diagnostics import Position
from wscenario.core.model import (
    AnyMatcher,
    BinaryMatcher,
    BinaryPayload,
    Close,
    Connect,
    Drop,
    EventMatcher,
    Expect,
    ExpectNothing,
    Frames,
    JsonMatcher,
    JsonPayload,
    Ping,
    RawFrame,
    RegexMatcher,
    SchemaMatcher,
    Send,
    Sleep,
    Step,
    StopReading,
    TextMatcher,
    TextPayload,
    Unordered,
)
from wscenario.report.labels import describe_matcher, describe_step, step_kind

AT: dict[str, Any] = {"position": Position("t.yaml", 1, 1), "pointer": "/steps/0"}


def message(matcher: Any) -> EventMatcher:
    return EventMatcher("message", matcher)


@pytest.mark.parametrize(
    ("matcher", "text"),
    [
        (EventMatcher("dataEnd"), "dataEnd"),
        (EventMatcher("close", fields={"code": 1000}), "close {code: 1000}"),
        (message(TextMatcher("hi\x1b")), "message 'hi\\x1b'"),
        (message(RegexMatcher("^ok")), "message regex /^ok/"),
        (message(JsonMatcher({"a": 1})), "message {a: 1}"),
        (message(JsonMatcher({"a": 1}, mode="subset")), "message {a: 1} (subset)"),
        (message(SchemaMatcher({"type": "object"})), "message matching a JSON schema"),
        (message(BinaryMatcher(b"\x00\xff")), "message <binary 2 bytes: 00ff>"),
        (message(AnyMatcher()), "message (any)"),
        (message(AnyMatcher("binary")), "message (any binary)"),
        (message(TextMatcher("x" * 100)), "message '" + "x" * 80 + "… (100 chars)'"),
    ],
)
def test_describe_matcher(matcher: EventMatcher, text: str) -> None:
    assert describe_matcher(matcher) == text


@pytest.mark.parametrize(
    ("step", "kind", "text"),
    [
        (Connect(**AT), "connect", "connect"),
        (Connect(url="ws://h/x", **AT), "connect", "connect ws://h/x"),
        (Send(payload=TextPayload("hi"), **AT), "send", "send 'hi'"),
        (Send(payload=JsonPayload({"t": "j"}), **AT), "send", "send {t: 'j'}"),
        (Send(payload=BinaryPayload(b"\x01"), **AT), "send", "send <binary 1 bytes: 01>"),
        (Close(**AT), "close", "close"),
        (Close(code=1000, reason="bye", **AT), "close", "close 1000 'bye'"),
        (Expect(matcher=EventMatcher("open"), **AT), "expect", "expect open"),
        (ExpectNothing(duration=0.3, **AT), "expect", "expect nothing for 300ms"),
        (
            Unordered(
                expects=(
                    Expect(matcher=EventMatcher("open"), **AT),
                    Expect(matcher=EventMatcher("dataEnd"), **AT),
                ),
                **AT,
            ),
            "unordered",
            "unordered: open | dataEnd",
        ),
        (Sleep(duration=2, **AT), "sleep", "sleep 2s"),
        (Ping(**AT), "ping", "ping"),
        (Ping(data=b"hb", **AT), "ping", "ping <binary 2 bytes: 6862>"),
        (Drop(mode="rst", **AT), "drop", "drop (rst)"),
        (Frames(frames=(RawFrame(1), RawFrame(0)), **AT), "frames", "frames (2)"),
        (StopReading(**AT), "stopReading", "stopReading"),
    ],
)
def test_describe_step(step: Step, kind: str, text: str) -> None:
    assert step_kind(step) == kind
    assert describe_step(step) == text
