"""What a recording redacts: the policy written into every transcript header.

The defaults cover where secrets show up in WebSocket traffic: credential headers, token-like
query parameters, URL userinfo and subprotocols that look like tokens. User rules add JSON
Pointers (JSON text messages) and regular expressions (text messages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

DEFAULT_HEADERS = ("authorization", "cookie", "proxy-authorization", "set-cookie")
"""Header names whose values are always redacted (lower case)."""

DEFAULT_QUERY = (
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "auth",
    "api_key",
    "apikey",
    "key",
    "sig",
    "signature",
    "x-amz-*",
    "code",
    "state",
    "session",
    "sessionid",
    "password",
    "secret",
)
"""Query parameter names redacted by default; a trailing ``*`` matches any rest of the name."""


class PolicyError(ValueError):
    """A stored redaction policy does not have the expected shape."""


_NAME_CHARS = re.compile(r"[^a-z0-9_.-]")


def placeholder_name(name: str) -> str:
    """``name`` as it appears in a placeholder: lower case, other characters as ``_``."""
    return _NAME_CHARS.sub("_", name.lower()) or "_"


@dataclass(frozen=True)
class RedactionRule:
    """A user rule: a JSON Pointer into JSON text messages, or a regex over text messages.

    Exactly one of ``pointer`` and ``regex`` is set. A regex redacts its group 1 when it has
    groups, else the whole match. ``name`` is the placeholder name.
    """

    name: str
    pointer: str | None = None
    regex: str | None = None

    @classmethod
    def for_pointer(cls, pointer: str) -> RedactionRule:
        """A pointer rule named after the pointer's last token.

        Raises:
            PolicyError: ``pointer`` is not a JSON Pointer to a value inside the document.
        """
        _check_pointer(pointer)
        last = pointer.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")
        return cls(placeholder_name(last), pointer=pointer)

    @classmethod
    def for_regex(cls, regex: str) -> RedactionRule:
        """A regex rule named ``regex``, or after its first group's name when it has one.

        Raises:
            PolicyError: ``regex`` is not a valid regular expression.
        """
        names = {index: name for name, index in _compile(regex).groupindex.items()}
        return cls(placeholder_name(names.get(1, "regex")), regex=regex)


@dataclass(frozen=True)
class RedactionPolicy:
    """What to redact; ``enabled=False`` keeps everything (``--no-redact``)."""

    enabled: bool = True
    headers: tuple[str, ...] = DEFAULT_HEADERS
    query: tuple[str, ...] = DEFAULT_QUERY
    subprotocols: bool = True
    rules: tuple[RedactionRule, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The policy as the transcript header stores it."""
        return {
            "enabled": self.enabled,
            "headers": list(self.headers),
            "query": list(self.query),
            "subprotocols": self.subprotocols,
            "rules": [_rule_to_json(rule) for rule in self.rules],
        }

    @classmethod
    def from_json(cls, value: object) -> RedactionPolicy:
        """The policy stored in a transcript header.

        Raises:
            PolicyError: ``value`` does not have the header's ``redaction`` shape.
        """
        obj = _object(value, "redaction", {"enabled", "headers", "query", "subprotocols", "rules"})
        rules = obj["rules"]
        if not isinstance(rules, list):
            raise PolicyError("redaction.rules must be a list")
        return cls(
            enabled=_bool(obj["enabled"], "redaction.enabled"),
            headers=_strings(obj["headers"], "redaction.headers"),
            query=_strings(obj["query"], "redaction.query"),
            subprotocols=_bool(obj["subprotocols"], "redaction.subprotocols"),
            rules=tuple(_rule_from_json(rule) for rule in rules),
        )


def _rule_to_json(rule: RedactionRule) -> dict[str, str]:
    if rule.pointer is not None:
        return {"name": rule.name, "pointer": rule.pointer}
    return {"name": rule.name, "regex": rule.regex or ""}


def _rule_from_json(value: object) -> RedactionRule:
    if isinstance(value, dict) and "pointer" in value:
        obj = _object(value, "redaction rule", {"name", "pointer"})
        pointer = _string(obj["pointer"])
        _check_pointer(pointer)
        return RedactionRule(_string(obj["name"]), pointer=pointer)
    obj = _object(value, "redaction rule", {"name", "regex"})
    regex = _string(obj["regex"])
    _compile(regex)
    return RedactionRule(_string(obj["name"]), regex=regex)


def _check_pointer(pointer: str) -> None:
    if not pointer.startswith("/"):
        raise PolicyError(f"a redaction pointer must start with '/': {pointer!r}")


def _compile(regex: str) -> re.Pattern[str]:
    try:
        return re.compile(regex)
    except re.error as exc:
        raise PolicyError(f"redaction regex is invalid: {exc}") from None


def _object(value: object, what: str, keys: set[str]) -> dict[str, object]:
    if not isinstance(value, dict):
        raise PolicyError(f"{what} must be an object")
    if set(value) != keys:
        raise PolicyError(f"{what} must have exactly the keys {', '.join(sorted(keys))}")
    return value


def _bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{what} must be true or false")
    return value


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise PolicyError("redaction rule names, pointers and regexes must be strings")
    return value


def _strings(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PolicyError(f"{what} must be a list of strings")
    return tuple(value)
