"""The client side of the opening handshake: ``connect``.

TCP under ``ConnectRequest.connect_timeout``; TLS and the HTTP upgrade under the smaller of
``ConnectRequest.handshake_timeout`` and ``Limits.handshake_timeout``, together or, with
``ConnectRequest.timeout_per_stage``, each on its own. Every failure becomes a
``HandshakeError`` carrying a ``HandshakeFailed``; the reason phrase, headers (names as sent)
and up to 1 MiB of a refusal's body are kept. No extension is offered.
"""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import anyio.abc
import h11
from anyio.streams.tls import TLSStream

from wscenario.core.model import Limits
from wscenario.core.urls import url_host
from wscenario.core.wire import (
    ConnectRequest,
    HandshakeDone,
    HandshakeFailed,
    HandshakeFailureKind,
)
from wscenario.engine import tls
from wscenario.engine.connection import READ_SIZE, WebSocketConnection
from wscenario.engine.errors import (
    PEER_ERRORS,
    TRANSPORT_ERRORS,
    HandshakeError,
    TlsSetupError,
    connect_failure_from,
    lost_from,
)
from wscenario.engine.http_head import (
    HeadTooLarge,
    accept_token,
    header_items,
    header_tokens,
    header_values,
    read_head,
)
from wscenario.engine.tcp_stream import adopt
from wscenario.engine.transcript_tap import client_tap

MAX_REJECT_BODY = 1024 * 1024
"""How much of a non-101 response body a client keeps."""

_TLS_HANDSHAKE_ERRORS: tuple[type[Exception], ...] = (*TRANSPORT_ERRORS, TimeoutError, ValueError)
"""What a failed TLS handshake raises (``TimeoutError`` for its deadline, ``ValueError`` for
a host name ``ssl`` cannot use)."""

ByteStreamFactory = Callable[[], Awaitable[anyio.abc.ByteStream]]


@dataclass(frozen=True)
class _Target:
    secure: bool
    host: str
    port: int
    resource: str
    host_header: str


def _target(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _failed("invalid", f"invalid URL: {exc}") from exc
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise _failed("invalid", f"not a ws:// or wss:// URL with a host: {url!r}")
    secure = parts.scheme == "wss"
    default = 443 if secure else 80
    host = parts.hostname
    shown = url_host(host)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = shown if port in (None, default) else f"{shown}:{port}"
    return _Target(secure, host, port or default, resource, host_header)


def _failed(
    kind: HandshakeFailureKind,
    message: str,
    *,
    status: int = 0,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> HandshakeError:
    return HandshakeError(HandshakeFailed(kind, message, status, headers, body))


async def connect(
    request: ConnectRequest,
    limits: Limits,
    *,
    stream_factory: ByteStreamFactory | None = None,
    auto_pong: bool = False,
) -> tuple[WebSocketConnection, HandshakeDone]:
    """Open a client connection to ``request.url`` and run the opening handshake.

    TCP must connect within ``request.connect_timeout``; from then on, TLS and the HTTP upgrade
    together (each on its own with ``request.timeout_per_stage``) must finish within the
    smaller of ``request.handshake_timeout`` and ``limits.handshake_timeout``.
    ``stream_factory`` replaces the TCP connect (tests inject streams with it).

    Raises:
        HandshakeError: with a ``HandshakeFailed`` saying why (refused, dns, tls, timeout,
            status, accept, protocol, invalid, too-large).
    """
    tap = client_tap(request.url, request.tls)  # None unless a recording is active
    try:
        connection, done = await _connect(request, limits, stream_factory, auto_pong)
    except HandshakeError as exc:
        if tap is not None:
            tap.handshake_failed(exc.failed)
        raise
    except BaseException:
        if tap is not None:
            tap.close("interrupted")
        raise
    if tap is not None:
        tap.attach(connection, done)
    return connection, done


async def _connect(
    request: ConnectRequest,
    limits: Limits,
    stream_factory: ByteStreamFactory | None,
    auto_pong: bool,
) -> tuple[WebSocketConnection, HandshakeDone]:
    target = _target(request.url)
    deadline = min(request.handshake_timeout, limits.handshake_timeout)
    stream, ends_at = await _open(request, target, deadline, stream_factory)
    if request.timeout_per_stage:
        ends_at = anyio.current_time() + deadline  # the upgrade's own, after TLS's
    try:
        with anyio.fail_after(max(0.0, ends_at - anyio.current_time())):
            return await _client_handshake(stream, request, target, limits, auto_pong)
    except _StatusRefusal as refusal:
        with anyio.move_on_after(ends_at - anyio.current_time()):
            refusal.body = await _reject_body(stream, refusal.http, refusal.rest)
        await anyio.aclose_forcefully(stream)
        raise refusal.error() from None
    except BaseException as exc:
        await anyio.aclose_forcefully(stream)
        if isinstance(exc, TimeoutError):
            raise _failed("timeout", f"no handshake response within {deadline:g} s") from exc
        if isinstance(exc, TRANSPORT_ERRORS):
            lost = lost_from(exc)
            kind: HandshakeFailureKind = "tls" if lost.kind == "tls" else "protocol"
            raise _failed(kind, f"connection lost during the handshake: {lost.message}") from exc
        raise


class _StatusRefusal(Exception):
    """The server answered something other than 101; its body is still to be read."""

    def __init__(
        self, response: h11.InformationalResponse | h11.Response, http: h11.Connection, rest: bytes
    ) -> None:
        super().__init__(response.status_code)
        self.status = response.status_code
        self.reason = response.reason.decode("latin-1")
        self.headers = header_items(response.headers.raw_items())
        self.http = http
        self.rest = rest
        self.body = b""

    def error(self) -> HandshakeError:
        return _failed(
            "status",
            f"server answered {self.status} {self.reason}".rstrip(),
            status=self.status,
            headers=self.headers,
            body=self.body,
        )


async def _open(
    request: ConnectRequest,
    target: _Target,
    deadline: float,
    stream_factory: ByteStreamFactory | None,
) -> tuple[anyio.abc.ByteStream, float]:
    """TCP, then TLS for wss (once more without checks for a self-signed leaf in device mode).

    Returns the stream and when the handshake's ``deadline`` (counted from TCP) ends.
    """
    context = None
    if target.secure:
        try:
            context = tls.client_context(request.tls)
        except TlsSetupError as exc:
            raise HandshakeError(connect_failure_from(exc)) from exc
    stream = await _open_tcp(request, target, stream_factory)
    ends_at = anyio.current_time() + deadline
    if context is None:
        return stream, ends_at
    try:
        return await _start_tls(stream, target, context, ends_at), ends_at
    except _TLS_HANDSHAKE_ERRORS as exc:
        if not tls.accepts_self_signed(request.tls, exc):
            raise HandshakeError(connect_failure_from(exc)) from exc
    stream = await _open_tcp(request, target, stream_factory)
    context = tls.self_signed_context(request.tls)
    try:
        return await _start_tls(stream, target, context, ends_at), ends_at
    except _TLS_HANDSHAKE_ERRORS as exc:
        raise HandshakeError(connect_failure_from(exc)) from exc


async def _open_tcp(
    request: ConnectRequest, target: _Target, stream_factory: ByteStreamFactory | None
) -> anyio.abc.ByteStream:
    try:
        with anyio.fail_after(request.connect_timeout):
            if stream_factory is not None:
                return await stream_factory()
            return adopt(await anyio.connect_tcp(target.host, target.port))
    except TimeoutError as exc:
        raise _failed("timeout", f"no TCP connection within {request.connect_timeout:g} s") from exc
    except OSError as exc:
        raise HandshakeError(connect_failure_from(exc)) from exc


async def _start_tls(
    stream: anyio.abc.ByteStream, target: _Target, context: ssl.SSLContext, ends_at: float
) -> anyio.abc.ByteStream:
    """TLS over ``stream`` with SNI for the URL's host, done by ``ends_at``.

    ``standard_compatible=False``: a peer that closes without close_notify (a ragged EOF, as
    most servers do) ends the stream like a plain EOF instead of breaking it.
    """
    try:
        with anyio.fail_after(max(0.0, ends_at - anyio.current_time())):
            return await TLSStream.wrap(
                stream, hostname=target.host, ssl_context=context, standard_compatible=False
            )
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def _client_handshake(
    stream: anyio.abc.ByteStream,
    request: ConnectRequest,
    target: _Target,
    limits: Limits,
    auto_pong: bool,
) -> tuple[WebSocketConnection, HandshakeDone]:
    key = base64.b64encode(os.urandom(16))
    headers = _request_headers(request, target, key)
    http = h11.Connection(h11.CLIENT)
    try:
        data = http.send(h11.Request(method="GET", target=target.resource, headers=headers))
        http.send(h11.EndOfMessage())
    except h11.LocalProtocolError as exc:
        raise _failed("invalid", f"cannot send this request: {exc}") from exc
    await stream.send(data or b"")
    try:
        head, rest = await read_head(stream, limits)
    except HeadTooLarge as exc:
        raise _failed("too-large", f"response {exc}") from exc
    except anyio.EndOfStream as exc:
        raise _failed("protocol", "connection closed before the handshake response") from exc
    try:
        http.receive_data(head)
        response = http.next_event()
    except PEER_ERRORS as exc:
        raise _failed("protocol", f"invalid handshake response: {exc}") from exc
    if not isinstance(response, h11.InformationalResponse | h11.Response):
        raise _failed("protocol", "invalid handshake response")
    received = header_items(response.headers.raw_items())
    reason = response.reason.decode("latin-1")
    if response.status_code != 101:
        raise _StatusRefusal(response, http, rest)
    subprotocol = _check_upgrade(received, key, request.subprotocols)
    connection = WebSocketConnection(
        stream,
        client=True,
        limits=limits,
        subprotocol=subprotocol,
        request_headers=tuple(headers),
        response_headers=received,
        received=rest,
        auto_pong=auto_pong,
    )
    done = HandshakeDone(101, reason, received, subprotocol, target.resource)
    return connection, done


def _request_headers(request: ConnectRequest, target: _Target, key: bytes) -> list[tuple[str, str]]:
    """The upgrade request's headers: ours, then the request's own in their order.

    A ``Host``, ``Upgrade``, ``Connection``, ``Sec-WebSocket-Version`` or
    ``Sec-WebSocket-Protocol`` given by the request replaces ours; the key is always ours.
    """
    ours = [
        ("Host", target.host_header),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key.decode("ascii")),
        ("Sec-WebSocket-Version", "13"),
    ]
    if request.subprotocols:
        ours.append(("Sec-WebSocket-Protocol", ", ".join(request.subprotocols)))
    given = {name.lower() for name, _ in request.headers} - {"sec-websocket-key"}
    headers = [(name, value) for name, value in ours if name.lower() not in given]
    headers += [
        (name, value) for name, value in request.headers if name.lower() != "sec-websocket-key"
    ]
    return headers


def _check_upgrade(
    headers: tuple[tuple[str, str], ...], key: bytes, offered: tuple[str, ...]
) -> str | None:
    """Validate a 101 (RFC 6455 §4.1); returns the subprotocol the server selected."""
    if "websocket" not in (token.lower() for token in header_tokens(headers, "upgrade")):
        raise _failed("protocol", "the 101 response lacks 'Upgrade: websocket'")
    if "upgrade" not in (token.lower() for token in header_tokens(headers, "connection")):
        raise _failed("protocol", "the 101 response lacks 'Connection: Upgrade'")
    accept = header_values(headers, "sec-websocket-accept")
    if accept != [accept_token(key)]:
        raise _failed("accept", f"wrong Sec-WebSocket-Accept: {', '.join(accept) or 'none'}")
    if header_values(headers, "sec-websocket-extensions"):
        raise _failed("protocol", "the server selected an extension that was not offered")
    selected = header_tokens(headers, "sec-websocket-protocol")
    if not selected:
        return None
    if len(selected) > 1 or selected[0] not in offered:
        raise _failed(
            "protocol",
            f"the server selected a subprotocol that was not offered: {', '.join(selected)}",
        )
    return selected[0]


async def _reject_body(stream: anyio.abc.ByteStream, http: h11.Connection, rest: bytes) -> bytes:
    """Up to ``MAX_REJECT_BODY`` bytes of a refusal's body: whatever came before EOF or an error."""
    body = bytearray()
    try:
        http.receive_data(rest)
        while len(body) < MAX_REJECT_BODY:
            event = http.next_event()
            if isinstance(event, h11.Data):
                body += event.data
            elif event is h11.NEED_DATA:
                try:
                    chunk = await stream.receive(READ_SIZE)
                except anyio.EndOfStream:
                    chunk = b""
                http.receive_data(chunk)
            else:
                break
    except (*PEER_ERRORS, *TRANSPORT_ERRORS):
        pass
    return bytes(body[:MAX_REJECT_BODY])
