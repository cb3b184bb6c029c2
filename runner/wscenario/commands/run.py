"""``wscenario run``: run client scenarios against real servers and report each step.

Scenarios run one at a time (live output, step by step) or ``--jobs N`` at a time (each
scenario's output printed whole when it ends). ``--junit`` and ``--report`` files are written
when the run ends, also when Ctrl-C (SIGINT) or SIGTERM stops it: scenarios under way are cut
short and their connections closed with 1001 (a second signal stops at once). Exit code: 0 all
passed, 1 any failed, 3 any could not run, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import anyio

from wscenario.cli import EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from wscenario.commands.given_url import checked_url
from wscenario.commands.limit_options import parse_limits
from wscenario.commands.record_options import recording_from_args
from wscenario.commands.scenario_selection import parse_vars, select_scenarios
from wscenario.core.model import Scenario
from wscenario.core.units import parse_duration
from wscenario.engine.client import ScenarioInterrupted, run_client_scenario
from wscenario.engine.transcript_tap import Recording, recording
from wscenario.errors import ScenarioLoadError, UsageError
from wscenario.report.console import (
    Style,
    render_end,
    render_header,
    render_scenario,
    render_step,
    render_summary,
    write_lines,
)
from wscenario.report.json_report import write_report
from wscenario.report.junit import write_junit
from wscenario.report.results import ScenarioResult, StepResult, not_run, not_started


def run(args: argparse.Namespace) -> int:
    """Run the ``run`` command; returns the exit code."""
    out: TextIO = sys.stdout
    overrides = parse_vars(args.var)
    limits = parse_limits(args.limit)
    timeout = _parse_timeout(args.timeout)
    if args.jobs < 1:
        raise UsageError(f"--jobs expects a positive number, got {args.jobs}")
    url = None if args.url is None else checked_url(args.url, "--url")
    record = recording_from_args(args)
    try:
        selection = select_scenarios(args.paths, overrides, "client", limits=limits, env=os.environ)
    except ScenarioLoadError as exc:
        for diagnostic in exc.diagnostics:
            sys.stderr.write(diagnostic.render() + "\n")
        return EXIT_USAGE
    scenarios = [_adjust(s, url=url, timeout=timeout) for s in selection.scenarios]
    style = Style.for_stream(out, no_color=args.no_color)
    if selection.skipped:
        count = selection.skipped
        plural = "s" if count != 1 else ""
        note = f"skipped {count} server scenario{plural} (run them with 'wscenario serve')"
        write_lines(out, [note])
    if not scenarios:
        raise UsageError("no client scenarios to run")
    started = time.perf_counter()
    timestamp = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        results, interrupted = anyio.run(
            _run_all, scenarios, args.jobs, style, out, args.debug, record
        )
    finally:
        if record is not None:
            record.close_all()
    elapsed = time.perf_counter() - started
    if interrupted:
        unfinished = sum(r.outcome == "interrupted" for r in results)
        write_lines(
            out, [f"interrupted: {unfinished} of {len(scenarios)} scenarios did not finish"]
        )
    write_lines(out, [render_summary(results, elapsed, style)])
    if args.junit:
        write_junit(Path(args.junit), results, elapsed, timestamp)
    if args.report:
        write_report(Path(args.report), results, elapsed, timestamp)
    code = exit_code(results, interrupted=interrupted)
    if record is not None and record.errors and code == EXIT_OK:
        return EXIT_CANNOT_RUN  # a transcript could not be written in full
    return code


def exit_code(results: Sequence[ScenarioResult], *, interrupted: bool = False) -> int:
    """130 if interrupted, 3 if any scenario could not run, 1 if any failed, else 0."""
    if interrupted:
        return EXIT_INTERRUPTED
    outcomes = {r.outcome for r in results}
    if "error" in outcomes:
        return EXIT_CANNOT_RUN
    return EXIT_FAILED if "failed" in outcomes else EXIT_OK


def _parse_timeout(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(_number_or_text(value))
    except ValueError:
        raise UsageError(f"--timeout expects a duration (250ms, 2s, 1m), got {value!r}") from None


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def _adjust(scenario: Scenario, *, url: str | None, timeout: float | None) -> Scenario:
    """Apply ``--url`` (the client's url) and ``--timeout`` (the default expect wait)."""
    if url is not None and scenario.client is not None:
        scenario = replace(scenario, client=replace(scenario.client, url=url))
    if timeout is not None:
        scenario = replace(scenario, timeout=timeout)
    return scenario


async def _run_all(
    scenarios: Sequence[Scenario],
    jobs: int,
    style: Style,
    out: TextIO,
    debug: bool,
    record: Recording | None = None,
) -> tuple[list[ScenarioResult], bool]:
    """Run every scenario, ``jobs`` at a time; ``True`` as second value if a signal stopped it.

    With ``record``, each connection a scenario makes writes a transcript named after it.

    An unexpected error in one scenario makes it a could-not-run result (``debug``: raised).
    A scenario a signal stopped, or kept from starting, is an ``interrupted`` result.
    """
    results: dict[int, ScenarioResult] = {}
    limiter = anyio.CapacityLimiter(jobs)
    live = jobs == 1
    running: set[anyio.CancelScope] = set()
    stopping = False

    async def one(index: int, scenario: Scenario) -> None:
        async with limiter:
            if stopping:
                return
            if live:
                write_lines(out, render_header(scenario.name, str(scenario.path), style))

            def on_step(step: StepResult) -> None:
                if live:
                    write_lines(out, render_step(step, style))

            stop = anyio.CancelScope()
            running.add(stop)
            try:
                with recording(record, scenario.name):
                    result = await run_client_scenario(
                        scenario, env=os.environ, on_step=on_step, stop=stop
                    )
            except ScenarioInterrupted as exc:
                result = exc.result
            except Exception as exc:
                if debug:
                    raise
                error = f"internal error: {type(exc).__name__}: {exc} (--debug shows where)"
                result = not_run(
                    scenario.name, str(scenario.path), "client", error, len(scenario.steps)
                )
            finally:
                running.discard(stop)
            results[index] = result
            write_lines(out, render_end(result, style) if live else render_scenario(result, style))

    async def watch_signals(scope: anyio.CancelScope) -> None:
        nonlocal stopping
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if stopping:
                    scope.cancel()
                    return
                stopping = True
                if record is not None:
                    record.interrupted = True
                for stop in running:
                    stop.cancel()

    async with anyio.create_task_group() as group:
        if sys.platform != "win32":
            group.start_soon(watch_signals, group.cancel_scope)
        async with anyio.create_task_group() as runs:
            for index, scenario in enumerate(scenarios):
                runs.start_soon(one, index, scenario)
        group.cancel_scope.cancel()
    return [
        results.get(index) or not_started(scenario.name, str(scenario.path), len(scenario.steps))
        for index, scenario in enumerate(scenarios)
    ], stopping
