"""The ``--report FILE.json`` document: scenarios, steps, outcomes and events with timings.

Binary values (a binary message, a ping's data) are written as ``{"base64": "..."}`` so the
document stays JSON; everything else is written as observed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from wscenario._version import __version__
from wscenario.core.events import EventValue
from wscenario.report.output_file import write_atomic
from wscenario.report.results import ScenarioResult, StepResult

REPORT_VERSION = 1


def report_document(
    results: Sequence[ScenarioResult], elapsed: float, timestamp: str
) -> dict[str, Any]:
    """The report as a JSON-ready mapping (``timestamp`` in ISO 8601)."""
    outcomes = [r.outcome for r in results]
    return {
        "wscenario_report": REPORT_VERSION,
        "tool_version": __version__,
        "started": timestamp,
        "duration": round(elapsed, 6),
        "summary": {
            "total": len(results),
            "passed": outcomes.count("passed"),
            "failed": outcomes.count("failed"),
            "error": outcomes.count("error"),
            "interrupted": outcomes.count("interrupted"),
        },
        "scenarios": [_scenario(r) for r in results],
    }


def report_json(results: Sequence[ScenarioResult], elapsed: float, timestamp: str) -> bytes:
    """The report serialised as indented UTF-8 JSON."""
    document = report_document(results, elapsed, timestamp)
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode()


def write_report(
    path: Path, results: Sequence[ScenarioResult], elapsed: float, timestamp: str
) -> None:
    """Write the JSON report to ``path`` atomically."""
    write_atomic(path, report_json(results, elapsed, timestamp))


def _scenario(result: ScenarioResult) -> dict[str, Any]:
    session = result.session
    return {
        "name": result.name,
        "path": result.path,
        "side": result.side,
        "outcome": result.outcome,
        "error": session.error,
        "duration": round(session.duration, 6),
        "total_steps": session.total_steps,
        "steps": [_step(s) for s in session.steps],
        "events": [
            {
                "t": round(e.t, 6),
                "name": e.name,
                "value": _value(e.value),
                "disposition": e.disposition,
                "by": e.by,
            }
            for e in session.events
        ],
        "variables": dict(session.variables),
    }


def _step(step: StepResult) -> dict[str, Any]:
    return {
        "index": step.index,
        "kind": step.kind,
        "label": step.label,
        "position": asdict(step.position),
        "pointer": step.pointer,
        "outcome": step.outcome,
        "started": round(step.started, 6),
        "duration": round(step.duration, 6),
        "failure": None
        if step.failure is None
        else {
            "message": step.failure.message,
            "expected": step.failure.expected,
            "received": step.failure.received,
            "diff": list(step.failure.diff),
            "variables": dict(step.failure.variables),
        },
    }


def _value(value: EventValue) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {key: _value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_value(item) for item in value]
    return value
