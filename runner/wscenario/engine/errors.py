"""The one boundary where I/O exceptions become wire events or engine exceptions.

anyio, ssl, the socket layer, h11 and wsproto each raise their own exceptions, and hostile
peers make wsproto and h11 raise ``UnicodeError`` and ``ValueError`` too. Everything in
``engine.websocket`` and ``engine.tls`` passes through the functions here, so a broken peer
always costs exactly one connection and ends as a ``ConnectionLost`` or ``HandshakeFailed``.
Cancellation is never caught.

::

    EngineError(CannotRun)
    ├── HandshakeError      the opening handshake failed (``.failed``: HandshakeFailed)
    ├── ConnectionClosed    the connection can no longer do what was asked (``.lost``)
    └── TlsSetupError       a certificate, key or CA file cannot be used
"""

from __future__ import annotations

import errno
import socket
import ssl

import anyio
import h11
from wsproto.utilities import ProtocolError

from wscenario.core.wire import ConnectionLost, HandshakeFailed
from wscenario.errors import CannotRun

PEER_ERRORS: tuple[type[Exception], ...] = (
    h11.ProtocolError,
    ProtocolError,
    UnicodeError,
    ValueError,
)
"""What parsing a hostile peer's bytes may raise (wsproto and h11 raise the last two as well)."""

TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    ssl.SSLError,
    OSError,
)
"""What reading or writing an anyio byte stream may raise when the peer or network fails."""


class EngineError(CannotRun):
    """Base class of the engine's own exceptions."""


class HandshakeError(EngineError):
    """The opening handshake did not complete; ``failed`` says why."""

    def __init__(self, failed: HandshakeFailed) -> None:
        self.failed = failed
        super().__init__(f"handshake failed ({failed.kind}): {failed.message}")


class ConnectionClosed(EngineError):
    """The connection cannot do this any more (lost, closed, or its close frame was sent).

    ``lost`` is the event that ended the connection, when it ended abnormally.
    """

    def __init__(self, message: str, lost: ConnectionLost | None = None) -> None:
        self.lost = lost
        super().__init__(message)


class TlsSetupError(EngineError):
    """A TLS context cannot be built: unreadable file, wrong key password, bad PEM."""


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def lost_from(exc: BaseException) -> ConnectionLost:
    """The ``ConnectionLost`` a transport exception means (EOF, reset, TLS, timeout)."""
    chain = _cause_chain(exc)
    for item in chain:
        if isinstance(item, ssl.SSLEOFError | anyio.EndOfStream):
            return ConnectionLost(kind="eof", message="connection closed without a close frame")
        if isinstance(item, ssl.SSLError):
            return ConnectionLost(kind="tls", message=_describe(item))
        if isinstance(item, TimeoutError):
            return ConnectionLost(kind="timeout", message="timed out")
        if isinstance(item, anyio.ClosedResourceError):
            # the socket was closed under a call in progress: the connection ended meanwhile
            # (most often the peer vanished and the reading side closed it); not a choice made
            # here, which is reported before any write is tried
            return ConnectionLost(kind="reset", message="connection ended while in use")
        if isinstance(item, OSError) and item.errno is not None:
            return ConnectionLost(kind="reset", message=_describe(item))
    return ConnectionLost(kind="reset", message=_describe(chain[-1]))


def connect_failure_from(exc: BaseException) -> HandshakeFailed:
    """The ``HandshakeFailed`` a TCP connect or TLS handshake exception means."""
    chain = _cause_chain(exc)
    for item in chain:
        if isinstance(item, socket.gaierror):
            return HandshakeFailed(kind="dns", message=f"cannot resolve host: {item.strerror}")
        if isinstance(item, ssl.SSLCertVerificationError):
            reason = item.verify_message or item.reason or str(item)
            return HandshakeFailed(kind="tls", message=f"certificate rejected: {reason}")
        if isinstance(item, ssl.SSLError):
            return HandshakeFailed(kind="tls", message=f"TLS handshake failed: {_describe(item)}")
        if isinstance(item, TlsSetupError):
            return HandshakeFailed(kind="tls", message=str(item))
        if isinstance(item, TimeoutError):
            return HandshakeFailed(kind="timeout", message="timed out")
        if isinstance(item, ConnectionRefusedError) or (
            isinstance(item, OSError) and item.errno == errno.ECONNREFUSED
        ):
            return HandshakeFailed(kind="refused", message="connection refused")
    last = chain[-1]
    if isinstance(last, anyio.EndOfStream | anyio.BrokenResourceError):
        return HandshakeFailed(kind="tls", message="connection closed during the TLS handshake")
    if isinstance(last, ValueError):
        return HandshakeFailed(kind="tls", message=f"cannot start TLS: {_describe(last)}")
    with_errno = [item for item in chain if isinstance(item, OSError) and item.errno]
    cause = with_errno[-1] if with_errno else last
    return HandshakeFailed(kind="refused", message=f"cannot connect: {_describe(cause)}")
