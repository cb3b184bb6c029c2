"""The JSON report: scenarios, steps, outcomes, events with timings; binary as base64."""

from __future__ import annotations

import json
from pathlib import Path

from tests.report.sample import could_not_run, failed, passed
from wscenario import __version__
from wscenario.report.json_report import report_document, write_report

STAMP = "2026-01-02T03:04:05+00:00"


def test_document_shape() -> None:
    results = [passed(), failed(), could_not_run(), passed("stopped").stopped()]
    document = report_document(results, 0.75, STAMP)
    assert document["wscenario_report"] == 1
    assert document["tool_version"] == __version__
    assert document["started"] == STAMP
    summary = {"total": 4, "passed": 1, "failed": 1, "error": 1, "interrupted": 1}
    assert document["summary"] == summary
    echo, login, tls, _ = document["scenarios"]
    outcomes = [s["outcome"] for s in document["scenarios"]]
    assert outcomes == ["passed", "failed", "error", "interrupted"]
    assert echo["steps"][1] == {
        "index": 1,
        "kind": "send",
        "label": "send 'hi'",
        "position": {"path": "scenarios/echo.yaml", "line": 8, "col": 5},
        "pointer": "/steps/1",
        "outcome": "passed",
        "started": 0.01,
        "duration": 0.003,
        "failure": None,
    }
    assert echo["events"][1] == {
        "t": 0.02,
        "name": "message",
        "value": "hi",
        "disposition": "step",
        "by": "/steps/2",
    }
    assert echo["events"][2]["value"] == {"base64": "AP8="}
    assert echo["events"][0]["value"] == {"status": 101, "message": "Switching Protocols"}
    failure = login["steps"][1]["failure"]
    assert failure["message"] == "at /user: expected 'alice', got 'bob'"
    assert failure["variables"] == {"user": "alice", "n": 3}
    assert '+  "user": "bob"' in failure["diff"]
    assert tls["error"] == "cannot read certs/ca.pem: No such file or directory"


def test_written_file_is_json(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_report(target, [failed()], 0.5, STAMP)
    loaded = json.loads(target.read_text(encoding="utf-8"))
    assert loaded["scenarios"][0]["name"] == "login"
    assert loaded["scenarios"][0]["total_steps"] == 4
