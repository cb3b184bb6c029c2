"""Replay a transcript: one side of it becomes scenario steps, run by the step runner.

Replay is not an engine of its own. Records are read one at a time, each becomes steps
(``core.convert.StepMaker``) and each step runs as soon as it is made (``StepRunner.run_step``,
streaming), so memory stays flat however long the transcript is:

* ``replay_against`` plays the client over the raw-profile client driver (protocol truth);
* ``replay_serve`` plays the server to every client that connects, over the fake server.

A step's position is the transcript line it came from (``chat.jsonl:42``). With a ``Timing``
scale, this side's calls wait for their recorded time, as an absolute deadline from the moment
the connection opened (the ``open``/``connect`` step), so no error accumulates; expectations
wait for their event as a scenario does. The transcript is checked in full (streaming) before
any connection is made, so a broken file is an error (exit 2) rather than half a replay.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import SocketStream, TaskStatus
from anyio.streams.stapled import MultiListener

from wscenario.core.convert import StepMaker, pointers_in, selected_protocol, to_model
from wscenario.core.diagnostics import Diagnostic, Position
from wscenario.core.model import (
    JSON,
    ClientSpec,
    Expect,
    Handshake,
    Limits,
    Scenario,
    ServerSpec,
    Side,
)
from wscenario.core.redaction import secret_order
from wscenario.core.transcript import (
    DEFAULT_MAX_LINE_LENGTH,
    Header,
    Record,
    Role,
    TranscriptEvent,
)
from wscenario.core.urls import url_host
from wscenario.engine.client import GOING_AWAY, unreachable_outcome
from wscenario.engine.raw_driver import RawClientDriver
from wscenario.engine.server import FakeServer, Route, bound_port
from wscenario.engine.server_driver import ServerDriver
from wscenario.engine.steps import StepCallback, StepRunner
from wscenario.engine.transcript_io import open_transcript
from wscenario.errors import ScenarioLoadError, WScenarioError
from wscenario.report.results import ScenarioResult, StepResult

MAX_LINE = DEFAULT_MAX_LINE_LENGTH
"""The longest transcript line read (bytes); a longer one is an error, not a memory spike."""

PRECISION = 0.002
"""The last stretch before a deadline is waited out by yielding, not by a timer."""

Warn = Callable[[str], object]


@dataclass(frozen=True)
class Timing:
    """How a replay paces this side's calls: ``scale`` 1 as recorded, 2 twice as fast.

    ``scale`` ``None`` sends everything as soon as the steps before it are done.
    """

    scale: float | None = 1.0

    def deadline(self, base: float, t: float) -> float | None:
        """When a call recorded at ``t`` is due, counting from ``base``."""
        return None if self.scale is None else base + t / self.scale


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay: pacing, JSON Pointers never compared, the wait for each event, the
    limits of the connections it makes or accepts, and how expected JSON is loosened:
    ``wildcards`` by JSON Pointer, ``loose`` for values that look volatile (as ``convert``)."""

    timing: Timing = field(default_factory=Timing)
    ignore: tuple[str, ...] = ()
    expect_timeout: float = 5.0
    limits: Limits = field(default_factory=Limits)
    wildcards: Mapping[str, JSON] = field(default_factory=dict)
    loose: bool = False

    def step_maker(
        self, side: Side, *, env: Mapping[str, str], url: str | None = None
    ) -> StepMaker:
        """What turns the records into steps for ``side``, with these options."""
        maker = StepMaker(
            side, url=url, env=env, loose=self.loose, wildcards=self.wildcards, ignore=self.ignore
        )
        maker.reuse_variable()
        return maker


@dataclass(frozen=True)
class TranscriptInfo:
    """What a replay needs to know before it starts: the url, request path, subprotocol."""

    url: str
    path: str
    protocol: str | None
    events: int
    unused: frozenset[str] = frozenset()
    """Of the pointers asked about, those no JSON message of the expected side reaches."""


# ---------------------------------------------------------------------------- reading


def read_records(path: Path, *, warn: Warn) -> Iterator[tuple[int, Record]]:
    """The transcript's records with their line numbers, the header first.

    What the reader skipped or found missing (a torn last line, no end record) is warned
    about once the file has been read.

    Raises:
        ScenarioLoadError: the file cannot be read, or a line is not a valid record.
    """
    transcript = open_transcript(path, MAX_LINE)
    yield from enumerate(transcript, start=1)
    for warning in transcript.warnings:
        warn(f"wscenario: warning: {path}: {warning}\n")


def check_transcript(
    path: Path, *, warn: Warn, pointers: Collection[str] = (), expected_from: Role = "server"
) -> TranscriptInfo:
    """Read the whole transcript once (streaming) and say what a replay needs.

    Of ``pointers`` (``--ignore`` and ``--match``), those that lead nowhere in every JSON
    text message ``expected_from`` sent come back as ``unused``: rules that never apply.

    Raises:
        ScenarioLoadError: the transcript is invalid (with the line), or has no handshake.
    """
    url = ""
    target: str | None = None
    protocol: str | None = None
    events = 0
    unused = set(pointers)
    for _, record in read_records(path, warn=warn):
        if isinstance(record, Header):
            url = record.url
        elif isinstance(record, TranscriptEvent):
            events += 1
            if unused and record.type == "text" and record.from_ == expected_from:
                unused -= pointers_in(record.fields["data"], unused)
            if record.type == "request" and target is None:
                target = record.fields["target"]
            elif record.type == "response" and protocol is None:
                protocol = selected_protocol(record.fields["headers"])
    if target is None:
        message = "the transcript has no opening handshake (request record)"
        raise ScenarioLoadError([Diagnostic(Position(str(path), 1, 1), message)])
    return TranscriptInfo(url, target.split("?", 1)[0] or "/", protocol, events, frozenset(unused))


# ---------------------------------------------------------------------------- playing


@dataclass
class Player:
    """Plays one side of one transcript over one driver, step by step as records are read.

    Failures and counts are kept (a streaming ``StepRunner``); the first failure stops it.
    """

    path: Path
    side: Side
    runner: StepRunner
    maker: StepMaker
    timing: Timing
    warn: Warn
    steps: int = 0
    _warned: set[str] = field(default_factory=set)

    async def play(self) -> bool:
        """Run every step; ``False`` at the first failure."""
        clock = self.runner.clock
        base = clock()
        name = str(self.path)
        for lineno, record in read_records(self.path, warn=_quiet):
            if isinstance(record, Header):
                continue
            for made in self.maker.steps(record):
                self._warn_missing()
                step = to_model(made, Position(name, lineno, 1), f"/{lineno - 1}")
                if step is None:
                    continue
                self.runner.variables.update(made.variables)
                due = self.timing.deadline(base, made.t) if made.call else None
                if due is not None:
                    await wait_until(due, clock)
                self.steps += 1
                if (await self.runner.run_step(step)).failure is not None:
                    return False
                if _opens(step):
                    base = clock() - made.t / (self.timing.scale or 1.0)
        return True

    def _warn_missing(self) -> None:
        for variable in sorted(self.maker.missing - self._warned, key=secret_order):
            self._warned.add(variable)
            self.warn(
                f"wscenario: warning: {variable} is not set; its redacted value is sent as is\n"
            )

    def result(self, name: str) -> ScenarioResult:
        """The outcome: failed steps, the latest events, and how many steps ran."""
        session = replace(self.runner.result(), variables={})  # its total: the steps begun
        return ScenarioResult(name, str(self.path), self.side, session)


def _quiet(_: str) -> None:
    """Warnings are given by the first reading (``check_transcript``), not again."""


def _opens(step: object) -> bool:
    return isinstance(step, Expect) and step.matcher.event in ("open", "connect")


async def wait_until(deadline: float, clock: Callable[[], float]) -> None:
    """Sleep until ``deadline`` on ``clock``; the last ``PRECISION`` seconds by yielding."""
    if deadline - clock() > PRECISION:
        await anyio.sleep_until(deadline - PRECISION)
    while clock() < deadline:  # a timer alone is not precise enough
        await anyio.lowlevel.checkpoint()


def _scenario(path: Path, options: ReplayOptions, **side: Any) -> Scenario:
    return Scenario(
        path=path,
        name=path.name,
        steps=(),
        ignore_pointers=options.ignore,
        timeout=options.expect_timeout,
        limits=options.limits,
        **side,
    )


async def replay_against(
    path: Path,
    url: str,
    options: ReplayOptions,
    *,
    env: Mapping[str, str],
    warn: Warn,
    on_step: StepCallback | None = None,
    stop: anyio.CancelScope | None = None,
) -> tuple[ScenarioResult, int]:
    """Play the client side of ``path`` against the server at ``url``.

    Returns the result and the number of steps that ran. Check the transcript first
    (``check_transcript``): a record found broken on the way raises ``ScenarioLoadError``.
    Cancelling ``stop`` (a scope not yet entered) cuts the replay short; the connection is
    then closed with 1001 and ``stop.cancelled_caught`` is true.
    """
    scenario = _scenario(path, options, client=ClientSpec(url=url, profile="raw"))
    driver = RawClientDriver(scenario.limits, warn=warn)
    runner = StepRunner(scenario, driver, variables={}, env=env, on_step=on_step, streaming=True)
    maker = options.step_maker("client", env=env, url=url)
    player = Player(path, "client", runner, maker, options.timing, warn)
    steps = anyio.CancelScope() if stop is None else stop
    try:
        async with driver:
            with steps:
                await player.play()
            if steps.cancelled_caught:
                await driver.hang_up(*GOING_AWAY)
    except (WScenarioError, OSError) as exc:
        if isinstance(exc, ScenarioLoadError):
            raise
        runner.error = runner.error or str(exc)
    result = player.result(path.name)
    return replace(result, session=unreachable_outcome(result.session, driver)), player.steps


@dataclass
class ServeReplay:
    """A fake server that plays the server side of a transcript to each client.

    ``on_step`` gets each step's result with the connection's number, ``on_result`` each
    finished connection's result; ``stop_after`` connections (or ``None``: until ``stop()``)
    are served, over TLS with a ``tls`` server context. ``finished`` is set once the server
    has stopped.
    """

    path: Path
    info: TranscriptInfo
    options: ReplayOptions
    env: Mapping[str, str]
    warn: Warn
    stop_after: int | None = None
    tls: ssl.SSLContext | None = None
    on_step: Callable[[int, StepResult], None] | None = None
    on_result: Callable[[ScenarioResult], object] | None = None
    results: list[ScenarioResult] = field(default_factory=list)
    finished: anyio.Event = field(default_factory=anyio.Event)
    _done: anyio.Event = field(default_factory=anyio.Event)
    _numbered: int = 0

    def stop(self) -> None:
        """Stop serving (open connections get a 1001 close)."""
        self._done.set()

    def spec(self, listen: str) -> ServerSpec:
        """The fake server's section: the recorded path and subprotocol."""
        return ServerSpec(
            listen=listen, path=self.info.path, handshake=Handshake(protocol=self.info.protocol)
        )

    async def serve(
        self,
        listener: MultiListener[SocketStream],
        host: str,
        *,
        task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
    ) -> list[ScenarioResult]:
        """Serve on ``listener`` (see ``open_listener``) until ``stop_after`` connections end.

        ``task_status`` gets the ``ws://host:port/path`` (or ``wss://``) url clients should use.
        """
        port = bound_port(listener)
        spec = self.spec(f"{host}:{port}")
        routes = {spec.path: Route(spec, self._session)}
        server = FakeServer(routes, limits=self.options.limits, tls=self.tls)
        try:
            async with anyio.create_task_group() as tasks:
                await tasks.start(server.serve, listener)
                shown = url_host(host)
                scheme = "ws" if self.tls is None else "wss"
                task_status.started(f"{scheme}://{shown}:{port}{spec.path}")
                await self._done.wait()
                server.stop()
        finally:
            self.finished.set()
        return self.results

    async def _session(self, driver: ServerDriver) -> None:
        self._numbered += 1
        number = self._numbered
        spec = self.spec("")
        scenario = _scenario(self.path, self.options, server=spec)

        def on_step(step: StepResult) -> None:
            if self.on_step is not None:
                self.on_step(number, step)

        runner = StepRunner(
            scenario, driver, variables={}, env=self.env, on_step=on_step, streaming=True
        )
        maker = self.options.step_maker("server", env=self.env)
        player = Player(self.path, "server", runner, maker, self.options.timing, self.warn)
        try:
            if not await player.play() and not driver.ended:
                await driver.close(1011, "replay failed")
        finally:
            result = player.result(f"{self.path.name} #{number} {driver.peer}")
            self.results.append(result)
            if self.on_result is not None:
                self.on_result(result)
            if self.stop_after is not None and len(self.results) >= self.stop_after:
                self._done.set()
