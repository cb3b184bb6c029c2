"""pytest plugin: client scenario files collected and run as pytest tests.

Only files whose name matches a glob of the ``wscenario_files`` ini option are collected
(default ``*.wscenario.yaml`` and ``*.wscenario.yml``), so no other YAML is ever picked up.
Each file is one test, named after its scenario and run through the same engine as
``wscenario run``; a failure is reported as the scenario's own report (each step, and for the
failing one what was expected, what arrived and the diff, with file:line), not a traceback.
Server scenarios are collected as skipped tests. ``--wscenario-var NAME=VALUE`` sets a
variable in every scenario that declares it; ``--wscenario-url URL`` points every client
scenario at URL; ``--wscenario-limit NAME=VALUE`` sets a limit as ``wscenario run --limit``
does (``maxMessageSize=4MiB``), over every scenario's own value.

pytest loads this module for every project where wscenario is installed, so it imports
wscenario itself only inside hooks that run when a scenario file is collected.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from wscenario.core.model import Scenario
    from wscenario.report.results import ScenarioResult

DEFAULT_FILES = ["*.wscenario.yaml", "*.wscenario.yml"]
"""File-name globs collected when the ``wscenario_files`` ini option is not set."""

T = TypeVar("T")

_declared = pytest.StashKey[set[str]]()
_vars = pytest.StashKey[Mapping[str, str]]()
"""The ``--wscenario-var`` values by name."""
_limits = pytest.StashKey[Mapping[str, int | float]]()
"""The ``--wscenario-limit`` values by ``Limits`` field name."""
"""Names of variables that the collected scenarios declare."""


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
    """A ``--wscenario-var`` that no collected scenario declares is a usage error."""
    declared = session.config.stash[_declared]
    unused = [name for name in session.config.stash[_vars] if name not in declared]
    if unused:
        names = ", ".join(sorted(unused))
        raise pytest.UsageError(f"--wscenario-var {names}: no collected scenario declares it")


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
    """One line on why a scenario did not pass: ``path:line: why``, or why it could not run."""
    from wscenario.report.console import Style, render_end, safe_line

    failed = result.session.failed_step
    if failed is not None and failed.failure is not None:
        why = safe_line(failed.failure.message.splitlines()[0])
        return f"{path}:{failed.position.line}: {why}"
    return render_end(result, Style())[0]


class ScenarioFailed(Exception):
    """A scenario failed or could not run; ``result`` holds its report."""

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.name)
        self.result = result


class ScenarioFile(pytest.File):
    """A scenario file: one test for its scenario."""

    def collect(self) -> Iterator[ScenarioItem]:
        """The file's scenario as one test; an invalid file is a collection error."""
        import os

        from wscenario.core.scenario_loader import load_scenario
        from wscenario.errors import ScenarioLoadError, UsageError

        given = self.config.stash[_vars]
        limits = self.config.stash[_limits]
        try:
            scenario = load_scenario(self.path, limits=limits)
            if scenario.vars:  # again, with the values given and the defaults' environment
                declared = {name: value for name, value in given.items() if name in scenario.vars}
                scenario = load_scenario(
                    self.path, overrides=declared, limits=limits, env=os.environ
                )
        except ScenarioLoadError as exc:
            raise self.CollectError("\n".join(d.render() for d in exc.diagnostics)) from None
        except UsageError as exc:
            raise self.CollectError(f"{self.path}: {exc}") from None
        self.config.stash[_declared].update(scenario.vars)
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
