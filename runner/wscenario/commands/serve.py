"""``wscenario serve``: run server scenarios as a scripted fake server.

Scenarios that listen on the same address share one listener and are routed by their
``path``. Every accepted connection runs its own copy of its scenario's steps and rules; its
progress is printed as it happens, each line tagged with the connection's number. The server
runs until Ctrl-C or SIGTERM (open connections are closed with 1001), or, with ``--once`` /
``--max-connections N``, until that many connections have finished. A handshake refused by a
scenario's own ``reject`` rule counts as a connection that followed its script; a request for
a path no scenario serves, or one turned away because the server is full, does not.

A server may run for hours: every finished connection is counted, but only the latest
``KEPT_RESULTS`` that did not pass are kept whole; the ``--junit`` and ``--report`` files list
those, one entry per scenario counting its passing connections, and say so.

Exit code: 0 when every connection followed its script, 1 otherwise, 2 for bad usage or an
invalid scenario, 3 when a listener cannot be opened (port in use).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import sys
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any, TextIO, get_args, overload
from xml.etree import ElementTree as ET

import anyio
from anyio.abc import SocketStream, TaskStatus
from anyio.streams.stapled import MultiListener

from wscenario.cli import EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from wscenario.commands.limit_options import parse_limits
from wscenario.commands.record_options import recording_from_args
from wscenario.commands.scenario_selection import parse_vars, select_scenarios
from wscenario.core.diagnostics import Position
from wscenario.core.handshake_policy import Refuse, render_handshake
from wscenario.core.model import JSON, Scenario
from wscenario.core.templating import TemplateError
from wscenario.core.urls import url_host
from wscenario.engine.server import (
    FakeServer,
    Route,
    Session,
    bound_port,
    is_loopback,
    listener_limits,
    open_listener,
    parse_listen,
)
from wscenario.engine.server_driver import Peer, ServerDriver
from wscenario.engine.steps import RECENT_EVENTS, StepRunner
from wscenario.engine.tls import server_context
from wscenario.engine.transcript_tap import mark_interrupted, recording
from wscenario.errors import ScenarioLoadError, UsageError
from wscenario.report.console import Style, render_end, render_step, render_summary, write_lines
from wscenario.report.json_report import report_document
from wscenario.report.junit import junit_xml
from wscenario.report.output_file import write_atomic
from wscenario.report.results import (
    Failure,
    ScenarioOutcome,
    ScenarioResult,
    SessionResult,
    StepResult,
)

SCENARIO_FAILED = 1011
"""The close code a connection gets when its script failed while it was still open."""

RULES_POLL = 60.0
"""Seconds an idle connection answered by rules sleeps between checks that it is still on."""

KEPT_RESULTS = 1000
"""Connections that did not pass whose results are kept for the reports (the latest ones)."""


def run(args: argparse.Namespace) -> int:
    """Serve until stopped; the exit code."""
    out: TextIO = sys.stdout
    try:
        plan = plan_from(args)
    except ScenarioLoadError as exc:
        for diagnostic in exc.diagnostics:
            sys.stderr.write(diagnostic.render() + "\n")
        return EXIT_USAGE
    record = recording_from_args(args)
    style = Style.for_stream(out, no_color=args.no_color)
    timestamp = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        with recording(record, "serve"):
            results, elapsed = anyio.run(serve_plan, plan, out, style)
    finally:
        if record is not None:
            record.close_all()
    write_lines(out, [render_summary(results, elapsed, style)])
    if args.junit:
        write_atomic(Path(args.junit), results.junit(elapsed, timestamp))
    if args.report:
        write_atomic(Path(args.report), results.json_report(elapsed, timestamp))
    if not results.all_passed:
        return EXIT_FAILED
    return EXIT_CANNOT_RUN if record is not None and record.errors else EXIT_OK


# ---------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class ListenerPlan:
    """One listening address and the scenarios it serves, keyed by path."""

    host: str
    port: int
    scenarios: Mapping[str, Scenario]

    @property
    def remote(self) -> bool:
        """Whether other machines can reach this listener."""
        return not is_loopback(self.host)


@dataclass(frozen=True)
class ServePlan:
    """Everything ``serve`` needs, checked before any socket is opened.

    ``tls`` is ``(certfile, keyfile, client_ca)``; ``stop_after`` the number of finished
    connections after which the server stops (``None``: run until stopped).
    """

    listeners: tuple[ListenerPlan, ...]
    stop_after: int | None = None
    tls: tuple[str, str, str | None] | None = None


def plan_from(args: argparse.Namespace) -> ServePlan:
    """Load the server scenarios and group them by listen address.

    Raises:
        UsageError: no server scenario, a client scenario named explicitly, two scenarios
            serving one path on one address, a non-local address without ``--allow-remote``,
            or TLS options that do not go together.
        ScenarioLoadError: a scenario file is invalid (all diagnostics of all files).
    """
    limits = parse_limits(args.limit)
    overrides = parse_vars(args.var)
    selection = select_scenarios(args.paths, overrides, "server", limits=limits, env=os.environ)
    if not selection.scenarios:
        raise UsageError("no server scenario in " + ", ".join(args.paths))
    scenarios = [rendered(scenario) for scenario in selection.scenarios]
    if args.max_connections is not None and args.max_connections < 1:
        raise UsageError(f"--max-connections must be 1 or more, got {args.max_connections}")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    if args.client_ca is not None and args.tls_cert is None:
        raise UsageError("--client-ca needs --tls-cert and --tls-key")
    groups: dict[tuple[str, int], dict[str, Scenario]] = {}
    for scenario in scenarios:
        assert scenario.server is not None
        address = parse_listen(args.listen or scenario.server.listen)
        paths = groups.setdefault(address, {})
        other = paths.get(scenario.server.path)
        if other is not None:
            raise UsageError(
                f"{other.path} and {scenario.path} both serve {scenario.server.path} "
                f"on {address[0]}:{address[1]}"
            )
        paths[scenario.server.path] = scenario
    listeners = tuple(ListenerPlan(host, port, paths) for (host, port), paths in groups.items())
    for listener in listeners:
        if listener.remote and not args.allow_remote:
            raise UsageError(
                f"listening on {listener.host} lets other machines connect; "
                "add --allow-remote to do that"
            )
    return ServePlan(
        listeners=listeners,
        stop_after=1 if args.once else args.max_connections,
        tls=(args.tls_cert, args.tls_key, args.client_ca) if args.tls_cert else None,
    )


def rendered(scenario: Scenario) -> Scenario:
    """The server scenario with the templates of its handshake rules filled in.

    Raises:
        UsageError: a handshake template cannot be filled in.
    """
    assert scenario.server is not None
    try:
        server = render_handshake(scenario.server, scenario.vars, os.environ)
    except TemplateError as exc:
        raise UsageError(f"{scenario.path}: server.handshake: {exc}") from exc
    return replace(scenario, server=server)


# ---------------------------------------------------------------------------- results


class ServeResults(Sequence[ScenarioResult]):
    """The finished connections, in memory that does not grow with the ones that passed.

    Every outcome is counted, and the passing connections of each scenario; only the results
    of the latest ``keep`` connections that did not pass are kept whole. As a sequence it holds
    one result per finished connection: the kept ones, then a shared stand-in for each of the
    others, so counting the outcomes over it counts every connection's.
    """

    def __init__(self, keep: int = KEPT_RESULTS) -> None:
        self.keep = keep
        self.counts: Counter[str] = Counter()
        self.passed: Counter[tuple[str, str]] = Counter()  # (scenario, path): passing connections
        self.kept: deque[ScenarioResult] = deque()
        self._kept_counts: Counter[str] = Counter()

    def add(self, scenario: str, result: ScenarioResult) -> None:
        """Count one finished connection; keep its result if it did not pass."""
        self.counts[result.outcome] += 1
        if result.outcome == "passed":
            self.passed[scenario, result.path] += 1
            return
        self.kept.append(result)
        self._kept_counts[result.outcome] += 1
        if len(self.kept) > self.keep:
            self._kept_counts[self.kept.popleft().outcome] -= 1

    @property
    def all_passed(self) -> bool:
        """Whether every finished connection followed its script."""
        return self.counts["passed"] == len(self)

    def for_reports(self) -> list[ScenarioResult]:
        """What the reports list: the kept results, one entry per scenario counting its passing
        connections and, when some were let go, one counting the others not listed."""
        entries = list(self.kept)
        for (scenario, path), count in self.passed.items():
            name = f"{scenario}: {count} connections passed (counted, not listed one by one)"
            entries.append(_counted(name, path))
        dropped = len(self) - self.counts["passed"] - len(self.kept)
        if dropped:
            name = (
                f"{dropped} earlier connections did not pass "
                f"(counted; the reports list the latest {self.keep})"
            )
            entries.append(_counted(name, "", failure=name))
        return entries

    def summary(self) -> dict[str, int]:
        """Connections by outcome, every one counted."""
        return {"total": len(self), **{outcome: self.counts[outcome] for outcome in OUTCOMES}}

    def json_report(self, elapsed: float, timestamp: str) -> bytes:
        """The ``--report`` document: the summary counts every connection; ``listed`` says
        which ones have an entry of their own."""
        document: dict[str, Any] = report_document(self.for_reports(), elapsed, timestamp)
        document["summary"] = self.summary()
        document["listed"] = self.listed
        return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode()

    def junit(self, elapsed: float, timestamp: str) -> bytes:
        """The ``--junit`` document: counts of every connection, entries as ``for_reports``."""
        root = ET.fromstring(junit_xml(self.for_reports(), elapsed, timestamp))
        counts = {
            "tests": str(len(self)),
            "failures": str(self.counts["failed"]),
            "errors": str(self.counts["error"] + self.counts["interrupted"]),
        }
        for suite in (root, *root.iter("testsuite")):
            suite.attrib.update(counts)
        suite = next(root.iter("testsuite"))
        properties = ET.Element("properties")
        ET.SubElement(properties, "property", name="listed", value=self.listed)
        suite.insert(0, properties)
        ET.indent(root)
        body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return body + b"\n"

    @property
    def listed(self) -> str:
        """Which connections the reports list one by one."""
        return (
            f"the latest {self.keep} connections that did not pass; the ones that passed are "
            "counted per scenario"
        )

    def __len__(self) -> int:
        return self.counts.total()

    def __iter__(self) -> Iterator[ScenarioResult]:
        yield from self.kept
        for outcome in OUTCOMES:
            yield from repeat(_STAND_INS[outcome], self._not_kept(outcome))

    @overload
    def __getitem__(self, index: int) -> ScenarioResult: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ScenarioResult]: ...

    def __getitem__(self, index: int | slice) -> ScenarioResult | Sequence[ScenarioResult]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        if index < len(self.kept):
            return self.kept[index]
        index -= len(self.kept)
        for outcome in OUTCOMES:
            if index < self._not_kept(outcome):
                return _STAND_INS[outcome]
            index -= self._not_kept(outcome)
        raise IndexError(index)  # pragma: no cover - the counts add up to len(self)

    def _not_kept(self, outcome: str) -> int:
        return self.counts[outcome] - self._kept_counts[outcome]


OUTCOMES: tuple[ScenarioOutcome, ...] = get_args(ScenarioOutcome)


def _counted(name: str, path: str, *, failure: str | None = None) -> ScenarioResult:
    """A report entry standing for connections that are counted, not kept."""
    steps: tuple[StepResult, ...] = ()
    if failure is not None:
        where = Position(path or "serve", 0, 0)
        steps = (StepResult(0, "connections", name, where, "", 0.0, 0.0, Failure(failure)),)
    return ScenarioResult(name, path, "server", SessionResult(steps, (), {}, 0.0, 0))


_STAND_INS = {
    "passed": _counted("a connection that passed (counted, not kept)", ""),
    "failed": _counted("a connection that did not pass (not kept)", "", failure="not kept"),
    "error": ScenarioResult(
        "a connection that could not run (counted, not kept)",
        "",
        "server",
        SessionResult((), (), {}, 0.0, 0, error="not kept"),
    ),
    "interrupted": ScenarioResult(
        "a connection that was interrupted (counted, not kept)",
        "",
        "server",
        SessionResult((), (), {}, 0.0, 0, interrupted=True),
    ),
}


# ---------------------------------------------------------------------------- serving


@dataclass
class ServeState:
    """A ``serve`` run as it goes: finished connections, and when to stop."""

    out: TextIO
    style: Style
    stop_after: int | None
    stop: anyio.Event = field(default_factory=anyio.Event)
    results: ServeResults = field(default_factory=ServeResults)
    numbered: int = 0

    def number(self) -> int:
        """A number for the next connection, shown on each of its output lines."""
        self.numbered += 1
        return self.numbered

    def print(self, number: int, lines: Sequence[str]) -> None:
        """Write a connection's lines, tagged with its number."""
        write_lines(self.out, [f"[#{number}] {line}" for line in lines])

    def finished(self, number: int, scenario: str, result: ScenarioResult) -> None:
        """Record and print one finished connection; stop when enough have finished."""
        self.results.add(scenario, result)
        self.print(number, render_end(result, self.style))
        if self.stop_after is not None and len(self.results) >= self.stop_after:
            self.stop.set()

    def refused(self, scenarios: Mapping[str, Scenario], peer: Peer, refusal: Refuse) -> None:
        """A refused handshake: passes when the scenario's own ``reject`` rule refused it."""
        number = self.number()
        scenario = scenarios.get(refusal.path) if refusal.path is not None else None
        label = f"handshake refused with {refusal.status}: {refusal.why}"
        pointer = "/server/handshake"
        if scenario is not None:
            name, path, failure = scenario.name, str(scenario.path), None
            where = Position(path, 1, 1)
            if refusal.source is not None:  # the check that failed, where it was written
                pointer, where = refusal.source.pointer, refusal.source.position
        else:
            name, path = "unserved request", ""
            failure = Failure(label)
            where = Position(f"{peer}", 0, 0)
        step = StepResult(0, "handshake", label, where, pointer, 0.0, 0.0, failure)
        session = SessionResult((step,), (), {}, 0.0, 1)
        result = ScenarioResult(f"{name} #{number} {peer}", path, "server", session)
        self.print(number, render_step(step, self.style))
        self.finished(number, name, result)

    def session_for(self, scenario: Scenario) -> Session:
        """What each connection routed to ``scenario`` runs: its steps, then its rules."""

        async def session(driver: ServerDriver) -> None:
            number = self.number()
            name = f"{scenario.name} #{number} {driver.peer}"
            path = driver.connect_value()["path"]  # without the query, which may hold tokens
            self.print(number, [f"{name} connected to {path}"])

            failed_first = False  # a step or rule failed before any stop was asked for

            def on_step(step: StepResult) -> None:
                nonlocal failed_first
                failed_first = failed_first or (step.failure is not None and not self.stop.is_set())
                self.print(number, render_step(step, self.style))

            variables: dict[str, JSON] = dict(scenario.vars)
            # a connection may live for hours: its report keeps the latest events only
            runner = StepRunner(
                scenario,
                driver,
                variables=variables,
                env=os.environ,
                on_step=on_step,
                keep_events=RECENT_EVENTS,
            )
            try:
                outcome = await runner.run_steps()
                if outcome.failed_step is not None:
                    if not driver.ended:
                        await driver.close(SCENARIO_FAILED, "scenario failed")
                elif not driver.reading_stopped:
                    await runner.serve_rules(poll=RULES_POLL)
            finally:
                summary = runner.result(total_steps=len(scenario.steps))
                result = ScenarioResult(name, str(scenario.path), "server", summary)
                cut = self.stop.is_set() and summary.error is None and not failed_first
                if cut and not summary.passed:
                    result = result.stopped()  # cut short by the server's stop
                self.finished(number, scenario.name, result)

        return session


async def serve_plan(
    plan: ServePlan,
    out: TextIO,
    style: Style,
    *,
    task_status: TaskStatus[list[str]] = anyio.TASK_STATUS_IGNORED,
) -> tuple[ServeResults, float]:
    """Open every listener, serve until Ctrl-C, SIGTERM or ``plan.stop_after`` connections;
    the results and the seconds it ran.

    ``task_status`` gets the listeners' addresses (``ws://127.0.0.1:8765``) once they listen.

    Raises:
        CannotRun: a listener cannot be opened, or the TLS files cannot be used.
    """
    state = ServeState(out=out, style=style, stop_after=plan.stop_after)
    started = anyio.current_time()
    await serve_until_stopped(plan, state, signals=True, task_status=task_status)
    return state.results, anyio.current_time() - started


async def serve_until_stopped(
    plan: ServePlan,
    state: ServeState,
    *,
    signals: bool = False,
    task_status: TaskStatus[list[str]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Open every listener and serve the plan's scenarios until ``state.stop`` is set (with
    ``signals``, by Ctrl-C or SIGTERM too: the main thread only can catch them).

    ``task_status`` gets the listeners' addresses (``ws://127.0.0.1:8765``) once they listen.

    Raises:
        CannotRun: a listener cannot be opened, or the TLS files cannot be used.
    """
    tls = server_context(plan.tls[0], plan.tls[1], plan.tls[2]) if plan.tls else None
    scheme = "wss" if tls else "ws"
    listeners: list[MultiListener[SocketStream]] = []
    try:
        for item in plan.listeners:
            listeners.append(await open_listener(item.host, item.port))  # noqa: PERF401
    except BaseException:
        for listener in listeners:
            await listener.aclose()
        raise
    servers = [_server_for(item, state, tls) for item in plan.listeners]
    addresses = []
    async with anyio.create_task_group() as tasks:
        watching = await tasks.start(_stop_on_signal, state.stop) if signals else None
        for item, server, listener in zip(plan.listeners, servers, listeners, strict=True):
            await tasks.start(server.serve, listener)
            if item.remote:
                write_lines(sys.stderr, [f"warning: {item.host} lets other machines connect"])
            host = url_host(item.host)
            address = f"{scheme}://{host}:{bound_port(listener)}"
            addresses.append(address)
            write_lines(state.out, [f"listening on {address} (paths: {', '.join(item.scenarios)})"])
        task_status.started(addresses)
        await state.stop.wait()
        if watching is not None:
            watching.cancel()
        for server in servers:
            server.stop()


def _server_for(item: ListenerPlan, state: ServeState, tls: ssl.SSLContext | None) -> FakeServer:
    routes = {
        path: Route(scenario.server, state.session_for(scenario), scenario.limits)
        for path, scenario in item.scenarios.items()
        if scenario.server is not None
    }

    def refused(peer: Peer, refusal: Refuse) -> None:
        state.refused(item.scenarios, peer, refusal)

    limits = listener_limits([scenario.limits for scenario in item.scenarios.values()])
    return FakeServer(routes, limits=limits, tls=tls, on_refused=refused)


async def _stop_on_signal(
    stop: anyio.Event, *, task_status: TaskStatus[anyio.CancelScope] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Set ``stop`` on SIGINT or SIGTERM; started once the signals are caught."""
    with (
        anyio.CancelScope() as scope,
        anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals,
    ):
        task_status.started(scope)
        async for _ in signals:
            mark_interrupted()
            stop.set()
            return
