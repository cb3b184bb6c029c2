"""JUnit XML: one test suite, one test case per scenario, the failing step in ``<failure>``.

CI systems (GitLab, Jenkins, GitHub test reporters) read this format. A failure's message is
the failing step and why; its text holds the details a console run shows, without colour.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from wscenario.report.console import Style, render_failure, render_scenario, safe_line
from wscenario.report.output_file import write_atomic
from wscenario.report.results import ScenarioResult

SUITE_NAME = "wscenario"


def junit_xml(results: Sequence[ScenarioResult], elapsed: float, timestamp: str) -> bytes:
    """The JUnit XML document for ``results`` (``timestamp`` in ISO 8601)."""
    failures = sum(1 for r in results if r.outcome == "failed")
    errors = sum(1 for r in results if r.outcome in ("error", "interrupted"))
    counts = {
        "tests": str(len(results)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": "0",
        "time": f"{elapsed:.3f}",
    }
    root = ET.Element("testsuites", {"name": SUITE_NAME, **counts})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE_NAME, "timestamp": timestamp, **counts})
    for result in results:
        suite.append(_testcase(result))
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def write_junit(
    path: Path, results: Sequence[ScenarioResult], elapsed: float, timestamp: str
) -> None:
    """Write the JUnit XML report to ``path`` atomically."""
    write_atomic(path, junit_xml(results, elapsed, timestamp))


def _testcase(result: ScenarioResult) -> ET.Element:
    plain = Style()
    case = ET.Element(
        "testcase",
        name=safe_line(result.name),
        classname=safe_line(Path(result.path).stem),
        file=safe_line(result.path),
        time=f"{result.session.duration:.3f}",
    )
    if result.outcome == "error":
        error = ET.SubElement(
            case, "error", message=safe_line(str(result.session.error)), type="CannotRun"
        )
        error.text = safe_line(str(result.session.error))
    elif result.outcome == "interrupted":
        message = f"interrupted by Ctrl-C or SIGTERM: {result.session.progress}"
        ET.SubElement(case, "error", message=message, type="Interrupted").text = message
    elif result.outcome == "failed":
        step = result.session.failed_step
        if step is None:
            message = "the session ended before every step ran"
            details = message
        else:
            reason = "; ".join(step.failure.message.splitlines()) if step.failure else ""
            message = f"{step.label}: {reason}"
            where = f"{step.position.path}:{step.position.line}"
            detail_lines = render_failure(step.failure, plain) if step.failure else []
            details = _lines([f"{step.label} ({where})", *detail_lines])
        failure = ET.SubElement(case, "failure", message=safe_line(message), type="mismatch")
        failure.text = details
    out = ET.SubElement(case, "system-out")
    out.text = _lines(render_scenario(result, plain))
    return case


def _lines(lines: Sequence[str]) -> str:
    return "\n".join(safe_line(line) for line in lines)
