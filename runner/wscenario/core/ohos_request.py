"""What a device puts on the wire for ``connect(url, options)``: the request and its policies.

Builds the ``ConnectRequest`` (URL normalised as libwebsockets does, ``Host``/``Origin`` and
user headers, offered subprotocol, TLS policy, connect timeouts) and the heartbeat policy,
each as the given API level behaves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from wscenario.core.events import CallError
from wscenario.core.ohos_errors import CERT_FILE_MISSING
from wscenario.core.urls import url_host
from wscenario.core.wire import ConnectRequest, TlsPolicy

CONNECT_TIMEOUT = 20.0
"""Seconds for the TCP connect (libwebsockets' default)."""

HANDSHAKE_TIMEOUT = 15.0
"""Seconds for each later handshake stage: TLS, waiting for the 101."""

DEFAULT_HEARTBEAT = 30
"""Seconds of ping interval and of pong timeout when not configured."""

MAX_PING_INTERVAL = 30000

_DEFAULT_PORTS = {"ws": 80, "wss": 443}


def _newer(api: int | None, level: int) -> bool:
    return api is None or api >= level


def url_limit(api: int | None) -> int:
    """The length (in bytes) a URL must stay below at ``api``."""
    if _newer(api, 26):
        return 8196
    return 2048 if _newer(api, 15) else 1024


def _text(value: object) -> str:
    """An option's value if it is a non-empty string, else ``""`` (wrong types are ignored)."""
    return value if isinstance(value, str) else ""


def missing_certificate(
    options: Mapping[str, object], path_exists: Callable[[str], bool]
) -> CallError | None:
    """2302002 when ``caPath`` or a ``clientCert`` path is given but does not resolve."""
    ca_path = _text(options.get("caPath"))
    if ca_path and not path_exists(ca_path):
        return CERT_FILE_MISSING
    cert = options.get("clientCert")
    if isinstance(cert, Mapping) and _text(cert.get("certPath")):
        for key in ("certPath", "keyPath"):
            path = _text(cert.get(key))
            if not path or not path_exists(path):
                return CERT_FILE_MISSING
    return None


@dataclass(frozen=True)
class Target:
    """A ``ws``/``wss`` URL split as the device sees it."""

    scheme: str
    host: str
    port: int
    resource: str

    @property
    def default_port(self) -> bool:
        """Whether the port is the scheme's default."""
        return self.port == _DEFAULT_PORTS[self.scheme]

    def authority(self, with_port: bool) -> str:
        """``host`` or ``host:port`` (IPv6 hosts in brackets)."""
        host = url_host(self.host)
        return f"{host}:{self.port}" if with_port else host

    @property
    def url(self) -> str:
        """The normalised URL: ``/`` before an empty path or a query, default port left out."""
        return f"{self.scheme}://{self.authority(not self.default_port)}{self.resource}"


def parse_url(url: str, api: int | None) -> Target | None:
    """The URL's parts, or ``None`` where the device answers 2302001."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in _DEFAULT_PORTS or len(url.encode("utf-8")) >= url_limit(api):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, parts.hostname, port or _DEFAULT_PORTS[scheme], resource)


def _user_headers(options: Mapping[str, object]) -> list[tuple[str, str]]:
    header = options.get("header")
    if not isinstance(header, Mapping):
        return []
    return [(str(name).lower(), value) for name, value in header.items() if _text(value)]


def _tls_policy(options: Mapping[str, object], api: int | None) -> TlsPolicy:
    skip = _newer(api, 20) and options.get("skipServerCertVerification") is True
    cert = options.get("clientCert")
    certfile = keyfile = password = None
    if isinstance(cert, Mapping) and _text(cert.get("certPath")):
        certfile = _text(cert.get("certPath"))
        keyfile = _text(cert.get("keyPath"))
        password = _text(cert.get("keyPassword"))
    return TlsPolicy(
        mode="none" if skip else "device",
        cafile=_text(options.get("caPath")) or None,
        certfile=certfile,
        keyfile=keyfile,
        password=password,
        allow_expired=skip,
    )


def connect_request(
    target: Target, options: Mapping[str, object], api: int | None
) -> ConnectRequest:
    """The request a device sends for ``target`` with ``options`` at ``api``."""
    origin_port = _newer(api, 26) and options.get("supportOriginPort") is True
    origin_scheme = "https" if target.scheme == "wss" else "http"
    headers = [
        ("Pragma", "no-cache"),
        ("Cache-Control", "no-cache"),
        ("Host", target.authority(_newer(api, 20) and not target.default_port)),
        (
            "Origin",
            f"{origin_scheme}://{target.authority(origin_port and not target.default_port)}",
        ),
        *_user_headers(options),
    ]
    protocol = _text(options.get("protocol"))
    return ConnectRequest(
        url=target.url,
        headers=tuple(headers),
        subprotocols=(protocol,) if protocol else (),
        tls=_tls_policy(options, api),
        connect_timeout=CONNECT_TIMEOUT,
        handshake_timeout=HANDSHAKE_TIMEOUT,
        timeout_per_stage=True,
    )


@dataclass(frozen=True)
class Heartbeat:
    """The keepalive: ping ``interval`` s after the last pong, hang up ``timeout`` s later.

    ``interval`` 0 turns both off; ``timeout`` 0 never hangs up.
    """

    interval: int
    timeout: int


def _seconds(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def heartbeat(options: Mapping[str, object], api: int | None) -> Heartbeat:
    """The heartbeat at ``api``: off up to 11, fixed 30/30 until 20, configurable from 21."""
    if not _newer(api, 12):
        return Heartbeat(0, 0)
    if not _newer(api, 21):
        return Heartbeat(DEFAULT_HEARTBEAT, DEFAULT_HEARTBEAT)
    interval = _seconds(options.get("pingInterval"))
    if interval is None or not 0 <= interval <= MAX_PING_INTERVAL:
        interval = DEFAULT_HEARTBEAT
    timeout = _seconds(options.get("pongTimeout"))
    if timeout is None or timeout < 0:
        timeout = DEFAULT_HEARTBEAT
    if interval == 0:
        timeout = 0
    elif timeout > interval and timeout != DEFAULT_HEARTBEAT:
        timeout = interval
    return Heartbeat(interval, timeout)
