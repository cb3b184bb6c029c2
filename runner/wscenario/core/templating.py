"""Templates in scenario strings: ``{{ name }}`` and ``{{ env.NAME }}``.

A template names a variable (declared in ``vars``, or saved by an earlier step) or an
environment variable. Whitespace inside the braces is optional; names are
``[A-Za-z_][A-Za-z0-9_]*``. There is no escape: every ``{{`` opens a template. Rendering never
substitutes an empty string for an unknown name; it raises ``TemplateError`` instead.

The defaults in ``vars`` are the exception: there, only a whole string ``{{ env.NAME }}`` is a
template (``render_env``) and any other text, braces included, is taken as written.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from typing import TypeAlias

from wscenario.core.model import JSON
from wscenario.core.valid_unicode import is_valid_unicode

ENV_PREFIX = "env."
_OPEN = "{{"
_CLOSE = "}}"
_REFERENCE = re.compile(r"\s*((?:env\.)?[A-Za-z_][A-Za-z0-9_]*)\s*")
_TEMPLATE = re.compile(re.escape(_OPEN) + _REFERENCE.pattern + re.escape(_CLOSE))
"""A well-formed template, found anywhere in a text whatever other braces it holds."""

Segment: TypeAlias = tuple[bool, str]
"""One piece of a parsed template string: ``(False, literal text)`` or ``(True, name)``."""
KeyPath: TypeAlias = tuple[str | int, ...]
"""Where a string sits inside a JSON value: its keys and indexes."""


class TemplateError(ValueError):
    """A template is malformed, or names a variable that has no value.

    ``name`` is the variable concerned (``env.X`` for the environment), ``None`` for syntax.
    """

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name


@lru_cache(maxsize=1024)
def _parse(text: str) -> tuple[Segment, ...]:
    """Split ``text`` into literal and template segments; raise on bad syntax."""
    segments: list[Segment] = []
    pos = 0
    while (start := text.find(_OPEN, pos)) != -1:
        while text.startswith("{", start + len(_OPEN)):
            start += 1  # in "{{{ x }}" the first brace is text, as in JSON: {"k":{{ x }}}
        end = text.find(_CLOSE, start + len(_OPEN))
        if end == -1:
            raise TemplateError(f"unclosed '{_OPEN}' at offset {start}")
        inner = text[start + len(_OPEN) : end]
        reference = _REFERENCE.fullmatch(inner)
        if reference is None:
            shown = text[start : end + len(_CLOSE)]
            raise TemplateError(
                f"invalid template {shown!r}: expected {{{{ name }}}} or {{{{ env.NAME }}}}"
            )
        if start > pos:
            segments.append((False, text[pos:start]))
        segments.append((True, reference.group(1)))
        pos = end + len(_CLOSE)
    if pos < len(text):
        segments.append((False, text[pos:]))
    return tuple(segments)


def template_names(text: str) -> tuple[str, ...]:
    """The names ``text`` uses, in order of first use, ``env.X`` for the environment.

    Raises:
        TemplateError: a ``{{`` is not closed or does not hold a name.
    """
    return tuple(dict.fromkeys(name for is_name, name in _parse(text) if is_name))


def strings_in(value: JSON, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    """Every string inside a JSON value (values only, never keys), in order, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings_in(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(item, (*path, key))


def _lookup(name: str, variables: Mapping[str, JSON], env: Mapping[str, str]) -> JSON:
    if name.startswith(ENV_PREFIX):
        return env_value(name[len(ENV_PREFIX) :], env)
    if name not in variables:
        message = f"undefined variable {name!r}"
        hint = suggest(name, variables)
        raise TemplateError(f"{message}; {hint}" if hint else message, name=name)
    return variables[name]


def env_value(key: str, env: Mapping[str, str]) -> str:
    """The value of the environment variable ``key`` in ``env``.

    Raises:
        TemplateError: it is not set, or not valid UTF-8.
    """
    if key not in env:
        raise TemplateError(f"environment variable {key!r} is not set", name=ENV_PREFIX + key)
    value = env[key]
    if not is_valid_unicode(value):
        raise TemplateError(f"environment variable {key} is not valid UTF-8", name=ENV_PREFIX + key)
    return value


def _as_text(value: JSON) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render_text(text: str, variables: Mapping[str, JSON], env: Mapping[str, str]) -> str:
    """``text`` with every template replaced; non-string values appear as compact JSON.

    Raises:
        TemplateError: bad syntax, an undefined variable, or an environment variable that is
            unset or not valid UTF-8.
    """
    return "".join(
        _as_text(_lookup(part, variables, env)) if is_name else part
        for is_name, part in _parse(text)
    )


def render_value(value: JSON, variables: Mapping[str, JSON], env: Mapping[str, str]) -> JSON:
    """Render every string inside a JSON value (values only, never keys).

    A string that is exactly one template takes the variable's own value and type, so
    ``"{{ n }}"`` with ``n = 3`` becomes the number ``3``.

    Raises:
        TemplateError: as ``render_text``.
    """

    def render(text: str) -> JSON:
        segments = _parse(text)
        if len(segments) == 1 and segments[0][0]:
            return _lookup(segments[0][1], variables, env)
        return render_text(text, variables, env)

    return map_strings(value, render)


def written_names(text: str) -> tuple[str, ...]:
    """The names of the well-formed templates in ``text``, in order of first use, ``env.X``
    for the environment; other braces are text and never an error."""
    return tuple(dict.fromkeys(found[1] for found in _TEMPLATE.finditer(text)))


def env_key(text: str) -> str | None:
    """The environment variable a ``vars`` default reads: ``NAME`` when ``text`` is exactly
    ``{{ env.NAME }}``; ``None`` for any other text, which is taken as written."""
    found = _TEMPLATE.fullmatch(text)
    if found is None or not found[1].startswith(ENV_PREFIX):
        return None
    return found[1][len(ENV_PREFIX) :]


def render_env(value: JSON, env: Mapping[str, str]) -> JSON:
    """A ``vars`` default: each string inside it (values only, never keys) that is exactly
    ``{{ env.NAME }}`` replaced by that environment variable's value; any other text kept
    as written, braces included.

    Raises:
        TemplateError: as ``env_value``.
    """

    def fill(text: str) -> str:
        key = env_key(text)
        return text if key is None else env_value(key, env)

    return map_strings(value, fill)


def map_strings(value: JSON, change: Callable[[str], JSON]) -> JSON:
    """``value`` with each string inside it (values only, never keys) ``change``d."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [map_strings(item, change) for item in value]
    if isinstance(value, dict):
        return {key: map_strings(item, change) for key, item in value.items()}
    return value


def suggest(name: str, known: Iterable[str]) -> str | None:
    """``"did you mean 'x'?"`` for the closest known name, or ``None`` if none is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else None
