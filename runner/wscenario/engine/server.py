"""The fake server's listener: accept loop, per-connection containment, routing, TLS.

One ``FakeServer`` serves one listening socket. Every accepted connection runs in its own
task, inside a catch-all: a hostile or broken peer (garbage instead of HTTP, a TLS hello on a
plain port, an oversized head, a slowloris) costs that connection only. Accept errors such
as running out of file descriptors are logged and retried after a short pause. Requests are
routed by path to the scenario serving it (``core.handshake_policy``); past
``max_connections`` open connections, new ones get 503. Each accepted connection gets its
own ``ServerDriver`` and its route's session runs the scenario's script against it.
"""

from __future__ import annotations

import errno
import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from anyio import TypedAttributeProvider
from anyio.abc import ByteStream, SocketAttribute, SocketListener, SocketStream, TaskStatus
from anyio.streams.stapled import MultiListener
from anyio.streams.tls import TLSStream

from wscenario.core.handshake_policy import (
    Decision,
    HandshakeRequest,
    Refuse,
    decide,
    over_capacity,
)
from wscenario.core.model import Limits, ServerSpec
from wscenario.core.wire import HandshakeDone
from wscenario.engine import websocket
from wscenario.engine.errors import TRANSPORT_ERRORS
from wscenario.engine.server_driver import Peer, ServerDriver
from wscenario.errors import CannotRun, UsageError

log = logging.getLogger(__name__)

ACCEPT_BACKOFF = 0.1
"""Seconds to wait after ``accept()`` fails (EMFILE and the like) before trying again."""

TLS_HANDSHAKE_TIMEOUT = 10.0
"""Seconds a client has to finish the TLS handshake."""

TLS_FAILURES: tuple[type[Exception], ...] = (*TRANSPORT_ERRORS, TimeoutError)
"""What a TLS handshake with a broken, slow or vanishing client raises."""

GOING_AWAY_GRACE = 1.0
"""Seconds open connections get to answer the 1001 close sent when the server stops."""

KEPT_REFUSALS = 1000
"""How many of the latest refused handshakes ``ServerStats.refusals`` keeps (all are counted)."""


class AcceptingListener(Protocol):
    """A listener that hands out one connection per ``accept()`` (anyio's socket listeners)."""

    async def accept(self) -> ByteStream:
        """Wait for the next connection."""

    async def aclose(self) -> None:
        """Stop listening."""


Session = Callable[[ServerDriver], Awaitable[None]]
"""Runs one scenario's script against one accepted connection."""


@dataclass(frozen=True)
class Route:
    """What a path serves: its scenario's ``server`` section and the session to run.

    ``limits`` are the scenario's own, applied once the connection is routed here (until then
    the listener's, the most generous of its routes', apply); ``None``: the listener's.
    """

    spec: ServerSpec
    session: Session
    limits: Limits | None = None


@dataclass
class ServerStats:
    """Counts of what happened to the connections this server took."""

    accepted: int = 0
    refused: int = 0
    dropped: int = 0
    refusals: deque[tuple[Peer, Refuse]] = field(
        default_factory=lambda: deque(maxlen=KEPT_REFUSALS)
    )


class GoingAway(Protocol):
    """A live connection that can be asked to close with 1001 when its host stops."""

    async def going_away(self) -> None:
        """Send 1001 and wait (briefly) for the answer."""


class ConnectionHost:
    """Accepts connections on a listener until ``stop()``, each contained in its own task.

    Subclasses implement ``_contain(stream)`` and keep their live connections in ``_live``
    (counted in ``_open`` from accept to end). When stopped, every live connection gets
    ``going_away()`` and ``GOING_AWAY_GRACE`` seconds, then whatever still runs is cancelled.
    """

    def __init__(self) -> None:
        self._open = 0
        self._live: set[GoingAway] = set()
        self._stopping = anyio.Event()
        self._connections: anyio.abc.TaskGroup | None = None  # while serving

    @property
    def open_connections(self) -> int:
        """Connections currently open, including those still in their handshake."""
        return self._open

    async def serve(
        self,
        listener: AcceptingListener | MultiListener[SocketStream],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections until ``stop()``, then close the open ones with 1001."""
        try:
            async with anyio.create_task_group() as connections:
                self._connections = connections
                async with anyio.create_task_group() as accepting:
                    for one in single_listeners(listener):
                        accepting.start_soon(accept_forever, one, connections, self._contain)
                    task_status.started()
                    await self._stopping.wait()
                    accepting.cancel_scope.cancel()
                await self._close_live_connections()
                connections.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await listener.aclose()

    def stop(self) -> None:
        """Stop accepting; open connections get a 1001 close, then are cut."""
        self._stopping.set()

    async def _contain(self, stream: ByteStream) -> None:
        raise NotImplementedError

    async def _close_live_connections(self) -> None:
        """Send 1001 to every open connection and give the clients a moment to answer."""
        if not self._live:
            return
        live = list(self._live)
        with anyio.move_on_after(GOING_AWAY_GRACE, shield=True):
            async with anyio.create_task_group() as closing:
                for connection in live:
                    closing.start_soon(connection.going_away)


class FakeServer(ConnectionHost):
    """Serves scenarios on one listener, routing each connection by its request path."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        *,
        limits: Limits | None = None,
        tls: ssl.SSLContext | None = None,
        on_refused: Callable[[Peer, Refuse], None] | None = None,
    ) -> None:
        super().__init__()
        self.routes = dict(routes)
        self.limits = limits if limits is not None else Limits()
        self.tls = tls
        self.stats = ServerStats()
        self._on_refused = on_refused
        self._specs = {path: route.spec for path, route in self.routes.items()}

    async def _contain(self, stream: ByteStream) -> None:
        """Serve one connection; whatever goes wrong stays inside it."""
        peer = peer_of(stream)
        self._open += 1
        try:
            await self._serve_connection(stream, peer)
        except Exception as exc:
            log.error("connection from %s failed: %s", peer, describe_failure(exc))
            log.debug("connection from %s failed", peer, exc_info=exc)
        finally:
            self._open -= 1
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(stream)

    async def _serve_connection(self, stream: ByteStream, peer: Peer) -> None:
        if self.tls is not None:
            try:
                with anyio.fail_after(TLS_HANDSHAKE_TIMEOUT):
                    stream = await TLSStream.wrap(
                        stream, server_side=True, ssl_context=self.tls, standard_compatible=False
                    )
            except TLS_FAILURES as exc:
                self._dropped(peer, f"TLS handshake failed: {describe_failure(exc)}")
                return
        accepted = await self._handshake(stream, peer)
        if accepted is None:
            return
        connection, done = accepted
        path = HandshakeRequest(done.path).path
        route = self.routes[path]
        limits = route.limits or self.limits
        connection.limits = limits  # inflating too
        driver = ServerDriver(connection, done, peer, route.spec, limits)
        self.stats.accepted += 1
        self._live.add(driver)
        try:
            await driver.serve(route.session, self._connections)
        finally:
            self._live.discard(driver)

    async def _handshake(
        self, stream: ByteStream, peer: Peer
    ) -> tuple[websocket.WebSocketConnection, HandshakeDone] | None:
        """The accepted connection, or ``None`` when the handshake was refused or failed."""
        decisions: list[Decision] = []

        async def route(request: websocket.HandshakeRequest) -> websocket.Accept | websocket.Reject:
            decision = (
                over_capacity(self.limits.max_connections)
                if self._open > self.limits.max_connections
                else decide(
                    HandshakeRequest(request.path, request.headers, request.subprotocols),
                    self._specs,
                )
            )
            decisions.append(decision)
            if isinstance(decision, Refuse):
                return websocket.Reject(
                    decision.status, decision.body.encode("utf-8"), decision.headers
                )
            if decision.delay > 0:
                await anyio.sleep(decision.delay)
            return websocket.Accept(decision.subprotocol, deflate=decision.deflate)

        accepted = await websocket.accept(stream, self.limits, route, auto_pong=True)
        if accepted is None:
            if decisions and isinstance(decisions[-1], Refuse):
                self._refused(peer, decisions[-1])
            else:
                self._dropped(peer, "no valid WebSocket handshake")
        return accepted

    def _refused(self, peer: Peer, refusal: Refuse) -> None:
        self.stats.refused += 1
        self.stats.refusals.append((peer, refusal))
        if self._on_refused is not None:
            self._on_refused(peer, refusal)

    def _dropped(self, peer: Peer, why: str) -> None:
        self.stats.dropped += 1
        log.info("dropped connection from %s: %s", peer, why)


def describe_failure(exc: BaseException) -> str:
    """``Type: message`` of an exception, or of each one inside an exception group."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe_failure(inner) for inner in exc.exceptions)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def accept_forever(
    listener: AcceptingListener,
    connections: anyio.abc.TaskGroup,
    handle: Callable[[ByteStream], Coroutine[Any, Any, None]],
) -> None:
    """Accept connections and start ``handle`` for each in ``connections``, until cancelled.

    ``accept()`` failures (EMFILE, ENFILE, ENOBUFS...) are logged and retried after
    ``ACCEPT_BACKOFF``; ``handle`` must contain its own failures.
    """
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:
            log.warning("accept failed (%s), retrying in %d ms", exc, ACCEPT_BACKOFF * 1000)
            await anyio.sleep(ACCEPT_BACKOFF)
            continue
        connections.start_soon(handle, stream)


def single_listeners(
    listener: AcceptingListener | MultiListener[SocketStream],
) -> list[AcceptingListener]:
    """The single listeners to accept from (a host name may bind IPv4 and IPv6)."""
    if isinstance(listener, MultiListener):
        return [one for one in listener.listeners if isinstance(one, SocketListener)]
    return [listener]


def peer_of(stream: ByteStream) -> Peer:
    """The remote address of a TCP (or TLS over TCP) stream; ``("", 0)`` if unknown."""
    try:
        address = stream.extra(SocketAttribute.remote_address)
    except anyio.TypedAttributeLookupError:
        return Peer("", 0)
    if isinstance(address, tuple):
        return Peer(str(address[0]), int(address[1]))
    return Peer(str(address), 0)


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a host and a port number."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"listen address must be HOST:PORT, got {listen!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    return host in {"localhost", "::1"} or host.startswith("127.")


async def open_listener(host: str, port: int) -> MultiListener[SocketStream]:
    """A TCP listener on ``host:port``; a port in use is ``CannotRun`` (exit 3)."""
    try:
        listener = await anyio.create_tcp_listener(
            local_host=host, local_port=port, reuse_port=False
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CannotRun(f"cannot listen on {host}:{port}: address already in use") from exc
        raise CannotRun(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return listener


def listener_limits(limits: Sequence[Limits]) -> Limits:
    """The limits of a listener shared by several scenarios: the most generous of each."""
    if not limits:
        return Limits()
    return Limits(
        handshake_timeout=max(item.handshake_timeout for item in limits),
        max_head_size=max(item.max_head_size for item in limits),
        max_headers=max(item.max_headers for item in limits),
        max_message_size=max(item.max_message_size for item in limits),
        max_fragments=max(item.max_fragments for item in limits),
        close_timeout=max(item.close_timeout for item in limits),
        max_connections=max(item.max_connections for item in limits),
    )


def bound_port(listener: TypedAttributeProvider) -> int:
    """The port a listener actually bound (useful after asking for port 0)."""
    return int(listener.extra(SocketAttribute.local_port))
