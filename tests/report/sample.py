"""Results shaped like a real run, for report tests."""

from __future__ import annotations

from wscenario.core.diagnostics import Position
from wscenario.report.results import (
    Failure,
    ScenarioResult,
    SeenEvent,
    SessionResult,
    StepResult,
)

PATH = "scenarios/echo.yaml"


def step(index: int, label: str, line: int, failure: Failure | None = None) -> StepResult:
    kind = label.split()[0]
    return StepResult(
        index=index,
        kind=kind,
        what=label,
        position=Position(PATH, line, 5),
        pointer=f"/steps/{index}",
        started=0.01 * index,
        duration=0.003,
        failure=failure,
    )


JSON_FAILURE = Failure(
    message="at /user: expected 'alice', got 'bob'",
    expected='message {"type":"welcome","user":"alice"}',
    received='message \'{"type":"welcome","user":"bob"}\'',
    diff=(
        "--- expected",
        "+++ received",
        "@@ -1,4 +1,4 @@",
        " {",
        '   "type": "welcome",',
        '-  "user": "alice"',
        '+  "user": "bob"',
        " }",
    ),
    variables={"user": "alice", "n": 3},
)


def passed(name: str = "echo") -> ScenarioResult:
    session = SessionResult(
        steps=(step(0, "connect", 7), step(1, "send 'hi'", 8), step(2, "expect message 'hi'", 9)),
        events=(
            SeenEvent(0.004, "open", {"status": 101, "message": "Switching Protocols"}, "step"),
            SeenEvent(0.02, "message", "hi", "step", "/steps/2"),
            SeenEvent(0.03, "message", b"\x00\xff"),
        ),
        variables={"user": "alice"},
        duration=0.12,
        total_steps=3,
    )
    return ScenarioResult(name=name, path=PATH, side="client", session=session)


def failed(name: str = "login", failure: Failure = JSON_FAILURE) -> ScenarioResult:
    session = SessionResult(
        steps=(step(0, "connect", 7), step(1, "expect message {…}", 12, failure)),
        events=(SeenEvent(0.5, "message", '{"type":"welcome","user":"bob"}', "step", "/steps/1"),),
        variables={"user": "alice", "n": 3},
        duration=0.5,
        total_steps=4,
    )
    return ScenarioResult(name=name, path=PATH, side="client", session=session)


def could_not_run(name: str = "tls") -> ScenarioResult:
    session = SessionResult(
        steps=(),
        events=(),
        variables={},
        duration=0.001,
        total_steps=2,
        error="cannot read certs/ca.pem: No such file or directory",
    )
    return ScenarioResult(name=name, path="scenarios/tls.yaml", side="client", session=session)
