"""The fake servers a test starts with the ``wscenario_server`` fixture of the pytest plugin.

Each server plays one server scenario as ``wscenario serve`` does, on 127.0.0.1 and a port
the OS picks, from a thread of its own with its own event loop, so that sync tests and async
tests alike can connect to it. When the test function returns, each server waits (up to its
``timeout``) until the connections it expects have ended and none is open, then stops; the
test fails with the report of every connection that did not follow its script, and when
fewer connections arrived than expected.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from wscenario.commands.serve import (
    ListenerPlan,
    ServePlan,
    ServeState,
    rendered,
    serve_until_stopped,
)
from wscenario.core.model import JSON, Scenario
from wscenario.errors import CannotRun, UsageError
from wscenario.pytest_plugin import NotLoaded, headline
from wscenario.report.console import Style, render_scenario
from wscenario.report.results import ScenarioResult

DEFAULT_TIMEOUT = 5.0
"""Seconds ``wait()`` and the end of the test wait for the expected connections to end."""

LoadScenario = Callable[[Path, Mapping[str, str]], Scenario]
"""Loads a scenario file with variables set; raises ``NotLoaded`` saying why it cannot."""


@dataclass
class WatchedState(ServeState):
    """A fake server's state that keeps every connection's result and wakes those waiting."""

    ended: list[ScenarioResult] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    stopped: bool = False

    def number(self) -> int:
        """A number for the next connection (one more open connection)."""
        with self.changed:
            return super().number()

    def finished(self, number: int, scenario: str, result: ScenarioResult) -> None:
        """Record one finished connection and wake those waiting for it."""
        super().finished(number, scenario, result)
        with self.changed:
            self.ended.append(result)
            self.changed.notify_all()

    @property
    def open(self) -> int:
        """Connections that started their script and have not ended."""
        return self.numbered - len(self.ended)

    def settle(self, connections: int, timeout: float, *, idle: bool) -> bool:
        """Wait until ``connections`` have ended (and, if ``idle``, none is open); whether
        they have within ``timeout`` seconds, before the server stopped."""

        def settled() -> bool:
            return len(self.ended) >= connections and not (idle and self.open)

        with self.changed:
            self.changed.wait_for(lambda: self.stopped or settled(), timeout)
            return settled()

    def mark_stopped(self) -> None:
        """Wake everyone waiting: no connection will come any more."""
        with self.changed:
            self.stopped = True
            self.changed.notify_all()


class ScenarioServer:
    """One server scenario served on 127.0.0.1 for the length of a test.

    ``url`` is where clients connect (``ws://127.0.0.1:43127/chat``, the scenario's path),
    ``port`` the port the OS picked; ``connections`` how many are expected at least.
    """

    def __init__(self, scenario: Scenario, shown: str, *, connections: int, timeout: float) -> None:
        assert scenario.server is not None
        self.shown = shown
        self.connections = connections
        self.timeout = timeout
        self.log = io.StringIO()
        listener = ListenerPlan("127.0.0.1", 0, {scenario.server.path: scenario})
        self._stack = ExitStack()
        portal = self._stack.enter_context(start_blocking_portal(name="wscenario server"))
        try:
            self._state, self._serving, address = _start(portal, ServePlan((listener,)), self.log)
        except BaseException:
            self._stack.close()
            raise
        self._portal = portal
        self.port: int = urlsplit(address).port or 0
        self.url = address + scenario.server.path

    @property
    def results(self) -> list[ScenarioResult]:
        """The result of every connection that has ended so far, in the order they ended."""
        with self._state.changed:
            return list(self._state.ended)

    def wait(self, timeout: float | None = None) -> list[ScenarioResult]:
        """Block until the expected connections have ended; their results.

        Fails the test when they have not within ``timeout`` seconds (default: the server's).
        """
        waited = self.timeout if timeout is None else timeout
        if not self._state.settle(self.connections, waited, idle=False):
            fail(self._late(waited))
        return self.results

    async def wait_async(self) -> list[ScenarioResult]:
        """``wait()`` for async tests (up to the server's ``timeout``): the test's event loop
        runs on while it waits."""
        return await anyio.to_thread.run_sync(self.wait, abandon_on_cancel=True)

    def stop(self) -> None:
        """Stop serving (the end of the test does it): open connections get a 1001 close."""
        if self._state.stopped:
            return
        try:
            self._portal.call(self._state.stop.set)
            self._serving.result()
        finally:
            self._state.mark_stopped()
            self._stack.close()

    def finish(self) -> list[str]:
        """Wait for the expected connections and the open ones to end, stop; what went wrong
        (each connection that did not follow its script, in full; missing connections)."""
        self._state.settle(self.connections, self.timeout, idle=True)
        self.stop()
        problems: list[str] = []
        for result in self.results:
            if result.outcome != "passed":
                problems.extend([headline(result, self.shown), *render_scenario(result, Style())])
        arrived = len(self.results)
        if arrived < self.connections:
            problems.append(
                f"{self.shown}: expected at least {_connections(self.connections)} to "
                f"{self.url}, {arrived or 'none'} arrived"
            )
        return problems

    def _late(self, waited: float) -> str:
        """Why ``wait()`` failed: how many connections ended, how many are still open."""
        return (
            f"{self.shown}: {len(self._state.ended)} of {_connections(self.connections)} to "
            f"{self.url} ended within {waited:g}s ({self._state.open} still open)"
        )


class ServerFixture:
    """What the ``wscenario_server`` fixture gives a test: call it to start a fake server.

    ``load`` reads a scenario file as the plugin does (``--wscenario-var``,
    ``--wscenario-limit``); a file it cannot load fails the test with the file's diagnostics.
    """

    def __init__(self, rootdir: Path, load: LoadScenario) -> None:
        self.rootdir = rootdir
        self._load = load
        self.servers: list[ScenarioServer] = []

    def __call__(
        self,
        path: str | Path,
        *,
        vars: Mapping[str, JSON] | None = None,
        connections: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> ScenarioServer:
        """Serve the server scenario in ``path`` (relative to the rootdir, or absolute).

        ``vars`` set the scenario's variables as ``--var`` does (over ``--wscenario-var``);
        at least ``connections`` connections are expected; ``timeout`` bounds ``wait()`` and
        the wait for connections to end when the test function returns.
        """
        if connections < 0:
            fail(f"connections must be 0 or more, got {connections}")
        scenario = self._server_scenario(path, vars or {})
        try:
            server = ScenarioServer(scenario, str(path), connections=connections, timeout=timeout)
        except CannotRun as exc:
            fail(f"{path}: {exc}")
        self.servers.append(server)
        return server

    def _server_scenario(self, path: str | Path, given: Mapping[str, JSON]) -> Scenario:
        """The server scenario in ``path``, ready to serve; fails the test when it is not."""
        try:
            scenario = self._load(self.rootdir / path, _as_var_values(given))
        except NotLoaded as exc:
            fail(str(exc))
        if scenario.server is None:
            fail(f"{path} is a client scenario: wscenario_server serves server scenarios")
        try:
            return rendered(scenario)
        except UsageError as exc:
            fail(str(exc))

    def finish(self) -> list[str]:
        """Finish every server (see ``ScenarioServer.finish``); what went wrong with them."""
        return [line for server in self.servers for line in server.finish()]

    def stop(self) -> None:
        """Stop every server now, each even when stopping another fails (that error is
        raised once all are stopped)."""
        with ExitStack() as stopping:
            for server in self.servers:
                stopping.callback(server.stop)

    def log(self) -> str:
        """What the servers printed: each connection's steps as they happened."""
        return "".join(server.log.getvalue() for server in self.servers)


def _start(
    portal: BlockingPortal, plan: ServePlan, out: io.StringIO
) -> tuple[WatchedState, Future[None], str]:
    """Serve ``plan`` from the portal's event loop; its state, its task, its address."""
    state = portal.call(partial(WatchedState, out=out, style=Style(), stop_after=None))
    serving, addresses = portal.start_task(serve_until_stopped, plan, state)
    return state, serving, addresses[0]


def _as_var_values(given: Mapping[str, JSON]) -> dict[str, str]:
    """Variable values as ``--var`` text: strings as given, other values as JSON; a value
    JSON cannot hold fails the test, naming it."""
    values: dict[str, str] = {}
    for name, value in given.items():
        try:
            values[name] = value if isinstance(value, str) else json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            fail(f"wscenario_server(vars=...): {name}={value!r} is not a JSON value ({exc})")
    return values


def fail(message: str) -> NoReturn:
    """Fail the test with ``message`` alone: no traceback, no exception it replaced."""
    raise pytest.fail.Exception(message, pytrace=False) from None


def _connections(count: int) -> str:
    return f"{count} connection{'s' if count != 1 else ''}"
