"""Argument parsing of ``connect``/``send``/``close``, following the ArkTS overloads.

Python stands in for JavaScript: a ``Mapping`` is an object, a callable is a function, ``str``
is a string and ``bytes``/``bytearray`` an ArrayBuffer (a ``memoryview`` plays a TypedArray,
which the device refuses). A callable in the last position is the callback; it receives
the 401 too when the other arguments are wrong. Parse failures never raise: they are results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from wscenario.core.events import CallError
from wscenario.core.ohos_errors import PARAMETER_ERROR

MAX_SEND_BYTES = 5 * 1024 * 1024 - 16
"""The largest payload ``send`` accepts, in UTF-8 bytes for text."""

Callback = Callable[..., object]
Options = Mapping[str, object]
T = TypeVar("T")


@dataclass(frozen=True)
class ConnectArgs:
    """``connect(url, options)`` once its arguments fit an overload."""

    url: str
    options: Options = field(default_factory=dict)


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """A call's arguments: ``params`` (or the 401 they earn) and the callback, if any."""

    params: T | CallError
    callback: Callback | None = None


def _last_callback(args: tuple[object, ...]) -> Callback | None:
    last = args[-1] if args else None
    return last if callable(last) else None


def _bad(args: tuple[object, ...]) -> Parsed[T]:
    return Parsed(PARAMETER_ERROR, _last_callback(args))


def parse_connect(args: tuple[object, ...]) -> Parsed[ConnectArgs]:
    """``connect(url[, options])``, ``connect(url, cb)``, ``connect(url, options, cb)``."""
    if not 1 <= len(args) <= 3 or not isinstance(args[0], str):
        return _bad(args)
    url, rest = args[0], args[1:]
    callback = _last_callback(rest)
    if callback is not None:
        rest = rest[:-1]
    if len(args) == 3 and callback is None:
        return _bad(args)
    if rest and not isinstance(rest[0], Mapping):
        return _bad(args)
    options: Options = rest[0] if rest else {}  # type: ignore[assignment]
    if not _options_fit(options):
        return _bad(args)
    return Parsed(ConnectArgs(url, options), callback)


def _options_fit(options: Options) -> bool:
    protocol = options.get("protocol")
    if protocol is not None and not isinstance(protocol, str):
        return False
    proxy = options.get("proxy")
    if proxy is None or proxy in ("system", "no-proxy"):
        return True
    if not isinstance(proxy, Mapping):
        return False
    port = proxy.get("port")
    return not isinstance(port, int) or 0 <= port <= 65535


def parse_send(args: tuple[object, ...]) -> Parsed[str | bytes]:
    """``send(data)``, ``send(data, cb)``: data is text or an ArrayBuffer within the limit."""
    if not 1 <= len(args) <= 2 or (len(args) == 2 and not callable(args[1])):
        return _bad(args)
    data = args[0]
    if isinstance(data, bytearray):
        data = bytes(data)
    if isinstance(data, str):
        # an ASCII string is its own UTF-8 (and isascii() reads a flag: no copy of it)
        size = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    elif isinstance(data, bytes):
        size = len(data)
    else:
        return _bad(args)
    if size > MAX_SEND_BYTES:
        return _bad(args)
    return Parsed(data, _last_callback(args[1:]))


def parse_close(args: tuple[object, ...]) -> Parsed[Options]:
    """``close()``, ``close(options)``, ``close(cb)``, ``close(options, cb)``."""
    callback = _last_callback(args)
    rest = args[:-1] if callback is not None else args
    if len(args) > 2 or len(rest) > 1 or (rest and not isinstance(rest[0], Mapping)):
        return _bad(args)
    options: Options = rest[0] if rest else {}  # type: ignore[assignment]
    return Parsed(options, callback)
