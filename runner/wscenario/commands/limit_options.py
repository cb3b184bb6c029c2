"""``--limit NAME=VALUE``: set a protective limit on the command line, as ``limits:`` does.

The names, spellings and rules are those of a scenario's ``limits:`` section, taken from the
scenario schema: ``--limit maxMessageSize=4MiB --limit handshakeTimeout=3s``. A value is read
as it would be in the file (``64`` is a number, ``4MiB`` a size), checked against the schema
and converted by the same functions. A flag wins over the scenario's own value for that limit;
the last flag for a name wins over earlier ones.

What it needs to check a value is imported when a flag is read: the parser is built at every
start.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wscenario.errors import UsageError

if TYPE_CHECKING:
    from wscenario.core.model import Limits

LimitValues = Mapping[str, int | float]
"""``Limits`` field names and their values: ``{"max_message_size": 4194304}``."""


def add_limit_option(parser: argparse.ArgumentParser) -> None:
    """``--limit NAME=VALUE`` (repeatable)."""
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a limit as in a scenario's limits: section, over its own value "
        "(maxMessageSize=4MiB, handshakeTimeout=3s; repeatable)",
    )


def parse_limits(items: Sequence[str]) -> dict[str, int | float]:
    """``--limit`` items as ``Limits`` field values; a later item for a name wins.

    Each value is read as the scenario's ``limits:`` section reads it (``core.build.LIMITS``).

    Raises:
        UsageError: an item is not ``NAME=VALUE``, names no limit, or gives a value the
            scenario's ``limits:`` section would refuse.
    """
    from wscenario.core.build import LIMITS
    from wscenario.core.checks import limit_problem

    values: dict[str, int | float] = {}
    for item in items:
        name, value = _limit_value(item)
        field, read = LIMITS[name]
        try:
            converted = read(value)
        except ValueError as exc:  # what the schema let through and the units do not take
            raise UsageError(f"--limit {item}: {exc}") from None
        if (problem := limit_problem(name, value)) is not None:
            raise UsageError(f"--limit {item}: {problem}")
        values[field] = converted
    return values


def with_limits(limits: Limits, values: LimitValues) -> Limits:
    """``limits`` with the values the flags set put in place of its own."""
    from dataclasses import replace

    fields: dict[str, Any] = dict(values)  # each value's type is its field's (parse_limits)
    return replace(limits, **fields) if fields else limits


def _limit_value(item: str) -> tuple[str, Any]:
    """The limit ``item`` names and its value as the schema checked it (not yet converted)."""
    from wscenario.core.schema import allowed_hint
    from wscenario.core.valid_unicode import is_valid_unicode, shown

    if not is_valid_unicode(item):
        raise UsageError(f"--limit '{shown(item)}' is not valid UTF-8")
    name, sep, text = item.partition("=")
    properties: Mapping[str, Mapping[str, Any]] = _limits_schema()["properties"]
    if name not in properties:
        hint = allowed_hint(name, properties)
        if not sep:
            raise UsageError(
                f"--limit expects NAME=VALUE (maxMessageSize=4MiB), got {item!r}; {hint}"
            )
        raise UsageError(f"--limit {item}: there is no limit {name!r}; {hint}")
    if not sep or not text:
        raise UsageError(f"--limit {name} needs a value: {name}=VALUE")
    return name, _checked(item, name, text)


def _checked(item: str, name: str, text: str) -> Any:
    """``text`` read as a YAML value and checked against the schema's ``limits`` section."""
    from jsonschema import Draft202012Validator

    from wscenario.core.schema import diagnostics_for, scenario_schema
    from wscenario.core.source import SourceError, parse_yaml

    try:
        document = parse_yaml(text.encode("utf-8"), "--limit")
    except SourceError as exc:
        raise UsageError(f"--limit {item}: {exc.diagnostics[0].message}") from None
    schema = {"$defs": scenario_schema()["$defs"], "$ref": "#/$defs/limits"}
    errors = Draft202012Validator(schema).iter_errors({name: document.data})
    problems = diagnostics_for(errors, document.source_map)
    if problems:
        problem = problems[0]
        about = f" ({problem.hint})" if problem.hint else ""
        raise UsageError(f"--limit {item}: {problem.message}{about}")
    return document.data


def _limits_schema() -> Mapping[str, Any]:
    from wscenario.core.schema import scenario_schema

    limits: Mapping[str, Any] = scenario_schema()["$defs"]["limits"]
    return limits
