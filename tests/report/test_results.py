"""Result records: outcomes and how durations are written."""

from __future__ import annotations

import pytest

from tests.report.sample import could_not_run, failed, passed, step
from wscenario.report.labels import format_duration
from wscenario.report.results import Failure, SessionResult


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0004, "0ms"),
        (0.05, "50ms"),
        (0.25, "250ms"),
        (1.0, "1s"),
        (1.5, "1.5s"),
        (5.0, "5s"),
        (60.0, "1m"),
        (90.0, "90s"),
        (120.0, "2m"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_outcomes() -> None:
    assert passed().outcome == "passed"
    assert failed().outcome == "failed"
    assert could_not_run().outcome == "error"
    assert passed().stopped().outcome == "interrupted"
    assert could_not_run().stopped().outcome == "interrupted"
    assert not passed().stopped().session.passed
    assert failed().session.failed_step == failed().session.steps[1]
    assert passed().session.failed_step is None


def test_steps_left_unrun_are_not_a_pass() -> None:
    session = SessionResult(
        steps=(step(0, "connect", 1),), events=(), variables={}, duration=0.1, total_steps=2
    )
    assert session.failed_step is None
    assert not session.passed


def test_rule_results_do_not_count_as_steps() -> None:
    rule = step(0, "rule on messageReceive", 1, Failure("undefined variable 'x'"))
    session = SessionResult(steps=(rule,), events=(), variables={}, duration=0.1, total_steps=1)
    assert not session.passed
    assert step(0, "send 'x'", 1).outcome == "passed"
    assert rule.outcome == "failed"
