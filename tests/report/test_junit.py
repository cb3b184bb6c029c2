"""JUnit XML: parses, counts outcomes, carries the failing step and its details."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tests.report.sample import could_not_run, failed, passed
from wscenario.report.junit import junit_xml, write_junit
from wscenario.report.results import Failure

STAMP = "2026-01-02T03:04:05+00:00"


def test_one_suite_one_case_per_scenario() -> None:
    root = ET.fromstring(junit_xml([passed(), failed(), could_not_run()], 1.5, STAMP))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.attrib | {} == {
        "name": "wscenario",
        "timestamp": STAMP,
        "tests": "3",
        "failures": "1",
        "errors": "1",
        "skipped": "0",
        "time": "1.500",
    }
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["echo", "login", "tls"]
    assert [c.get("file") for c in cases] == [
        "scenarios/echo.yaml",
        "scenarios/echo.yaml",
        "scenarios/tls.yaml",
    ]
    assert cases[0].find("failure") is None
    assert cases[0].find("error") is None


def test_failure_names_the_step_and_holds_the_details() -> None:
    root = ET.fromstring(junit_xml([failed()], 0.5, STAMP))
    case = root.find("testsuite/testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == ("expect message {…}: at /user: expected 'alice', got 'bob'")
    details = (failure.text or "").splitlines()
    assert details[0] == "expect message {…} (scenarios/echo.yaml:12)"
    assert '  +  "user": "bob"' in details
    assert "variables: n=3, user='alice'" in details
    out = case.find("system-out")
    assert out is not None
    assert "FAIL expect message {…}" in (out.text or "")


def test_could_not_run_is_an_error() -> None:
    case = ET.fromstring(junit_xml([could_not_run()], 0.1, STAMP)).find("testsuite/testcase")
    assert case is not None
    error = case.find("error")
    assert error is not None
    assert error.get("message") == "cannot read certs/ca.pem: No such file or directory"


def test_an_interrupted_scenario_is_an_error_saying_how_far_it_got() -> None:
    root = ET.fromstring(junit_xml([passed(), failed().stopped()], 0.1, STAMP))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("failures"), suite.get("errors")) == ("0", "1")
    [error] = suite.findall("testcase/error")
    assert error.get("type") == "Interrupted"
    assert error.get("message") == "interrupted by Ctrl-C or SIGTERM: 2 of 4 steps ran"


def test_control_characters_never_break_the_xml() -> None:
    hostile = Failure(message="bad \x00\x1b[31m\x07", received="message '\x0c'")
    root = ET.fromstring(junit_xml([failed(name="a\x01b", failure=hostile)], 0.1, STAMP))
    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == "a\\x01b"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "expect message {…}: bad \\x00\\x1b[31m\\x07"


def test_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "junit.xml"
    target.write_text("old")
    write_junit(target, [passed()], 0.2, STAMP)
    assert ET.parse(target).getroot().get("tests") == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["junit.xml"]
