"""The server side of the opening handshake: ``accept``.

The request head must arrive within ``Limits.handshake_timeout`` and fit the head limits;
invalid requests are answered with an HTTP error (400, 408, 426, 431) and cost only their own
connection. ``decide`` sees each valid request and answers ``Accept`` or ``Reject``. No
extension is accepted unless ``Accept.deflate`` asks for permessage-deflate (RFC 7692), which
is then negotiated when the client offers it, with decompression capped at the message size.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import anyio.abc
import h11
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSAttribute

from wscenario.core.model import Limits
from wscenario.core.wire import HandshakeDone
from wscenario.engine.connection import Address, WebSocketConnection, stream_address
from wscenario.engine.deflate import negotiate
from wscenario.engine.errors import PEER_ERRORS, TRANSPORT_ERRORS
from wscenario.engine.http_head import (
    HeadTooLarge,
    accept_token,
    header_items,
    header_tokens,
    header_values,
    read_head,
)
from wscenario.engine.transcript_tap import recording_active, server_tap

REFUSAL_WRITE_TIMEOUT = 1.0
"""How long a server's refusal may take to write before the connection is dropped anyway."""


@dataclass(frozen=True)
class HandshakeRequest:
    """A client's valid opening request, as ``accept`` hands it to ``decide``.

    ``headers`` are in order with names as received; ``client`` is the peer's address.
    """

    path: str
    headers: tuple[tuple[str, str], ...]
    subprotocols: tuple[str, ...]
    client: Address | None


@dataclass(frozen=True)
class Accept:
    """Answer 101, selecting ``subprotocol``, with ``extra_headers`` added; ``deflate`` agrees
    to permessage-deflate when the client offers it."""

    subprotocol: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    deflate: bool = False


@dataclass(frozen=True)
class Reject:
    """Answer with this HTTP status, headers and body, then close."""

    status: int = 403
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


Decide = Callable[[HandshakeRequest], Awaitable[Accept | Reject]]


class _Refusal(Exception):
    """The request cannot be upgraded; answer ``status`` with the message as body."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(message)
        self.status = status
        self.headers = headers


async def accept(
    stream: anyio.abc.ByteStream,
    limits: Limits,
    decide: Decide,
    *,
    auto_pong: bool = False,
) -> tuple[WebSocketConnection, HandshakeDone] | None:
    """Server side: read the opening request, let ``decide`` answer it, return the connection.

    See ``_accept``; while a recording is active (``engine.transcript_tap``), an accepted or
    refused connection also gets a transcript.
    """
    if not recording_active():
        return await _accept(stream, limits, decide, auto_pong=auto_pong)
    decided: list[tuple[HandshakeRequest, Accept | Reject]] = []

    async def deciding(request: HandshakeRequest) -> Accept | Reject:
        decision = await decide(request)
        decided.append((request, decision))
        return decision

    local = stream_address(stream, SocketAttribute.local_address)
    secure = stream.extra(TLSAttribute.ssl_object, None) is not None
    accepted = await _accept(stream, limits, deciding, auto_pong=auto_pong)
    if decided:
        request, decision = decided[0]
        tap = server_tap(local, request.path, secure=secure)
        if tap is not None and accepted is not None:
            tap.attach(*accepted)
        elif tap is not None and isinstance(decision, Reject):
            tap.refused(
                request.path, request.headers, decision.status, decision.headers, decision.body
            )
    return accepted


async def _accept(
    stream: anyio.abc.ByteStream,
    limits: Limits,
    decide: Decide,
    *,
    auto_pong: bool = False,
) -> tuple[WebSocketConnection, HandshakeDone] | None:
    """Server side: read the opening request, let ``decide`` answer it, return the connection.

    The request head must arrive within ``limits.handshake_timeout`` and fit
    ``max_head_size``/``max_headers``, else the client gets 408 or 431 and the stream is closed.
    An invalid request gets 400 (426 for an unsupported version). ``decide`` runs outside that
    deadline, so it may hold the answer back on purpose. Returns ``None`` when the request was
    refused or failed (the stream is then closed).

    Raises:
        ValueError: ``decide`` answered with a status or header HTTP cannot carry (the client
            got 500 first).
    """
    try:
        try:
            with anyio.fail_after(limits.handshake_timeout):
                head, rest = await read_head(stream, limits)
                http, request = _parse_request(head, stream)
        except TimeoutError:
            raise _Refusal(408, "request head not received in time") from None
        except HeadTooLarge as exc:
            raise _Refusal(431, f"request {exc}") from None
        decision = await decide(request)
        try:
            if isinstance(decision, Reject):
                await _send_reject(stream, http, decision)
                await anyio.aclose_forcefully(stream)
                return None
            return await _send_accept(stream, http, request, decision, limits, rest, auto_pong)
        except h11.LocalProtocolError as exc:
            await _send_refusal(stream, _Refusal(500, "the server cannot answer"))
            raise ValueError(f"cannot answer the handshake with {decision}: {exc}") from exc
    except _Refusal as refusal:
        await _send_refusal(stream, refusal)
    except TRANSPORT_ERRORS:
        pass
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise
    await anyio.aclose_forcefully(stream)
    return None


def _parse_request(
    head: bytes, stream: anyio.abc.ByteStream
) -> tuple[h11.Connection, HandshakeRequest]:
    http = h11.Connection(h11.SERVER)
    try:
        http.receive_data(head)
        event = http.next_event()
    except PEER_ERRORS as exc:
        raise _Refusal(400, f"invalid HTTP request: {exc}") from exc
    if not isinstance(event, h11.Request):
        raise _Refusal(400, "invalid HTTP request")
    headers = header_items(event.headers.raw_items())
    if event.method != b"GET":
        raise _Refusal(400, "Request method must be GET")
    if event.http_version != b"1.1":
        raise _Refusal(400, "WebSocket needs HTTP/1.1")
    if "upgrade" not in (token.lower() for token in header_tokens(headers, "connection")):
        raise _Refusal(400, "Missing header, 'Connection: Upgrade'")
    if "websocket" not in (token.lower() for token in header_tokens(headers, "upgrade")):
        raise _Refusal(400, "Missing header, 'Upgrade: websocket'")
    version = header_values(headers, "sec-websocket-version")
    if version != ["13"]:
        status = 426 if version else 400
        raise _Refusal(
            status, "Sec-WebSocket-Version must be 13", (("Sec-WebSocket-Version", "13"),)
        )
    keys = header_values(headers, "sec-websocket-key")
    if len(keys) != 1 or not _valid_key(keys[0]):
        raise _Refusal(400, "Sec-WebSocket-Key must be base64 of 16 bytes, given once")
    request = HandshakeRequest(
        path=event.target.decode("latin-1"),
        headers=headers,
        subprotocols=tuple(header_tokens(headers, "sec-websocket-protocol")),
        client=stream_address(stream, SocketAttribute.remote_address),
    )
    return http, request


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key.strip(), validate=True)) == 16
    except ValueError:
        return False


async def _send_accept(
    stream: anyio.abc.ByteStream,
    http: h11.Connection,
    request: HandshakeRequest,
    decision: Accept,
    limits: Limits,
    rest: bytes,
    auto_pong: bool,
) -> tuple[WebSocketConnection, HandshakeDone]:
    (key,) = header_values(request.headers, "sec-websocket-key")
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_token(key.strip().encode("ascii"))),
    ]
    if decision.subprotocol is not None:
        headers.append(("Sec-WebSocket-Protocol", decision.subprotocol))
    agreed = negotiate(request.headers, limits.max_message_size) if decision.deflate else None
    if agreed is not None:
        headers.append(("Sec-WebSocket-Extensions", agreed[1]))
    headers += decision.extra_headers
    answer = h11.InformationalResponse(
        status_code=101, headers=headers, reason=b"Switching Protocols"
    )
    await stream.send(http.send(answer) or b"")
    connection = WebSocketConnection(
        stream,
        client=False,
        limits=limits,
        subprotocol=decision.subprotocol,
        request_headers=request.headers,
        response_headers=tuple(headers),
        received=rest,
        auto_pong=auto_pong,
        deflate=None if agreed is None else agreed[0],
    )
    done = HandshakeDone(
        101, "Switching Protocols", request.headers, decision.subprotocol, request.path
    )
    return connection, done


async def _send_reject(stream: anyio.abc.ByteStream, http: h11.Connection, reject: Reject) -> None:
    framing = ("content-length", "transfer-encoding", "connection")
    headers = [(name, value) for name, value in reject.headers if name.lower() not in framing]
    headers += [("Content-Length", str(len(reject.body))), ("Connection", "close")]
    data = http.send(h11.Response(status_code=reject.status, headers=headers)) or b""
    data += http.send(h11.Data(data=reject.body)) or b""
    with anyio.move_on_after(REFUSAL_WRITE_TIMEOUT):
        with contextlib.suppress(*TRANSPORT_ERRORS):
            await stream.send(data)


async def _send_refusal(stream: anyio.abc.ByteStream, refusal: _Refusal) -> None:
    """Answer an unusable request; the text is fixed by this module, so it is formatted here."""
    body = f"{refusal}\n".encode()
    phrase = _PHRASES.get(refusal.status, "Bad Request")
    lines = [f"HTTP/1.1 {refusal.status} {phrase}", "Content-Type: text/plain; charset=utf-8"]
    lines += [f"{name}: {value}" for name, value in refusal.headers]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    with anyio.move_on_after(REFUSAL_WRITE_TIMEOUT):
        with contextlib.suppress(*TRANSPORT_ERRORS):
            await stream.send("\r\n".join(lines).encode("latin-1") + body)


_PHRASES = {
    400: "Bad Request",
    408: "Request Timeout",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}
