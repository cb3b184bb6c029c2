"""What makes a WebSocket URL usable: a ws:// or wss:// scheme, a host, a valid port, no userinfo.

``url_problem`` is the check ``validate`` applies to ``client.url``; ``given_url_problem`` is the
stricter check for a URL typed on a command line, where templates are not expanded and text
that is not valid Unicode (a lone surrogate from the filesystem encoding) cannot be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from wscenario.core.valid_unicode import is_valid_unicode

URL_HINT = "write ws://host:port/path or wss://host:port/path"
USERINFO_HINT = "send credentials in a header: options: {header: {authorization: ...}}"


def url_host(host: str) -> str:
    """A host as written in a URL or a ``host:port``: an IPv6 address goes in brackets."""
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class UrlProblem:
    """Why a URL cannot be used, and what to write instead."""

    message: str
    hint: str


def url_problem(url: str) -> UrlProblem | None:
    """What is wrong with a ws:// or wss:// ``url``, or ``None`` when it can be used."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        return UrlProblem(f"invalid url: {str(exc).lower()}", URL_HINT)
    if parts.scheme not in ("ws", "wss"):
        return UrlProblem(f"url must start with ws:// or wss://, not {url!r}", URL_HINT)
    if not parts.hostname:
        return UrlProblem("url has no host", URL_HINT)
    if "@" in parts.netloc:
        return UrlProblem("url must not hold user:password@", USERINFO_HINT)
    return None


def given_url_problem(url: str) -> UrlProblem | None:
    """``url_problem`` for a URL given as it is: no templates, only valid Unicode."""
    if not is_valid_unicode(url):
        return UrlProblem("url is not valid UTF-8", URL_HINT)
    if "{{" in url:
        return UrlProblem("url holds a template; templates are not expanded here", URL_HINT)
    return url_problem(url)
