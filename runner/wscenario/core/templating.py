"""Templates in scenario strings: ``{{ name }}`` and ``{{ env.NAME }}``.

A template names a variable (declared in ``vars``, or saved by an earlier step) or an
environment variable. Whitespace inside the braces is optional; names are
``[A-Za-z_][A-Za-z0-9_]*``. There is no escape: every ``{{`` opens a template. Rendering never
substitutes an empty string for an unknown name; it raises ``TemplateError`` instead.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TypeAlias

from wscenario.core.model import JSON
from wscenario.core.valid_unicode import is_valid_unicode

ENV_PREFIX = "env."
_OPEN = "{{"
_CLOSE = "}}"
_REFERENCE = re.compile(r"\s*((?:env\.)?[A-Za-z_][A-Za-z0-9_]*)\s*")

Segment: TypeAlias = tuple[bool, str]
"""One piece of a parsed template string: ``(False, literal text)`` or ``(True, name)``."""


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


def collect_names(value: JSON) -> tuple[str, ...]:
    """The names used by every string inside a JSON value (values only, never keys)."""
    names: dict[str, None] = {}
    for text in _strings(value):
        names.update(dict.fromkeys(template_names(text)))
    return tuple(names)


def _strings(value: JSON) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _lookup(name: str, variables: Mapping[str, JSON], env: Mapping[str, str]) -> JSON:
    if name.startswith(ENV_PREFIX):
        key = name[len(ENV_PREFIX) :]
        if key not in env:
            raise TemplateError(f"environment variable {key!r} is not set", name=name)
        value = env[key]
        if not is_valid_unicode(value):
            raise TemplateError(f"environment variable {key} is not valid UTF-8", name=name)
        return value
    if name not in variables:
        message = f"undefined variable {name!r}"
        hint = suggest(name, variables)
        raise TemplateError(f"{message}; {hint}" if hint else message, name=name)
    return variables[name]


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
    if isinstance(value, str):
        segments = _parse(value)
        if len(segments) == 1 and segments[0][0]:
            return _lookup(segments[0][1], variables, env)
        return render_text(value, variables, env)
    if isinstance(value, list):
        return [render_value(item, variables, env) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, variables, env) for key, item in value.items()}
    return value


def suggest(name: str, known: Iterable[str]) -> str | None:
    """``"did you mean 'x'?"`` for the closest known name, or ``None`` if none is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else None
