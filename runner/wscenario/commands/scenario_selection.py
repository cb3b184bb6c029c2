"""Choosing the scenarios a command runs: files and folders, one side, ``--var`` overrides,
``--limit`` values in place of the scenarios' own, ``{{ env.NAME }}`` in ``vars`` filled in.

``run`` takes client scenarios and ``serve`` server ones. A file of the other side named on
the command line is a usage error; one found in a folder is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wscenario.commands.limit_options import LimitValues
from wscenario.core.diagnostics import Diagnostic
from wscenario.core.model import Scenario, Side
from wscenario.core.scenario_loader import find_scenario_files, load_scenario
from wscenario.core.valid_unicode import is_valid_unicode, shown
from wscenario.errors import ScenarioLoadError, UsageError

COMMAND_FOR: Mapping[Side, str] = {"client": "run", "server": "serve"}
"""The command that runs each side's scenarios."""


@dataclass(frozen=True)
class Selection:
    """The scenarios chosen, and how many of the other side folders held."""

    scenarios: tuple[Scenario, ...]
    skipped: int


def parse_vars(items: Sequence[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` as a mapping.

    A missing ``=``, an empty name or text that is not valid UTF-8 is a usage error.
    """
    variables: dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not is_valid_unicode(item):
            raise UsageError(f"--var '{shown(item)}' is not valid UTF-8")
        if not sep or not name.strip():
            raise UsageError(f"--var expects NAME=VALUE, got {item!r}")
        variables[name.strip()] = value
    return variables


def select_scenarios(
    paths: Sequence[str],
    overrides: Mapping[str, str],
    side: Side,
    *,
    limits: LimitValues,
    env: Mapping[str, str],
) -> Selection:
    """Load the ``side`` scenarios named, or found under the folders named.

    Each scenario's ``limits`` take the ``limits`` given (``--limit``) in place of its own,
    and the ``vars`` defaults of those chosen read the environment ``env`` (a skipped one's
    need not be set).

    Raises:
        UsageError: a path does not exist, or names a scenario of the other side.
        ScenarioLoadError: scenario files are invalid (the diagnostics of all of them).
    """
    chosen: list[Scenario] = []
    skipped = 0
    problems: list[Diagnostic] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise UsageError(f"{given}: no such file or folder")
        explicit = path.is_file()
        for file in [path] if explicit else find_scenario_files([path]):
            try:
                scenario = load_scenario(
                    file, overrides=overrides, limits=limits, env=env, side=side
                )
            except ScenarioLoadError as exc:
                problems.extend(exc.diagnostics)
                continue
            if scenario.side == side:
                chosen.append(scenario)
            elif explicit:
                other = scenario.side
                raise UsageError(
                    f"{given} is a {other} scenario; run it with "
                    f"'wscenario {COMMAND_FOR[other]} {given}'"
                )
            else:
                skipped += 1
    if problems:
        raise ScenarioLoadError(problems)
    return Selection(tuple(chosen), skipped)
