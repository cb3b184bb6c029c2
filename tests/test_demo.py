"""The bundled demo: every scenario in ``scenarios/`` is valid, and the whole demo passes.

The fake servers are served from ``scenarios/`` (on a free port), and every client scenario
there runs against them with its URL pointed at that port; both sides must pass.
"""

from __future__ import annotations

import io
import os
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import anyio
import pytest

from wscenario.cli import build_parser
from wscenario.commands.serve import plan_from, serve_plan
from wscenario.core.model import Connect, Scenario
from wscenario.core.scenario_loader import check_scenario, find_scenario_files, load_scenario
from wscenario.engine.client import run_client_scenario
from wscenario.report.console import Style
from wscenario.report.results import ScenarioResult

DEMO = Path(__file__).resolve().parent.parent / "scenarios"
FILES = find_scenario_files([DEMO])


def test_the_demo_has_both_sides() -> None:
    sides = {load_scenario(path).side for path in FILES}
    assert sides == {"client", "server"}


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_every_demo_file_is_valid_without_warnings(path: Path) -> None:
    assert [d.render() for d in check_scenario(path)] == []


def on_port(scenario: Scenario, port: int) -> Scenario:
    """The client scenario with its URL (and every connect step's) pointed at ``port``."""
    assert scenario.client is not None

    def moved(url: str) -> str:
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))

    steps = tuple(
        replace(step, url=moved(step.url)) if isinstance(step, Connect) and step.url else step
        for step in scenario.steps
    )
    return replace(
        scenario, client=replace(scenario.client, url=moved(scenario.client.url)), steps=steps
    )


@pytest.mark.anyio
async def test_the_whole_demo_passes_on_both_sides() -> None:
    clients = [s for s in (load_scenario(path) for path in FILES) if s.client is not None]
    connections = sum(1 for c in clients for step in c.steps if isinstance(step, Connect))
    arguments = ["serve", str(DEMO), "--listen", "127.0.0.1:0"]
    plan = plan_from(build_parser().parse_args([*arguments, "--max-connections", str(connections)]))
    out = io.StringIO()
    served: list[ScenarioResult] = []
    client_results: list[ScenarioResult] = []

    async def serve(*, task_status: anyio.abc.TaskStatus[list[str]]) -> None:
        results, _ = await serve_plan(plan, out, Style(), task_status=task_status)
        served.extend(results)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            (address,) = await tasks.start(serve)
            port = urlsplit(address).port
            assert port is not None
            for scenario in clients:
                result = await run_client_scenario(on_port(scenario, port), env=os.environ)
                client_results.append(result)
    report = out.getvalue()
    assert [(r.name, r.outcome) for r in client_results] == [(c.name, "passed") for c in clients], (
        report
    )
    assert len(served) == connections, report
    assert all(r.outcome == "passed" for r in served), report
    assert "handshake refused with 401" in report
