"""The recording proxy: a WebSocket client talks to the proxy, the proxy to the real server.

Each accepted connection has two legs, each a ``WebSocketConnection`` with its own protocol
state: the client leg (the proxy is the server) and the upstream leg (the proxy is the
client, so it masks every frame with its own keys). The client's opening request is read
under the limits, then the upstream connection is opened to the same path and query (added
to the upstream URL's path) with the client's headers, minus hop-by-hop and
``Sec-WebSocket-*`` ones; offered subprotocols are offered upstream and extensions never
are, so both legs run without compression and the transcript holds plain text.

* The upstream accepts: the client gets 101 with the subprotocol the upstream selected and
  the upstream's other end-to-end response headers (``Set-Cookie``...).
* The upstream answers another status: the client gets that status, its body and its
  end-to-end headers, as if it had talked to the server directly.
* The upstream cannot be reached or breaks the handshake: 502; it does not answer in time:
  504. Past ``max_connections`` open connections: 503.

Then every message (under the size limit), ping, pong and close is forwarded as it arrives,
each direction in its own task that waits for the other leg's send before reading more, so a
slow reader slows its writer down and nothing queues up. A message in several frames is
passed on frame by frame: the other side gets the same fragments, with a ping that came
between them still between them (a text frame's cut moves to a character boundary); the
transcript holds it whole. Messages, pings and pongs that arrived together are written
together: each leg batches its writes, and they go out in one write just before the proxy
waits to read more from where they came from (:class:`_FlushBeforeRead`). A close frame is
passed on with its code and reason as written. A peer that breaks the protocol gets the
close code its engine chose (1002, 1007, 1009) and the other side gets 1011; a TCP
connection that ends without a closing handshake is ended the same way on the other leg (a
reset as a reset). ``stop()`` sends 1001 on both legs of every open connection; a leg still
open when the connection ends (its peer did not answer a close in time) gets 1000.

Everything seen is reported to a ``ConnectionRecorder``, one per connection, in the
transcript vocabulary of ``docs/transcripts.md``, including what the proxy writes on its own
(its closes, and the 502/504 it answers), each after an ``error`` event saying so.
With ``tls``, the proxy listens for ``wss://`` (the client leg is TLS).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import anyio
from anyio.abc import ByteStream
from anyio.streams.tls import TLSStream

from wscenario.core.handshake_policy import over_capacity, plain_refusal
from wscenario.core.model import Limits
from wscenario.core.urls import url_host
from wscenario.core.wire import (
    CloseReceived,
    ConnectionLost,
    ConnectRequest,
    DataFrame,
    HandshakeDone,
    HandshakeFailed,
    PingReceived,
    PongReceived,
    SendClose,
    SendMessage,
    SendPing,
    SendPong,
    TlsPolicy,
    WireAction,
    join_pieces,
)
from wscenario.engine import tls, websocket
from wscenario.engine.errors import (
    TRANSPORT_ERRORS,
    ConnectionClosed,
    HandshakeError,
    connect_failure_from,
)
from wscenario.engine.frames import close_payload
from wscenario.engine.server import GOING_AWAY_GRACE, ConnectionHost, describe_failure, peer_of
from wscenario.engine.server_driver import Peer
from wscenario.engine.tcp_stream import adopt
from wscenario.engine.tls_accept import TLS_FAILURES, accept_tls

log = logging.getLogger(__name__)

Role = Literal["client", "server"]
EndStatus = Literal["complete", "interrupted", "aborted", "io-error"]
Headers = tuple[tuple[str, str], ...]

GOING_AWAY = 1001
"""The close code both legs get when the proxy stops."""

PEER_BROKE_PROTOCOL = 1011
"""The close code one side gets when the other side broke the protocol."""

HOP_BY_HOP = frozenset(
    {
        "connection",
        "content-length",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers that describe one HTTP hop (or that the engine writes itself): never forwarded."""


_TLS_FAILURES: tuple[type[Exception], ...] = (*TRANSPORT_ERRORS, ValueError)
"""What a failed TLS handshake with the upstream raises (``ValueError``: an unusable host)."""


class ConnectionRecorder(Protocol):
    """Takes what one proxied connection carried, in the transcript's terms."""

    def event(self, from_: Role, type_: str, fields: Mapping[str, Any]) -> None:
        """One event (``request``, ``response``, ``close``, ``error``...) sent by ``from_``."""

    def message(self, from_: Role, type_: str, data: str | bytes) -> None:
        """One ``text``, ``binary``, ``ping`` or ``pong`` sent by ``from_`` (once per message)."""

    async def end(self, status: EndStatus) -> str | None:
        """The connection is over; returns where the transcript went, if anywhere."""


RecorderFactory = Callable[[str], Awaitable[ConnectionRecorder]]
"""Opens the recorder of one connection, given the upstream URL it was proxied to."""


@dataclass(frozen=True)
class Upstream:
    """Where connections go: a ``ws://`` or ``wss://`` URL and, for ``wss``, how to verify it.

    ``tls`` is the client context for ``wss`` (``None`` for ``ws``); ``tls_mode`` is what the
    transcript header records (``none``, ``strict`` or ``insecure``).
    """

    url: str
    tls: ssl.SSLContext | None = None
    tls_mode: str = "none"
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"the upstream must be a ws:// or wss:// URL, not {self.url!r}")

    def url_for(self, target: str) -> str:
        """The upstream URL a client's request ``target`` goes to (paths and queries joined)."""
        base = urlsplit(self.url)
        asked = urlsplit(target)
        path = base.path.rstrip("/") + "/" + asked.path.lstrip("/")
        query = "&".join(part for part in (base.query, asked.query) if part)
        return f"{base.scheme}://{base.netloc}{path}" + (f"?{query}" if query else "")


@dataclass
class ConnectionReport:
    """What one proxied connection did, for the proxy's output lines."""

    number: int
    peer: Peer
    url: str = ""
    status: EndStatus = "complete"
    closed_by: Role | None = None
    code: int | None = None
    reason: str = ""
    problem: str = ""
    transcript: str | None = None
    opened: bool = False


def upstream_context(*, cafile: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """The client context for a ``wss`` upstream.

    Strict by default (the system's CAs, plus ``cafile`` when given; the host name must
    match); ``insecure`` checks nothing.

    Raises:
        TlsSetupError: ``cafile`` cannot be read or holds no certificate.
    """
    if insecure:
        return tls.client_context(TlsPolicy(mode="none"))
    context = tls.client_context(TlsPolicy(mode="strict", cafile=cafile))
    if cafile is not None:
        context.load_default_certs()  # the given CA comes on top of the system's
    return context


def forwarded_headers(headers: Headers) -> Headers:
    """``headers`` minus hop-by-hop ones (and those ``Connection`` lists), ``Sec-WebSocket-*``."""
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return tuple(
        (name, value)
        for name, value in headers
        if name.lower() not in HOP_BY_HOP
        and name.lower() not in named
        and not name.lower().startswith("sec-websocket-")
    )


class _FlushBeforeRead(ByteStream):
    """One leg's byte stream, which lets the other leg write what it holds back before waiting.

    Both legs batch (``WebSocketConnection.batching``): what one pump forwards is held back by
    the target connection. ``before_read`` runs each time this leg is about to wait for bytes,
    that is when the pump reading it has forwarded everything that arrived so far; it writes
    the target's held frames in one ``send``, and while that write waits for a slow reader,
    this leg is not read (backpressure).
    """

    def __init__(self, inner: ByteStream) -> None:
        self.inner = inner
        self.before_read: Callable[[], Awaitable[None]] | None = None

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The wrapped stream's attributes (addresses, TLS details)."""
        return self.inner.extra_attributes

    async def send(self, item: bytes) -> None:
        """Write ``item``."""
        await self.inner.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """The next bytes, once ``before_read`` has run."""
        if self.before_read is not None:
            await self.before_read()
        return await self.inner.receive(max_bytes)

    async def send_eof(self) -> None:
        """End this direction."""
        await self.inner.send_eof()

    async def aclose(self) -> None:
        """Close the wrapped stream."""
        await self.inner.aclose()


class RecordingProxy(ConnectionHost):
    """Proxies every connection accepted on a listener to one upstream, recording each.

    ``stop()`` closes open connections with 1001 on both legs, then cuts them.
    """

    def __init__(
        self,
        upstream: Upstream,
        recorder: RecorderFactory,
        *,
        limits: Limits | None = None,
        tls: ssl.SSLContext | None = None,
        on_open: Callable[[ConnectionReport], None] | None = None,
        on_close: Callable[[ConnectionReport], None] | None = None,
    ) -> None:
        super().__init__()
        self.upstream = upstream
        self.tls = tls
        self.limits = limits if limits is not None else Limits()
        self._recorder = recorder
        self._on_open = on_open
        self._on_close = on_close
        self._numbers = itertools.count(1)

    async def _contain(self, stream: ByteStream) -> None:
        """Proxy one connection; whatever goes wrong stays inside it."""
        report = ConnectionReport(next(self._numbers), peer_of(stream))
        self._open += 1
        connection = _ProxiedConnection(self, report)
        self._live.add(connection)
        try:
            await connection.run(stream)
        except Exception as exc:
            report.status = "aborted"
            report.problem = describe_failure(exc)
            log.debug("connection from %s failed", report.peer, exc_info=exc)
        finally:
            self._open -= 1
            self._live.discard(connection)
            with anyio.CancelScope(shield=True):
                await connection.finish()
                await anyio.aclose_forcefully(stream)
            if report.url and self._on_close is not None:
                self._on_close(report)

    def _opened(self, report: ConnectionReport) -> None:
        if self._on_open is not None:
            self._on_open(report)


class _ProxiedConnection:
    """One client connection and its upstream leg, from the request to the last close.

    On the client leg the proxy plays the server, on the upstream leg the client: a frame the
    proxy writes on its own (not one it forwards) is recorded under that role, after an
    ``error`` event that says the proxy wrote it and why.
    """

    def __init__(self, proxy: RecordingProxy, report: ConnectionReport) -> None:
        self.proxy = proxy
        self.report = report
        self.limits = proxy.limits
        self.recorder: ConnectionRecorder | None = None
        self.client: websocket.WebSocketConnection | None = None
        self.upstream: websocket.WebSocketConnection | None = None
        self.interrupted = False
        self._upstream_stream: _FlushBeforeRead | None = None
        self._cut: set[int] = set()
        self._close_written: set[int] = set()  # legs the proxy wrote a close frame to
        self._closing = anyio.Event()
        self._relayed = anyio.Event()  # both directions are over

    # -------------------------------------------------------------------- handshake

    async def run(self, stream: ByteStream) -> None:
        """Read the client's request, connect upstream, answer the client, then relay."""
        if self.proxy.tls is not None:
            try:
                stream = await accept_tls(stream, self.proxy.tls)
            except TLS_FAILURES as exc:
                self.report.problem = f"TLS handshake failed: {describe_failure(exc)}"
                return
        client_stream = _FlushBeforeRead(stream)
        accepted = await websocket.accept(client_stream, self.limits, self._decide)
        if accepted is None:
            if self.upstream is not None:  # the client went away before its 101
                self.report.status = "aborted"
                self.report.problem = "the client left during the handshake"
                await self._own_close(
                    self.upstream, GOING_AWAY, "the client left", "the client left"
                )
            return
        self.client = client = accepted[0]
        upstream, upstream_stream = self.upstream, self._upstream_stream
        assert upstream is not None
        assert upstream_stream is not None
        client.batching = upstream.batching = True
        client_stream.before_read = functools.partial(_flush, upstream)
        upstream_stream.before_read = functools.partial(_flush, client)
        self.report.opened = True
        self.proxy._opened(self.report)
        await self._relay(client, upstream)

    async def _decide(
        self, request: websocket.HandshakeRequest
    ) -> websocket.Accept | websocket.Reject:
        if self.proxy.open_connections > self.limits.max_connections:
            refusal = over_capacity(self.limits.max_connections)
            self.report.problem = refusal.why
            return websocket.Reject(refusal.status, refusal.body.encode(), refusal.headers)
        url = self.proxy.upstream.url_for(request.path)
        self.report.url = url
        self.recorder = await self.proxy._recorder(url)
        self._record("client", "request", {"target": request.path, "headers": request.headers})
        try:
            self.upstream, done = await self._connect(url, request)
        except HandshakeError as exc:
            return await self._refused(exc.failed)
        headers = forwarded_headers(done.headers)
        fields = {"status": done.status, "reason": done.reason, "headers": done.headers}
        self._record("server", "response", fields)
        return websocket.Accept(done.subprotocol, headers)

    async def _connect(
        self, url: str, request: websocket.HandshakeRequest
    ) -> tuple[websocket.WebSocketConnection, HandshakeDone]:
        """Open the upstream leg to ``url`` with the client's end-to-end headers."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        shown = url_host(host)
        host_header = shown if parts.port is None else f"{shown}:{port}"
        resource = parts.path + (f"?{parts.query}" if parts.query else "")
        context = self.proxy.upstream.tls

        async def open_stream() -> ByteStream:
            self._upstream_stream = _FlushBeforeRead(await open_plain_or_tls())
            return self._upstream_stream

        async def open_plain_or_tls() -> ByteStream:
            stream = adopt(await anyio.connect_tcp(host, port))
            if context is None:
                return stream
            try:
                return await TLSStream.wrap(
                    stream, hostname=host, ssl_context=context, standard_compatible=False
                )
            except _TLS_FAILURES as exc:
                await anyio.aclose_forcefully(stream)
                raise HandshakeError(connect_failure_from(exc)) from exc

        connect = ConnectRequest(
            url=f"ws://{shown}:{port}{resource}",
            headers=(("Host", host_header), *forwarded_headers(request.headers)),
            subprotocols=request.subprotocols,
            connect_timeout=self.proxy.upstream.connect_timeout,
            handshake_timeout=self.limits.handshake_timeout,
        )
        return await websocket.connect(connect, self.limits, stream_factory=open_stream)

    async def _refused(self, failed: HandshakeFailed) -> websocket.Reject:
        """The client's answer when the upstream did not accept (see the module docstring)."""
        self.report.status = "aborted"
        self.report.problem = f"upstream: {failed.message}"
        if failed.kind == "status" and 200 <= failed.status < 1000:
            reason = failed.message.removeprefix(f"server answered {failed.status}").strip()
            fields = {
                "status": failed.status,
                "reason": reason,
                "headers": failed.headers,
                "body": failed.body,
            }
            self._record("server", "response", fields)
            return websocket.Reject(failed.status, failed.body, forwarded_headers(failed.headers))
        status = 504 if failed.kind == "timeout" else 502
        message = f"{self.report.problem}; the proxy answered the client {status}"
        self._record("server", "error", {"message": message})
        phrase = "upstream timed out" if status == 504 else "upstream unavailable"
        refusal = plain_refusal(status, f"{phrase}: {failed.message}", failed.message)
        return websocket.Reject(refusal.status, refusal.body.encode(), refusal.headers)

    # ------------------------------------------------------------------------ relay

    async def _relay(
        self, client: websocket.WebSocketConnection, upstream: websocket.WebSocketConnection
    ) -> None:
        """Forward both ways until both closes are through, a leg is lost, or time is up."""
        running = [2]

        async def pump(
            source: websocket.WebSocketConnection,
            target: websocket.WebSocketConnection,
            role: Role,
        ) -> None:
            await self._pump(source, target, role)
            await _flush(target)
            running[0] -= 1
            if not running[0]:
                group.cancel_scope.cancel()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(pump, client, upstream, "client")
                group.start_soon(pump, upstream, client, "server")
                await self._closing.wait()
                await anyio.sleep(self.limits.close_timeout)
                group.cancel_scope.cancel()
        finally:
            self._relayed.set()

    async def _pump(
        self,
        source: websocket.WebSocketConnection,
        target: websocket.WebSocketConnection,
        role: Role,
    ) -> None:
        """Forward what ``source`` (sent by ``role``) says to ``target`` until it ends.

        Messages, pings and pongs are held back by ``target`` (batching), which writes them
        together when ``source`` next waits for bytes; a close or a loss is passed on at once.
        """
        assert self.recorder is not None  # the request was recorded before any relay
        record = self.recorder.message
        message: list[str | bytes] = []  # the frames of the message under way, for the record
        frame: list[str | bytes] = []  # the pieces of its frame under way, to pass on
        while True:
            try:
                event = await source.receive()
            except ConnectionClosed:
                return
            action: WireAction
            if isinstance(event, DataFrame) and event.first and event.final:
                # a whole message in one frame, most of them
                record(role, event.kind, event.data)
                action = SendMessage(event.data)
            elif isinstance(event, DataFrame):
                # a message in several frames, or a frame in several reads: passed on frame by
                # frame, so the other side gets the same fragments, pings between them included
                frame.append(event.data)
                if not event.frame_final:
                    continue
                whole_frame = join_pieces(frame, event.kind)
                frame.clear()
                first = not message
                message.append(whole_frame)
                if event.final:  # recorded as it arrived, before it is passed on
                    record(role, event.kind, join_pieces(message, event.kind))
                    message.clear()
                with contextlib.suppress(ConnectionClosed):
                    await target.send_frame(whole_frame, first=first, final=event.final)
                continue
            elif isinstance(event, PingReceived):
                record(role, "ping", event.data)
                action = SendPing(event.data)
            elif isinstance(event, PongReceived):
                record(role, "pong", event.data)
                action = SendPong(event.data)
            elif isinstance(event, CloseReceived):
                await self._closed(role, event, target)
                return
            elif isinstance(event, ConnectionLost):
                await self._lost(role, event, source, target)
                return
            else:
                continue
            try:  # noqa: SIM105 - once per message: cheaper than contextlib.suppress
                await target.send(action)
            except ConnectionClosed:
                pass  # the target is closing or gone: its own pump reports why

    async def _closed(
        self, role: Role, event: CloseReceived, target: websocket.WebSocketConnection
    ) -> None:
        self._record(role, "close", {"code": event.code, "reason": event.reason})
        if self.report.closed_by is None:
            self.report.closed_by = role
            self.report.code, self.report.reason = event.code, event.reason
        self._closing.set()
        with contextlib.suppress(ConnectionClosed):
            await target.send(SendClose(event.code, event.reason))
            self._close_written.add(id(target))

    async def _lost(
        self,
        role: Role,
        event: ConnectionLost,
        source: websocket.WebSocketConnection,
        target: websocket.WebSocketConnection,
    ) -> None:
        self._closing.set()
        if id(source) in self._cut:
            return  # this side ended it, because the other leg was lost
        self.report.status = "aborted"
        who = _NAMES[role]
        self.report.problem = self.report.problem or f"{who}: {event.message or event.kind}"
        self._record(role, "disconnect", {"kind": event.kind, "message": event.message})
        if event.kind == "protocol":
            if event.code is not None and id(source) not in self._close_written:
                # the close frame the engine wrote to the side that broke the protocol
                reason = close_payload(event.code, event.message)[2:].decode(errors="replace")
                why = f"the {who} broke the protocol"
                self._record_own_close(self._role_toward(source), event.code, reason, why)
            reason = f"the {who} broke the protocol ({event.code})"
            await self._own_close(target, PEER_BROKE_PROTOCOL, reason, reason)
        else:
            self._cut.add(id(target))
            how = "reset" if event.kind == "reset" else "closed"
            message = f"the proxy {how} the {_NAMES[_other(role)]}'s TCP connection: the {who} left"
            self._record(self._role_toward(target), "error", {"message": message})
            await target.abort(rst=event.kind == "reset")

    async def going_away(self) -> None:
        """The proxy stops: 1001 on both legs, then the peers' answers are relayed (recorded).

        The proxy gives connections ``GOING_AWAY_GRACE`` for this, then cuts them.
        """
        self.interrupted = True
        for leg in (self.client, self.upstream):
            if leg is not None:
                await self._own_close(leg, GOING_AWAY, "proxy shutting down", "the proxy stopped")
        if self.client is not None:  # relaying: each pump ends with its peer's answer
            await self._relayed.wait()

    # ----------------------------------------------------------------------- ending

    async def finish(self) -> None:
        """Close both legs (closing handshake within the close deadline) and end the record.

        A leg that is still open gets the proxy's own close (1000) first.
        """
        legs = [leg for leg in (self.upstream, self.client) if leg is not None]
        deadline = GOING_AWAY_GRACE if self.interrupted else self.limits.close_timeout
        with anyio.move_on_after(deadline):
            for leg in legs:
                other = _NAMES[self._role_toward(leg)]  # the peer on the other leg
                why = f"the {other} did not answer the close in time"
                if not self._closing.is_set():
                    why = "the proxy could not go on with this connection"
                await self._own_close(leg, 1000, "", why)
            async with anyio.create_task_group() as closing:
                for leg in legs:
                    closing.start_soon(leg.aclose)
        if self.interrupted:
            self.report.status = "interrupted"
        elif self.client is not None and not all(leg.close_received for leg in legs):
            self.report.status = "aborted"
        for leg in legs:
            await leg.abort()  # a leg that did not close in time
        if self.recorder is not None:
            self.report.transcript = await self.recorder.end(self.report.status)

    # --------------------------------------------------------------------- recording

    async def _own_close(
        self, leg: websocket.WebSocketConnection, code: int, reason: str, why: str
    ) -> None:
        """Close ``leg`` with the proxy's own close frame, if it is still open, and record it."""
        if leg.close_sent or leg.lost is not None:
            return
        try:
            await leg.send(SendClose(code, reason))
        except ConnectionClosed:
            return
        self._close_written.add(id(leg))
        self._record_own_close(self._role_toward(leg), code, reason, why)

    def _record_own_close(self, role: Role, code: int, reason: str, why: str) -> None:
        """Record a close frame the proxy wrote as ``role``, after saying so and why."""
        message = f"the proxy, not the {_NAMES[role]}, sent the next close: {why}"
        self._record(role, "error", {"message": message})
        self._record(role, "close", {"code": code, "reason": reason})

    def _role_toward(self, leg: websocket.WebSocketConnection) -> Role:
        """The role the proxy plays on ``leg``: the server toward the client, and back."""
        return "server" if leg is self.client else "client"

    def _record(self, role: Role, type_: str, fields: Mapping[str, Any]) -> None:
        if self.recorder is not None:
            self.recorder.event(role, type_, fields)


_NAMES: dict[Role, str] = {"client": "client", "server": "upstream"}
"""How output and transcript notes name each side."""


def _other(role: Role) -> Role:
    return "server" if role == "client" else "client"


async def _flush(connection: websocket.WebSocketConnection) -> None:
    """Write what ``connection`` holds back; a leg that is gone drops it (its pump says why)."""
    if connection.holding:
        with contextlib.suppress(ConnectionClosed):
            await connection.flush()
