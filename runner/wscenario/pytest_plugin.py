"""pytest plugin: client scenario files run as pytest tests; fake servers for your own tests.

Only files whose name matches a glob of the ``wscenario_files`` ini option are collected
(default ``*.wscenario.yaml`` and ``*.wscenario.yml``), so no other YAML is ever picked up.
Each file is one test, named after its scenario and run through the same engine as
``wscenario run``; a failure is reported as the scenario's own report (each step, and for the
failing one what was expected, what arrived and the diff, with file:line), not a traceback.
Server scenarios are collected as skipped tests.

The ``wscenario_server`` fixture serves a server scenario to the code a test exercises::

    def test_client_says_hello(wscenario_server):
        server = wscenario_server("tests/ws/chat.server.yaml", vars={"greeting": "hi"})
        with websockets.sync.client.connect(server.url) as ws:  # ws://127.0.0.1:PORT/chat
            ws.send("hello")
            assert ws.recv() == "hi"

It listens on 127.0.0.1, on a port the OS picks (``server.port``), from a thread of its own,
so sync and async tests can use it; a relative path starts at the rootdir. ``connections=N``
(default 1) is how many connections are expected at least; ``server.wait()`` blocks until
they have ended (``await server.wait_async()`` in an async test), ``server.results`` holds
each ended connection's result. When the test function returns, the server waits up to
``timeout`` seconds (default 5) for the expected connections and every open one to end, then
stops; the test fails with the report of each connection that did not follow its script, or
when fewer connections arrived. An invalid file fails the test with its diagnostics.

``--wscenario-var NAME=VALUE`` sets a variable in every scenario that declares it (the
fixture's ``vars=`` win over it); ``--wscenario-url URL`` points every client scenario at URL;
``--wscenario-limit NAME=VALUE`` sets a limit as ``wscenario run --limit`` does
(``maxMessageSize=4MiB``), over every scenario's own value.

pytest loads this module for every project where wscenario is installed, so it imports
wscenario itself only inside hooks and fixtures that run when a scenario is used.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from wscenario.core.model import Scenario, Side
    from wscenario.pytest_server import ServerFixture
    from wscenario.report.results import ScenarioResult

DEFAULT_FILES = ["*.wscenario.yaml", "*.wscenario.yml"]
"""File-name globs collected when the ``wscenario_files`` ini option is not set."""

SERVER_FIXTURE = "wscenario_server"
"""The name of the fixture that serves a server scenario to a test."""

T = TypeVar("T")

_declared = pytest.StashKey[set[str]]()
"""Names of variables that the scenarios loaded so far declare."""
_vars = pytest.StashKey[Mapping[str, str]]()
"""The ``--wscenario-var`` values by name."""
_limits = pytest.StashKey[Mapping[str, int | float]]()
"""The ``--wscenario-limit`` values by ``Limits`` field name."""
_served = pytest.StashKey[bool]()
"""Whether a collected test uses the server fixture (its scenarios load as tests run)."""
_servers = pytest.StashKey["ServerFixture"]()
"""A test's server fixture, once the test asked for it."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``wscenario_files`` ini option and the ``--wscenario-*`` command-line options."""
    parser.addini(
        "wscenario_files",
        "file-name globs of the scenario files collected as tests",
        type="args",
        default=DEFAULT_FILES,
    )
    group = parser.getgroup("wscenario", "WebSocket scenarios")
    group.addoption(
        "--wscenario-var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a variable in every scenario that declares it (repeatable)",
    )
    group.addoption(
        "--wscenario-url",
        metavar="URL",
        default=None,
        help="connect client scenarios to URL instead of their client.url",
    )
    group.addoption(
        "--wscenario-limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a limit as in a scenario's limits: section, over every scenario's own value "
        "(maxMessageSize=4MiB, handshakeTimeout=3s; repeatable)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Read and check the ``--wscenario-*`` options before anything is collected."""
    from wscenario.commands.limit_options import parse_limits
    from wscenario.commands.scenario_selection import parse_vars

    config.stash[_declared] = set()
    config.stash[_vars] = _read_option(config, "var", parse_vars)
    config.stash[_limits] = _read_option(config, "limit", parse_limits)
    url: str | None = config.getoption("wscenario_url")
    if url is not None:
        from wscenario.commands.given_url import checked_url
        from wscenario.errors import UsageError

        try:
            checked_url(url, "--wscenario-url")
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    """A scenario file for a name matching ``wscenario_files``; nothing for any other file."""
    globs: list[str] = parent.config.getini("wscenario_files")
    if any(fnmatch(file_path.name, glob) for glob in globs):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    """A ``--wscenario-var`` that no collected scenario declares is a usage error, unless a
    test uses the server fixture: its scenarios are known once the tests have run."""
    served = any(SERVER_FIXTURE in getattr(item, "fixturenames", ()) for item in session.items)
    session.config.stash[_served] = served
    unused = _undeclared(session.config)
    if unused and not served:
        raise pytest.UsageError(f"--wscenario-var {unused}: no collected scenario declares it")


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Warn of a ``--wscenario-var`` that no scenario declared when the server fixture ran."""
    unused = _undeclared(config) if config.stash.get(_served, False) else ""
    if unused:
        terminalreporter.write_line(
            f"warning: --wscenario-var {unused}: no scenario declared it", yellow=True
        )


@pytest.fixture
def wscenario_server(request: pytest.FixtureRequest) -> Iterator[ServerFixture]:
    """Serve server scenarios to this test: ``wscenario_server(path, vars=..., connections=1)``
    starts a fake server on 127.0.0.1 and gives its ``url``; see the module's docstring."""
    from wscenario.pytest_server import ServerFixture

    def load(path: Path, own: Mapping[str, str]) -> Scenario:
        return load_scenario_file(path, request.config, own, side="server")

    servers = ServerFixture(request.config.rootpath, load)
    request.node.stash[_servers] = servers
    try:
        yield servers
    finally:
        servers.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A test whose fake servers saw a connection stray from its script, or too few
    connections, fails with their report; a test that failed gets the servers' output."""
    try:
        yield
    except BaseException:
        servers = item.stash.get(_servers, None)
        if servers is not None:
            servers.stop()
            item.add_report_section("call", "wscenario server", servers.log())
        raise
    servers = item.stash.get(_servers, None)
    problems = servers.finish() if servers is not None else []
    if problems:
        from wscenario.pytest_server import fail

        fail("\n".join(problems))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed scenario's report points at the step that failed."""
    report = yield
    if isinstance(item, ScenarioItem) and item.failing_line is not None:
        where, _, domain = report.location
        report.location = (where, item.failing_line - 1, domain)
    return report


def _undeclared(config: pytest.Config) -> str:
    """The ``--wscenario-var`` names that no scenario loaded so far declares."""
    declared = config.stash[_declared]
    return ", ".join(sorted(name for name in config.stash[_vars] if name not in declared))


def _read_option(
    config: pytest.Config, name: str, parse: Callable[[list[str]], Mapping[str, T]]
) -> Mapping[str, T]:
    """``--wscenario-NAME`` items read as the command's own flag reads them.

    Raises:
        pytest.UsageError: an item the flag would refuse (the flag's message, prefixed).
    """
    given: list[str] = config.getoption(f"wscenario_{name}")
    if not given:
        return {}
    from wscenario.errors import UsageError

    try:
        return parse(given)
    except UsageError as exc:
        raise pytest.UsageError(f"--wscenario-{name}: {exc}") from None


def headline(result: ScenarioResult, path: str) -> str:
    """One line on why a scenario did not pass: ``path:line: why`` (``name: why`` when no line
    of the file failed, as for a request no scenario serves), or why it could not run."""
    from wscenario.report.console import Style, render_end, safe_line

    failed = result.session.failed_step
    if failed is not None and failed.failure is not None:
        why = safe_line(failed.failure.message.splitlines()[0])
        where = f"{path}:{failed.position.line}" if failed.position.line else result.name
        return f"{where}: {why}"
    return render_end(result, Style())[0]


class NotLoaded(Exception):
    """A scenario file cannot be loaded; the message says why (its diagnostics)."""


def load_scenario_file(
    path: Path, config: pytest.Config, own: Mapping[str, str] | None = None, *, side: Side
) -> Scenario:
    """The scenario in ``path`` with the ``--wscenario-var`` values it declares, ``own``
    values over them, the ``--wscenario-limit`` values and, when it plays ``side`` (a
    scenario of the other side is not run), its ``{{ env.NAME }}`` defaults filled in; its
    variables count as declared.

    Raises:
        NotLoaded: the file is invalid, or a value does not fit its variable.
    """
    import os

    from wscenario.core.scenario_loader import load_scenario
    from wscenario.errors import ScenarioLoadError, UsageError

    limits = config.stash[_limits]
    try:
        scenario = load_scenario(path, overrides=own, limits=limits)
        given = {
            name: value for name, value in config.stash[_vars].items() if name in scenario.vars
        }
        if scenario.vars:  # again, with the values given and the defaults' environment
            overrides = {**given, **(own or {})}
            scenario = load_scenario(
                path, overrides=overrides, limits=limits, env=os.environ, side=side
            )
    except ScenarioLoadError as exc:
        raise NotLoaded("\n".join(d.render() for d in exc.diagnostics)) from None
    except UsageError as exc:
        raise NotLoaded(f"{path}: {exc}") from None
    config.stash[_declared].update(scenario.vars)
    return scenario


class ScenarioFailed(Exception):
    """A scenario failed or could not run; ``result`` holds its report."""

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.name)
        self.result = result


class ScenarioFile(pytest.File):
    """A scenario file: one test for its scenario."""

    def collect(self) -> Iterator[ScenarioItem]:
        """The file's scenario as one test; an invalid file is a collection error."""
        try:
            scenario = load_scenario_file(self.path, self.config, side="client")
        except NotLoaded as exc:
            raise self.CollectError(str(exc)) from None
        item = ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)
        if scenario.client is None:
            reason = f"server scenario: play it with 'wscenario serve {self.path}'"
            item.add_marker(pytest.mark.skip(reason=reason))
        yield item


class ScenarioItem(pytest.Item):
    """One client scenario, run as ``wscenario run`` runs it."""

    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.failing_line: int | None = None

    def runtest(self) -> None:
        """Run the scenario; raises ``ScenarioFailed`` unless it passed."""
        import os
        from dataclasses import replace
        from functools import partial

        import anyio

        from wscenario.engine.client import run_client_scenario

        scenario = self.scenario
        url = self.config.getoption("wscenario_url")
        if url is not None and scenario.client is not None:
            scenario = replace(scenario, client=replace(scenario.client, url=url))
        result = anyio.run(partial(run_client_scenario, scenario, env=os.environ))
        if result.outcome != "passed":
            failed = result.session.failed_step
            self.failing_line = failed.position.line if failed is not None else None
            raise ScenarioFailed(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | TerminalRepr:
        """The scenario's own report for a failed scenario; pytest's for anything else."""
        if isinstance(excinfo.value, ScenarioFailed):
            from wscenario.report.console import Style, render_scenario

            result = excinfo.value.result
            lines = [headline(result, self.location[0]), *render_scenario(result, Style())]
            return "\n".join(lines)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        """The scenario file, the failing step's line (0-based; the top until known), its name."""
        line = 0 if self.failing_line is None else self.failing_line - 1
        return self.path, line, f"scenario: {self.scenario.name}"
