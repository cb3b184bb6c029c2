"""How ``wscenario serve`` keeps finished connections: counts for all, results for failures."""

from __future__ import annotations

import gc
import json
import tracemalloc
from xml.etree import ElementTree as ET

import pytest

from wscenario.commands.serve import ServeResults
from wscenario.core.diagnostics import Position
from wscenario.report.console import Style, render_summary
from wscenario.report.results import Failure, ScenarioResult, SessionResult, StepResult


def connection(number: int, *, passed: bool = True, error: str | None = None) -> ScenarioResult:
    """One finished connection of the ``echo`` scenario, as ``serve`` records it."""
    failure = None if passed else Failure(f"failure {number}")
    where = Position("echo.yaml", 5, 5)
    step = StepResult(0, "expect", "expect hi", where, "/steps/0", 0.0, 0.0, failure)
    session = SessionResult((step,), (), {"n": number}, 0.01, 1, error=error)
    return ScenarioResult(f"echo #{number} 127.0.0.1:1", "echo.yaml", "server", session)


def test_memory_for_results_does_not_grow_with_passing_connections() -> None:
    results = ServeResults()
    for number in range(1000):  # warm up: counters and interned keys exist
        results.add("echo", connection(number))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(1000, 21_000):
            results.add("echo", connection(number))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 20_000, f"{grown} bytes for 20,000 passing connections"
    assert len(results) == 21_000
    assert results.all_passed
    assert render_summary(results, 1.0, Style()) == "21000 passed, 0 failed in 1.00s"


def test_an_interrupted_connection_is_counted_and_stood_in_for_like_the_others() -> None:
    results = ServeResults(keep=1)
    results.add("echo", connection(0).stopped())
    results.add("echo", connection(1, passed=False))  # kept in its place
    assert results.summary()["interrupted"] == 1
    assert [r.outcome for r in results] == ["failed", "interrupted"]
    assert results[1].outcome == "interrupted"
    assert results[1].name == "a connection that was interrupted (counted, not kept)"
    suite = ET.fromstring(results.junit(0.1, "2026-01-02T03:04:05+00:00")).find("testsuite")
    assert suite is not None
    assert (suite.get("failures"), suite.get("errors")) == ("1", "1")


def test_failures_are_kept_up_to_the_limit_and_everything_is_counted() -> None:
    results = ServeResults(keep=3)
    for number in range(5):
        results.add("echo", connection(number, passed=False))
    results.add("echo", connection(5))
    results.add("echo", connection(6, error="cannot run"))
    results.add("greet", connection(7))
    assert [r.name.split()[1] for r in results.kept] == ["#3", "#4", "#6"]
    assert results.summary() == {
        "total": 8, "passed": 2, "failed": 5, "error": 1, "interrupted": 0}  # fmt: skip
    assert not results.all_passed
    assert render_summary(results, 0.5, Style()) == "2 passed, 5 failed, 1 could not run in 0.50s"
    assert [r.outcome for r in results] == [
        *["failed", "failed", "error"],
        *["passed", "passed", "failed", "failed", "failed"],
    ]
    assert [r.outcome for r in results[-2:]] == ["failed", "failed"]
    assert results[0] is results.kept[0]
    assert results[3].outcome == "passed"
    with pytest.raises(IndexError):
        results[8]
    listed = [(r.name, r.outcome) for r in results.for_reports()]
    assert listed[3:] == [
        ("echo: 1 connections passed (counted, not listed one by one)", "passed"),
        ("greet: 1 connections passed (counted, not listed one by one)", "passed"),
        ("3 earlier connections did not pass (counted; the reports list the latest 3)", "failed"),
    ]


def test_reports_count_every_connection_and_say_what_they_list() -> None:
    results = ServeResults(keep=1)
    for number in range(3):
        results.add("echo", connection(number, passed=number != 1))
    document = json.loads(results.json_report(1.0, "2026-01-01T00:00:00+00:00"))
    assert document["summary"] == {
        "total": 3, "passed": 2, "failed": 1, "error": 0, "interrupted": 0}  # fmt: skip
    assert document["listed"].startswith("the latest 1 connections that did not pass")
    assert [s["outcome"] for s in document["scenarios"]] == ["failed", "passed"]
    root = ET.fromstring(results.junit(1.0, "2026-01-01T00:00:00+00:00"))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    assert root.get("tests") == "3"
    listed = suite.find("properties/property[@name='listed']")
    assert listed is not None
    assert "counted per scenario" in str(listed.get("value"))
    assert len(suite.findall("testcase")) == 2
