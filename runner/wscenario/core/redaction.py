"""Keeping secrets out of transcripts, and putting them back on replay.

A :class:`Redactor` replaces each secret with a stable placeholder
``<redacted:NAME:xxxxxxxx>``: ``NAME`` says what matched (a header, a query parameter,
``userinfo``, ``subprotocol`` or a rule's name) and ``xxxxxxxx`` is the start of an
HMAC-SHA256 of the value under a key made for the run, so equal secrets get equal placeholders
and the raw value cannot be recovered from the file. Within one transcript each distinct value
gets its own name (``token``, then ``token-2``...), so that each has its own variable.
:func:`restore` puts values back from ``WSCENARIO_SECRET_<NAME>`` environment variables, and
:func:`hide` keeps those values out of what a run reports (console, JUnit, JSON report).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from wscenario.core.redaction_policy import (
    PolicyError,
    RedactionPolicy,
    RedactionRule,
    placeholder_name,
)

__all__ = [
    "PLACEHOLDER",
    "PolicyError",
    "RedactionPolicy",
    "RedactionRule",
    "Redactor",
    "hide",
    "looks_like_token",
    "restore",
    "secret_order",
    "secret_variable",
    "secrets_in",
]

PLACEHOLDER = re.compile(r"<redacted:([a-z0-9_.-]+):([0-9a-f]{8})>")
"""A placeholder in a transcript; group 1 is its name."""

_SUBPROTOCOL_HEADER = "sec-websocket-protocol"
_TOKEN_MIN_LENGTH = 16


def looks_like_token(value: str) -> bool:
    """A subprotocol that is a credential rather than a protocol name.

    JWTs (``eyJ...``) and any value of 16 or more characters mixing at least two of lower
    case, upper case and digits count; names such as ``graphql-transport-ws`` or
    ``v12.stomp`` do not.
    """
    if value.startswith("eyJ"):
        return True
    if len(value) < _TOKEN_MIN_LENGTH:
        return False
    classes = (
        any(c.islower() for c in value),
        any(c.isupper() for c in value),
        any(c.isdigit() for c in value),
    )
    return sum(classes) >= 2


SECRET_PREFIX = "WSCENARIO_SECRET_"
"""Environment variables holding the real values of placeholders."""

_SHORTEST_HIDDEN = 4
"""Shorter values are not hidden: replacing every ``a`` would hide nothing and garble all."""

T = TypeVar("T")


def secrets_in(env: Mapping[str, str]) -> dict[str, str]:
    """The values of ``env``'s ``WSCENARIO_SECRET_<NAME>`` variables, longest first, each with
    what a report shows instead (``<WSCENARIO_SECRET_NAME>``)."""
    names = sorted(name for name in env if name.startswith(SECRET_PREFIX))  # no value read
    found = {env[name]: f"<{name}>" for name in names if len(env[name]) >= _SHORTEST_HIDDEN}
    return dict(sorted(found.items(), key=lambda item: -len(item[0])))


def hide(value: T, secrets: Mapping[str, str]) -> T:
    """``value`` with every secret in its text (inside mappings and sequences too) replaced."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret, shown in secrets.items():
            value = value.replace(secret, shown)  # type: ignore[assignment]
        return value
    if isinstance(value, dict):
        return {key: hide(item, secrets) for key, item in value.items()}  # type: ignore[return-value]
    if isinstance(value, list | tuple):
        return type(value)(hide(item, secrets) for item in value)
    return value


def secret_variable(name: str) -> str:
    """The environment variable holding the value of placeholders named ``name``."""
    return SECRET_PREFIX + re.sub(r"[^A-Z0-9]", "_", name.upper())


def secret_order(variable: str) -> tuple[str | int, ...]:
    """A sort key for variables that puts ``..._TOKEN_2`` before ``..._TOKEN_10``."""
    parts = re.split(r"([0-9]+)", variable)  # text at even places, numbers at odd ones
    return tuple(int(part) if place % 2 else part for place, part in enumerate(parts))


def restore(text: str, env: Mapping[str, str], missing: set[str] | None = None) -> str:
    """``text`` with every placeholder replaced by its ``WSCENARIO_SECRET_<NAME>`` value.

    A placeholder without a variable in ``env`` stays as it is, and its name is added to
    ``missing`` (when given) so the caller can warn once per name.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = env.get(secret_variable(name))
        if found is None:
            if missing is not None:
                missing.add(name)
            return match.group(0)
        return found

    return PLACEHOLDER.sub(value, text)


class _SecretNames:
    """The names of one transcript's secrets: each distinct value its own environment variable.

    The first value found under a name keeps it; another value under that name is named
    ``NAME-2``, then ``NAME-3``..., skipping a name whose variable another value already holds
    (``token-2`` and ``token_2`` are both ``WSCENARIO_SECRET_TOKEN_2``). An equal value under
    the same name gets the same name again.
    """

    def __init__(self) -> None:
        self._named: dict[tuple[str, bytes], str] = {}
        self._holders: dict[str, bytes] = {}  # variable -> digest of the value it holds
        self._last: dict[str, int] = {}  # name -> the last number tried for it

    def name(self, name: str, digest: bytes) -> str:
        """The name of the value with HMAC ``digest`` found under ``name``."""
        known = self._named.get((name, digest))
        if known is not None:
            return known
        number = self._last.get(name, 0)
        while True:
            number += 1
            numbered = name if number == 1 else f"{name}-{number}"
            if self._holders.setdefault(secret_variable(numbered), digest) == digest:
                break
        self._last[name] = number
        self._named[(name, digest)] = numbered
        return numbered


class Redactor:
    """Replaces the secrets a :class:`RedactionPolicy` names with keyed placeholders.

    ``numbered`` (for one transcript) gives each distinct value found under a name its own
    name, ``token``, ``token-2``..., so that replay puts each value back from its own variable;
    one redactor per transcript keeps the names of one independent of the others. Without it
    every value is named after what matched (for what is only shown, such as a console line).
    """

    def __init__(self, key: bytes, policy: RedactionPolicy, *, numbered: bool = True) -> None:
        self.policy = policy
        self._key = key
        self._names = _SecretNames() if numbered else None
        self._headers = frozenset(name.lower() for name in policy.headers)
        self._query_exact = frozenset(p.lower() for p in policy.query if not p.endswith("*"))
        self._query_prefixes = tuple(p[:-1].lower() for p in policy.query if p.endswith("*"))
        self._pointers = tuple(
            (rule.name, _pointer_tokens(rule.pointer))
            for rule in policy.rules
            if rule.pointer is not None
        )
        self._regexes = tuple(
            (rule.name, re.compile(rule.regex)) for rule in policy.rules if rule.regex is not None
        )
        self._rewrites_text = policy.enabled and bool(self._pointers or self._regexes)

    def placeholder(self, name: str, value: str) -> str:
        """The placeholder for ``value`` found under ``name``."""
        digest = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
        name = placeholder_name(name)
        if self._names is not None:
            name = self._names.name(name, digest.digest())
        return f"<redacted:{name}:{digest.hexdigest()[:8]}>"

    # ----------------------------------------------------------------- handshake

    def headers(self, headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """The headers with credential values, and token-like subprotocols, replaced."""
        if not self.policy.enabled:
            return tuple(headers)
        result: list[tuple[str, str]] = []
        for name, value in headers:
            lower = name.lower()
            if lower in self._headers:
                value = self.placeholder(lower, value)
            elif lower == _SUBPROTOCOL_HEADER and self.policy.subprotocols:
                value = ", ".join(self.subprotocol(p.strip()) for p in value.split(","))
            result.append((name, value))
        return tuple(result)

    def subprotocol(self, value: str) -> str:
        """A subprotocol, replaced when it looks like a token."""
        if self.policy.enabled and self.policy.subprotocols and looks_like_token(value):
            return self.placeholder("subprotocol", value)
        return value

    def target(self, target: str) -> str:
        """A request target (``/path?query``) with secret query parameter values replaced."""
        if not self.policy.enabled or "?" not in target:
            return target
        path, query = target.split("?", 1)
        return f"{path}?{self._query(query)}"

    def url(self, url: str) -> str:
        """A URL with its userinfo and secret query parameter values replaced."""
        if not self.policy.enabled:
            return url
        try:
            parts = urlsplit(url)
        except ValueError:
            return url
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            netloc = f"{self.placeholder('userinfo', userinfo)}@{host}"
        query = self._query(parts.query) if parts.query else parts.query
        return urlunsplit(parts._replace(netloc=netloc, query=query))

    def _query(self, query: str) -> str:
        pieces: list[str] = []
        for piece in query.split("&"):
            name, sep, value = piece.partition("=")
            key = unquote(name).lower()
            if sep and value and self._secret_parameter(key):
                piece = f"{name}={self.placeholder(key, value)}"
            pieces.append(piece)
        return "&".join(pieces)

    def _secret_parameter(self, name: str) -> bool:
        return name in self._query_exact or name.startswith(self._query_prefixes)

    # ------------------------------------------------------------------ messages

    def text(self, data: str) -> str:
        """A text message with the user rules applied: JSON Pointers first, then regexes."""
        if not self._rewrites_text:
            return data
        if self._pointers:
            data = self._json_rules(data)
        for name, regex in self._regexes:
            data = regex.sub(functools.partial(self._regex_match, name), data)
        return data

    def _json_rules(self, data: str) -> str:
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):
            return data
        changed = False
        for name, tokens in self._pointers:
            changed = self._replace_at(document, tokens, name) or changed
        if not changed:
            return data
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))

    def _replace_at(self, document: Any, tokens: tuple[str, ...], name: str) -> bool:
        parent = document
        for token in tokens[:-1]:
            parent = _child(parent, token)
            if parent is _MISSING:
                return False
        last = tokens[-1]
        value = _child(parent, last)
        if value is _MISSING or (isinstance(value, str) and PLACEHOLDER.fullmatch(value)):
            return False
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        replacement = self.placeholder(name, shown)
        if isinstance(parent, list):
            parent[int(last)] = replacement
        else:
            parent[last] = replacement
        return True

    def _regex_match(self, name: str, match: re.Match[str]) -> str:
        whole = match.group(0)
        if match.re.groups and match.group(1) is not None:
            start, end = match.span(1)
            offset = match.start()
            secret = match.group(1)
            if not secret or PLACEHOLDER.fullmatch(secret):
                return whole
            return whole[: start - offset] + self.placeholder(name, secret) + whole[end - offset :]
        if match.re.groups or not whole or PLACEHOLDER.fullmatch(whole):
            return whole
        return self.placeholder(name, whole)


_MISSING = object()


def _pointer_tokens(pointer: str) -> tuple[str, ...]:
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def _child(value: Any, token: str) -> Any:
    if isinstance(value, dict):
        return value.get(token, _MISSING)
    if isinstance(value, list) and token.isdigit() and int(token) < len(value):
        return value[int(token)]
    return _MISSING
