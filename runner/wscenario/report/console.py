"""Readable run output: each step's outcome as it happens, failures in detail, a summary.

Rendering is split from writing: the ``render_*`` functions return lines, so a live run prints
them step by step while parallel runs print a scenario's lines in one piece. ``Style`` decides
the marks (``✓``/``✗`` on a terminal, ``PASS``/``FAIL`` elsewhere) and whether to colour.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from wscenario.core.diff import format_value, safe_text
from wscenario.core.model import JSON
from wscenario.report.labels import format_duration
from wscenario.report.results import Failure, ScenarioResult, StepResult

_RESET = "\x1b[0m"
_GREEN = "\x1b[32m"
_RED = "\x1b[31m"
_YELLOW = "\x1b[33m"
_DIM = "\x1b[2m"
_BOLD = "\x1b[1m"

LINE = 2000
"""Longest line of received data shown before it is cut (with its full length)."""
VALUE = 60
"""Longest variable value shown."""
INDENT = "  "
DETAIL = "      "


@dataclass(frozen=True)
class Style:
    """How output looks: ``marks`` uses ``✓``/``✗`` (else ``PASS``/``FAIL``), ``color`` ANSI."""

    marks: bool = False
    color: bool = False

    @classmethod
    def for_stream(cls, stream: TextIO, *, no_color: bool = False) -> Style:
        """Marks on a terminal; colour on a terminal unless ``--no-color`` or ``NO_COLOR``."""
        tty = stream.isatty()
        return cls(marks=tty, color=tty and not no_color and not os.environ.get("NO_COLOR"))

    def paint(self, text: str, code: str) -> str:
        """``text`` in the ANSI style ``code`` when colouring, else unchanged."""
        return f"{code}{text}{_RESET}" if self.color and text else text

    def mark(self, passed: bool) -> str:
        """The outcome mark of one step."""
        if passed:
            return self.paint("✓" if self.marks else "PASS", _GREEN)
        return self.paint("✗" if self.marks else "FAIL", _RED)


def render_header(name: str, path: str, style: Style) -> list[str]:
    """The line that opens a scenario's output."""
    return [f"{style.paint(clip_name(name), _BOLD)}  {style.paint(path, _DIM)}"]


def render_step(step: StepResult, style: Style) -> list[str]:
    """One line for a step; for a failure, the details follow, indented."""
    where = f"{step.position.path}:{step.position.line}"
    timing = format_duration(step.duration)
    lines = [
        f"{INDENT}{style.mark(step.failure is None)} {step.label}  "
        + style.paint(f"{where}  {timing}", _DIM)
    ]
    if step.failure is not None:
        lines.extend(DETAIL + line for line in render_failure(step.failure, style))
    return lines


def render_failure(failure: Failure, style: Style) -> list[str]:
    """What was expected, what arrived, the diff and the variables in play."""
    lines = [style.paint(safe_line(line), _RED) for line in failure.message.splitlines()]
    if failure.expected is not None:
        lines.append(f"expected: {safe_line(failure.expected)}")
    if failure.received is not None:
        lines.append(f"received: {safe_line(failure.received)}")
    if failure.diff:
        lines.append("diff:")
        lines.extend(INDENT + _paint_diff_line(safe_line(line), style) for line in failure.diff)
    if failure.variables:
        lines.append(f"variables: {format_variables(failure.variables)}")
    return lines


def render_end(result: ScenarioResult, style: Style) -> list[str]:
    """The line that closes a scenario's output: its outcome, where it stopped, its time."""
    session = result.session
    took = format_duration(session.duration)
    name = clip_name(result.name)
    if result.outcome == "error":
        word = style.paint("ERROR", _YELLOW)
        return [f"{word} {name}: could not run: {safe_line(str(session.error))} ({took})"]
    if result.outcome == "interrupted":
        word = style.paint("INTERRUPTED", _YELLOW)
        return [f"{word} {name}: {session.progress} ({took})"]
    if result.outcome == "passed":
        return [f"{style.paint('PASSED', _GREEN)} {name} ({took})"]
    failed = session.failed_step
    if failed is None:
        detail = session.progress
    else:
        detail = f"failed at {failed.position.path}:{failed.position.line}"
        not_run = session.total_steps - session.steps_run
        if not_run > 0:
            detail += f", {not_run} step{'s' if not_run != 1 else ''} not run"
    return [f"{style.paint('FAILED', _RED)} {name}: {detail} ({took})"]


def render_scenario(result: ScenarioResult, style: Style) -> list[str]:
    """A whole scenario's output at once: header, each step, end line."""
    lines = render_header(result.name, result.path, style)
    for step in result.session.steps:
        lines.extend(render_step(step, style))
    lines.extend(render_end(result, style))
    return lines


def render_summary(results: Sequence[ScenarioResult], elapsed: float, style: Style) -> str:
    """``3 passed, 1 failed in 0.42s`` (errors and interruptions counted when there are any)."""
    counts = {"passed": 0, "failed": 0, "error": 0, "interrupted": 0}
    for result in results:
        counts[result.outcome] += 1
    parts = [f"{counts['passed']} passed", f"{counts['failed']} failed"]
    if counts["error"]:
        parts.append(f"{counts['error']} could not run")
    if counts["interrupted"]:
        parts.append(f"{counts['interrupted']} interrupted")
    text = ", ".join(parts) + f" in {elapsed:.2f}s"
    colour = _GREEN if counts["passed"] == len(results) else _RED
    return style.paint(text, colour)


def format_variables(variables: Mapping[str, JSON]) -> str:
    """``user='alice', n=3``: each variable with its value, on one line."""
    return ", ".join(
        f"{name}={format_value(value, VALUE)}" for name, value in sorted(variables.items())
    )


def clip_name(name: str) -> str:
    """A scenario name made safe to print."""
    return safe_text(name, VALUE)


def write_lines(stream: TextIO, lines: Iterable[str]) -> None:
    """Write lines and flush, so output appears as it happens."""
    stream.write("".join(line + "\n" for line in lines))
    stream.flush()


def safe_line(text: str) -> str:
    """``text`` with control, escape and invisible characters escaped, cut if very long."""
    return safe_text(text, LINE)


def _paint_diff_line(line: str, style: Style) -> str:
    if line.startswith("+") and not line.startswith("+++"):
        return style.paint(line, _GREEN)
    if line.startswith("-") and not line.startswith("---"):
        return style.paint(line, _RED)
    return line
