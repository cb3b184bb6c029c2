"""The ``headerReceive`` value: response headers as libwebsockets hands them to netstack.

Names are lower-case and values strings. A header libwebsockets knows by token has its
repeated values joined (``,``; ``;`` for ``set-cookie``); for other headers the first wins.
A value of 1024 bytes or more comes through as ``""`` (the copy buffer is too small).
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_VALUE_BYTES = 1023
"""Longest value that survives the copy into the 1024-byte buffer (with its terminator)."""

KNOWN_HEADERS = frozenset(
    {
        "accept", "accept-charset", "accept-encoding", "accept-language", "accept-ranges",
        "access-control-allow-origin", "access-control-request-headers", "age", "allow",
        "authorization", "cache-control", "connection", "content-disposition",
        "content-encoding", "content-language", "content-length", "content-location",
        "content-range", "content-type", "cookie", "date", "etag", "expect", "expires", "from",
        "host", "http2-settings", "if-match", "if-modified-since", "if-none-match", "if-range",
        "if-unmodified-since", "last-modified", "link", "location", "max-forwards", "origin",
        "pragma", "proxy", "proxy-authenticate", "proxy-authorization", "range", "referer",
        "refresh", "replay-nonce", "retry-after", "sec-websocket-accept",
        "sec-websocket-extensions", "sec-websocket-key", "sec-websocket-origin",
        "sec-websocket-protocol", "sec-websocket-version", "server", "set-cookie",
        "strict-transport-security", "te", "transfer-encoding", "upgrade", "user-agent", "vary",
        "via", "www-authenticate", "x-auth-token", "x-content-type-options", "x-forwarded-for",
        "x-real-ip",
    }
)  # fmt: skip
"""Header names libwebsockets parses into its token table (its lexical table)."""


def _fits(value: str) -> str:
    return value if len(value.encode("utf-8")) <= MAX_VALUE_BYTES else ""


def header_receive_value(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The object ``headerReceive`` listeners get for these response headers."""
    known: dict[str, list[str]] = {}
    custom: dict[str, str] = {}
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in KNOWN_HEADERS:
            known.setdefault(name, []).append(value)
        else:
            custom.setdefault(name, value)
    joined = {
        name: (";" if name == "set-cookie" else ",").join(values) for name, values in known.items()
    }
    return {name: _fits(value) for name, value in {**joined, **custom}.items()}
