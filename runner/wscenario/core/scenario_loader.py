"""Load a scenario file: read, parse, validate, check and build it, or say everything wrong.

``load_scenario`` is what commands call to run a scenario; ``inspect_scenario`` and
``check_scenario`` report every problem of a file (errors and warnings) without raising.
Given the environment, ``load_scenario`` fills in the ``vars`` defaults that are exactly
``{{ env.NAME }}`` and that ``--var`` does not override; an unset variable is then an error of
the file.

When the schema finds errors only in some steps, the language's own checks still run on the
rest, each broken step standing in as a harmless ``sleep``, so one pass shows both kinds of
error. They are skipped when anything else breaks the schema, or when a broken step saves a
variable (later steps using it would be reported as undefined).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from wscenario.core.build import BuildError, build_scenario
from wscenario.core.checks import UNCHECKED_STEP, check_data
from wscenario.core.diagnostics import Diagnostic
from wscenario.core.model import JSON, Scenario, Side
from wscenario.core.schema import pointer_of, validate_data
from wscenario.core.source import Document, SourceError, load_yaml_file
from wscenario.core.templating import (
    TemplateError,
    env_key,
    env_value,
    render_env,
    strings_in,
    suggest,
)
from wscenario.errors import ScenarioLoadError, UsageError

SCENARIO_SUFFIXES = (".yaml", ".yml")


def load_scenario(
    path: Path,
    *,
    overrides: Mapping[str, str] | None = None,
    limits: Mapping[str, int | float] | None = None,
    env: Mapping[str, str] | None = None,
    side: Side | None = None,
) -> Scenario:
    """The scenario in ``path``, with ``--var`` ``overrides`` applied to its ``vars`` and
    ``--limit`` values (``Limits`` field names) in place of its own ``limits:``.

    Given an ``env``, the defaults not overridden that are exactly ``{{ env.NAME }}`` are
    filled in from it (``--var`` values are taken as written), when the scenario plays
    ``side`` (any side by default): one of the other side is not run, and reads nothing.

    Raises:
        ScenarioLoadError: the file is not a valid scenario (every error is in it), or a
            default reads an environment variable that ``env`` lacks or holds not as UTF-8.
        UsageError: an override names a variable the scenario does not declare, or gives
            a value of the wrong type.
    """
    diagnostics, scenario = _inspect(path, overrides or {}, limits, env, side)
    if scenario is None:
        raise ScenarioLoadError([d for d in diagnostics if d.severity == "error"])
    return scenario


def check_scenario(path: Path) -> list[Diagnostic]:
    """Every problem of the scenario in ``path``, errors and warnings; never raises."""
    return inspect_scenario(path)[0]


def inspect_scenario(path: Path) -> tuple[list[Diagnostic], Scenario | None]:
    """Every problem of ``path`` and, when it has no errors, the scenario it holds."""
    return _inspect(path, {})


def find_scenario_files(paths: Iterable[Path]) -> list[Path]:
    """Files as given; for folders, their ``*.yaml`` and ``*.yml`` files, recursively, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix in SCENARIO_SUFFIXES and p.is_file())
            )
        else:
            found.append(path)
    return found


def _inspect(
    path: Path,
    overrides: Mapping[str, str],
    limits: Mapping[str, int | float] | None = None,
    env: Mapping[str, str] | None = None,
    side: Side | None = None,
) -> tuple[list[Diagnostic], Scenario | None]:
    try:
        doc = load_yaml_file(path)
    except SourceError as exc:
        return list(exc.diagnostics), None
    diagnostics = validate_data(doc)
    if diagnostics:
        rest = _without_broken_steps(doc, diagnostics)
        if rest is None:
            return diagnostics, None
        return [*diagnostics, *check_data(rest, base_dir=path.parent)], None
    diagnostics = check_data(doc, base_dir=path.parent)
    if any(d.severity == "error" for d in diagnostics):
        return diagnostics, None
    plays = side is None or (isinstance(doc.data, dict) and side in doc.data)
    variables, unread = _variables(doc, overrides, env if plays else None)
    diagnostics += unread
    try:
        scenario = build_scenario(doc, base_dir=path.parent, variables=variables, limits=limits)
    except BuildError as exc:
        return [*diagnostics, *exc.diagnostics], None
    return diagnostics, None if unread else scenario


def _without_broken_steps(doc: Document, diagnostics: Iterable[Diagnostic]) -> Document | None:
    """``doc`` with each step the schema rejected replaced by a stand-in.

    ``None`` when an error lies outside the steps, or a rejected step saves a variable.
    """
    broken: set[int] = set()
    for diagnostic in diagnostics:
        parts = diagnostic.pointer.split("/")
        if len(parts) < 3 or parts[1] != "steps" or not parts[2].isdigit():
            return None
        broken.add(int(parts[2]))
    assert isinstance(doc.data, dict)
    steps = doc.data["steps"]
    assert isinstance(steps, list)
    if any(_saves(steps[index]) for index in broken):
        return None
    kept = [UNCHECKED_STEP if index in broken else step for index, step in enumerate(steps)]
    return replace(doc, data={**doc.data, "steps": kept})


def _saves(value: JSON) -> bool:
    """Whether ``value`` holds a ``save`` key anywhere."""
    if isinstance(value, dict):
        return "save" in value or any(_saves(item) for item in value.values())
    if isinstance(value, list):
        return any(_saves(item) for item in value)
    return False


def _apply_overrides(doc: Document, overrides: Mapping[str, str]) -> dict[str, JSON]:
    assert isinstance(doc.data, dict)
    declared = doc.data.get("vars", {})
    assert isinstance(declared, dict)
    variables = dict(declared)
    for name, text in overrides.items():
        if name not in declared:
            hint = suggest(name, declared)
            message = f"--var {name}: {doc.path} declares no variable {name!r}"
            raise UsageError(f"{message}; {hint}" if hint else message)
        variables[name] = _typed(name, text, declared[name])
    return variables


def _typed(name: str, text: str, default: JSON) -> JSON:
    """``text`` as the type of the variable's default (strings stay as given)."""
    if isinstance(default, str) or default is None:
        return text
    try:
        value: JSON = json.loads(text)
    except ValueError:
        value = text
    same = type(value) is type(default) or (
        isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool)
    )
    if not same:
        raise UsageError(f"--var {name}: expected {type(default).__name__}, got {text!r}")
    return value


def _variables(
    doc: Document, overrides: Mapping[str, str], env: Mapping[str, str] | None
) -> tuple[dict[str, JSON], list[Diagnostic]]:
    """The variables to build with and, given an ``env``, the errors of reading it into the
    defaults."""
    variables = _apply_overrides(doc, overrides)
    if env is None:
        return variables, []
    return variables, _read_environment(doc, variables, overrides, env)


def _read_environment(
    doc: Document,
    variables: dict[str, JSON],
    overrides: Mapping[str, str],
    env: Mapping[str, str],
) -> list[Diagnostic]:
    """Fill in the ``{{ env.NAME }}`` defaults in ``variables`` that ``overrides`` leaves; an
    environment variable that cannot be read is an error where it is read."""
    problems: list[Diagnostic] = []
    for name, default in list(variables.items()):
        if name in overrides:
            continue
        unread = list(_unreadable(doc, name, default, env))
        if unread:
            problems += unread
        else:
            variables[name] = render_env(default, env)
    return problems


def _unreadable(
    doc: Document, name: str, default: JSON, env: Mapping[str, str]
) -> Iterator[Diagnostic]:
    """An error for each environment variable the default of ``name`` reads that ``env``
    lacks or holds not as UTF-8."""
    for path, text in strings_in(default):
        key = env_key(text)
        if key is None:
            continue
        try:
            env_value(key, env)
        except TemplateError as exc:
            pointer = pointer_of(("vars", name, *path))
            position = doc.source_map.value_position(pointer)
            hint = f"set it, or give --var {name}=..."
            yield Diagnostic(position, exc.message, pointer, hint)
