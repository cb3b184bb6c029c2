"""Short, one-line descriptions of steps and expectations, as reports show them.

``expect message {"type":"welcome"} (subset)``, ``send 'hello'``, ``close 1000 'bye'``: the
text a person scanning a run's output recognises from the scenario file.
"""

from __future__ import annotations

from wscenario.core.diff import format_value, safe_text
from wscenario.core.model import (
    AnyMatcher,
    BinaryMatcher,
    Close,
    Connect,
    Drop,
    EchoPayload,
    EventMatcher,
    Expect,
    ExpectNothing,
    Frames,
    JsonMatcher,
    JsonPayload,
    Payload,
    PayloadMatcher,
    Ping,
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

SHORT = 80
"""Longest text or JSON shown inside a one-line description."""

_KINDS: dict[type, str] = {
    Connect: "connect",
    Send: "send",
    Close: "close",
    Expect: "expect",
    ExpectNothing: "expect",
    Unordered: "unordered",
    Sleep: "sleep",
    Ping: "ping",
    Drop: "drop",
    Frames: "frames",
    StopReading: "stopReading",
}


def step_kind(step: Step) -> str:
    """The step's key as written in the scenario (``send``, ``expect``...)."""
    return _KINDS[type(step)]


def describe_step(step: Step) -> str:
    """One line naming the step and its main argument."""
    if isinstance(step, Expect):
        return f"expect {describe_matcher(step.matcher)}"
    if isinstance(step, ExpectNothing):
        return f"expect nothing for {format_duration(step.duration)}"
    if isinstance(step, Unordered):
        return f"unordered: {' | '.join(describe_matcher(e.matcher) for e in step.expects)}"
    if isinstance(step, Send):
        return f"send {describe_payload(step.payload)}"
    if isinstance(step, Close):
        parts = ["close"]
        if step.code is not None:
            parts.append(str(step.code))
        if step.reason is not None:
            parts.append(format_value(step.reason, SHORT))
        return " ".join(parts)
    if isinstance(step, Connect):
        return f"connect {step.url}" if step.url else "connect"
    if isinstance(step, Sleep):
        return f"sleep {format_duration(step.duration)}"
    if isinstance(step, Drop):
        return f"drop ({step.mode})"
    if isinstance(step, Frames):
        return f"frames ({len(step.frames)})"
    if isinstance(step, Ping):
        return f"ping {format_value(step.data, SHORT)}" if step.data else "ping"
    return step_kind(step)


def describe_payload(payload: Payload | EchoPayload) -> str:
    """What a ``send`` sends."""
    if isinstance(payload, EchoPayload):
        return "the received message back"
    if isinstance(payload, TextPayload):
        return format_value(payload.text, SHORT)
    if isinstance(payload, JsonPayload):
        return format_value(payload.value, SHORT)
    return format_value(payload.data, SHORT)


def describe_matcher(matcher: EventMatcher) -> str:
    """What an ``expect`` waits for: the event's name and its condition."""
    if matcher.payload is not None:
        return f"{matcher.event} {describe_payload_matcher(matcher.payload)}"
    if matcher.fields is not None:
        return f"{matcher.event} {format_value(matcher.fields, SHORT)}"
    return matcher.event


def describe_payload_matcher(matcher: PayloadMatcher) -> str:
    """A payload condition as written: text, ``regex /.../``, JSON, schema, bytes, any."""
    if isinstance(matcher, TextMatcher):
        return format_value(matcher.text, SHORT)
    if isinstance(matcher, RegexMatcher):
        return f"regex /{safe_text(matcher.pattern, SHORT)}/"
    if isinstance(matcher, JsonMatcher):
        return format_value(matcher.value, SHORT) + (
            " (subset)" if matcher.mode == "subset" else ""
        )
    if isinstance(matcher, SchemaMatcher):
        return "matching a JSON schema"
    if isinstance(matcher, BinaryMatcher):
        return format_value(matcher.data, SHORT)
    assert isinstance(matcher, AnyMatcher)
    return "(any)" if matcher.kind == "any" else f"(any {matcher.kind})"


def format_duration(seconds: float) -> str:
    """A duration as a person writes it: ``250ms``, ``5s``, ``1.5s``, ``2m``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
