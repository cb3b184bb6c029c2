"""Console output: exact text for failures, safe text for hostile input, marks and colour."""

from __future__ import annotations

import io

import pytest

from tests.report.sample import JSON_FAILURE, could_not_run, failed, passed
from wscenario.report.console import (
    Style,
    render_failure,
    render_scenario,
    render_summary,
    write_lines,
)
from wscenario.report.results import Failure

PLAIN = Style()


def test_failure_with_a_json_diff_exact_text() -> None:
    assert render_scenario(failed(), PLAIN) == [
        "login  scenarios/echo.yaml",
        "  PASS connect  scenarios/echo.yaml:7  3ms",
        "  FAIL expect message {…}  scenarios/echo.yaml:12  3ms",
        "      at /user: expected 'alice', got 'bob'",
        '      expected: message {"type":"welcome","user":"alice"}',
        '      received: message \'{"type":"welcome","user":"bob"}\'',
        "      diff:",
        "        --- expected",
        "        +++ received",
        "        @@ -1,4 +1,4 @@",
        "         {",
        '           "type": "welcome",',
        '        -  "user": "alice"',
        '        +  "user": "bob"',
        "         }",
        "      variables: n=3, user='alice'",
        "FAILED login: failed at scenarios/echo.yaml:12, 2 steps not run (500ms)",
    ]


def test_passed_and_could_not_run() -> None:
    assert render_scenario(passed(), PLAIN)[-1] == "PASSED echo (120ms)"
    assert render_scenario(could_not_run(), PLAIN) == [
        "tls  scenarios/tls.yaml",
        "ERROR tls: could not run: cannot read certs/ca.pem: No such file or directory (1ms)",
    ]


def test_interrupted() -> None:
    assert render_scenario(failed().stopped(), PLAIN)[-1] == (
        "INTERRUPTED login: 2 of 4 steps ran (500ms)"
    )
    assert render_scenario(passed().stopped(), PLAIN)[-1] == (
        "INTERRUPTED echo: 3 steps ran (120ms)"  # the total is no more than what ran
    )
    assert render_summary([passed(), passed().stopped()], 1.0, PLAIN) == (
        "1 passed, 0 failed, 1 interrupted in 1.00s"
    )


def test_escape_sequences_in_received_text_are_shown_not_obeyed() -> None:
    hostile = Failure(
        message="text differs",
        expected="message 'ok'",
        received="message '\x1b[31mred\x1b[0m'\r\n",
        diff=("-ok", "+\x1b[31mred"),
        variables={"sid": "\x1b]0;title\x07"},
    )
    lines = render_failure(hostile, PLAIN)
    text = "\n".join(lines)
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "received: message '\\x1b[31mred\\x1b[0m'\\r\\n" in lines
    assert "  +\\x1b[31mred" in lines
    assert "variables: sid='\\x1b]0;title\\x07'" in lines


def test_hostile_scenario_name_is_escaped() -> None:
    lines = render_scenario(passed(name="evil\x1b[2Jname"), PLAIN)
    assert lines[0] == "evil\\x1b[2Jname  scenarios/echo.yaml"


def test_summary() -> None:
    results = [passed(), passed(), passed(), failed()]
    assert render_summary(results, 0.4213, PLAIN) == "3 passed, 1 failed in 0.42s"
    assert render_summary([passed(), could_not_run()], 1.0, PLAIN) == (
        "1 passed, 0 failed, 1 could not run in 1.00s"
    )


def test_terminal_style_uses_marks_and_colour() -> None:
    style = Style(marks=True, color=True)
    lines = render_scenario(failed(), style)
    assert lines[1].startswith("  \x1b[32m✓\x1b[0m connect")
    assert lines[2].startswith("  \x1b[31m✗\x1b[0m expect")
    assert '        \x1b[31m-  "user": "alice"\x1b[0m' in lines
    assert render_summary([passed()], 0.1, style) == "\x1b[32m1 passed, 0 failed in 0.10s\x1b[0m"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_style_follows_the_stream_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Style.for_stream(io.StringIO()) == Style(marks=False, color=False)
    assert Style.for_stream(FakeTerminal()) == Style(marks=True, color=True)
    assert Style.for_stream(FakeTerminal(), no_color=True) == Style(marks=True, color=False)
    monkeypatch.setenv("NO_COLOR", "1")
    assert Style.for_stream(FakeTerminal()) == Style(marks=True, color=False)


def test_each_mismatch_gets_its_own_line() -> None:
    failure = Failure("/user: expected 'alice', got 'bob'\n/n: missing key 'n'")
    assert render_failure(failure, PLAIN) == [
        "/user: expected 'alice', got 'bob'",
        "/n: missing key 'n'",
    ]


def test_failure_without_details_is_one_line() -> None:
    assert render_failure(Failure("no event within 5s"), PLAIN) == ["no event within 5s"]
    assert render_failure(JSON_FAILURE, PLAIN)[-1] == "variables: n=3, user='alice'"


def test_write_lines_flushes_whole_lines() -> None:
    out = io.StringIO()
    write_lines(out, ["a", "b"])
    assert out.getvalue() == "a\nb\n"
