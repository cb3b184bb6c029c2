"""The vocabulary between the I/O engine and the sans-I/O sessions.

The engine (``wscenario.engine.websocket``) turns bytes on a socket into these wire events, one
frame at a time, after enforcing its limits. Sessions such as the ohos emulation
(``wscenario.core.ohos``) consume them and answer with wire actions, which the engine writes.
Neither side knows about the other's internals, so sessions are tested by feeding events by
hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

# ---------------------------------------------------------------------------- wire events


@dataclass(frozen=True)
class HandshakeDone:
    """The opening handshake succeeded (the client saw a valid 101, the server sent one).

    ``reason`` is the status line's reason phrase as the server sent it; ``headers`` are the
    response (client) or request (server) headers in order, names as received.
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    subprotocol: str | None = None
    path: str = "/"


HandshakeFailureKind = Literal[
    "refused", "dns", "tls", "timeout", "status", "accept", "protocol", "invalid", "too-large"
]


@dataclass(frozen=True)
class HandshakeFailed:
    """The opening handshake did not complete.

    ``status`` is the HTTP status received (0 when no response came). ``kind`` says why.
    """

    kind: HandshakeFailureKind
    message: str
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True)
class DataFrame:
    """A piece of a data message as it came off the wire.

    ``kind`` comes from the message's first frame; ``data`` is ``bytes`` for binary and ``str``
    for text (decoded incrementally, so a piece always holds whole characters). ``first`` and
    ``final`` mark the message's first and last piece; a whole message in one frame is one
    piece with both set. A frame larger than the engine's read size may arrive in several
    pieces with ``frame_final`` set on its last one only.
    """

    kind: Literal["text", "binary"]
    data: str | bytes
    first: bool
    final: bool
    frame_final: bool = True


def join_pieces(pieces: list[str | bytes], kind: str) -> str | bytes:
    """The data of ``DataFrame`` pieces of one ``kind`` as one text (``"text"``) or bytes."""
    if kind == "text":
        return "".join(piece for piece in pieces if isinstance(piece, str))
    return b"".join(piece for piece in pieces if isinstance(piece, bytes))


@dataclass(frozen=True)
class PingReceived:
    """A ping frame arrived (the engine has not answered it: that is the session's choice)."""

    data: bytes


@dataclass(frozen=True)
class PongReceived:
    """A pong frame arrived."""

    data: bytes


@dataclass(frozen=True)
class CloseReceived:
    """A close frame arrived; ``code`` is ``None`` when it had no payload."""

    code: int | None
    reason: str = ""


@dataclass(frozen=True)
class ConnectionLost:
    """The connection ended without a closing handshake, or the peer broke the protocol.

    ``kind`` is ``eof`` (FIN), ``reset`` (RST or other socket error), ``protocol`` (a frame the
    engine refused; ``code`` is the close code it would send, e.g. 1002, 1007, 1009), or
    ``timeout`` (a deadline passed).
    """

    kind: Literal["eof", "reset", "protocol", "timeout", "tls"]
    message: str = ""
    code: int | None = None


WireEvent: TypeAlias = (
    HandshakeDone
    | HandshakeFailed
    | DataFrame
    | PingReceived
    | PongReceived
    | CloseReceived
    | ConnectionLost
)

# --------------------------------------------------------------------------- wire actions


@dataclass(frozen=True)
class SendMessage:
    """Write one whole message in one frame (``str``: text, ``bytes``: binary)."""

    data: str | bytes


@dataclass(frozen=True)
class SendPing:
    """Write a ping frame."""

    data: bytes = b""


@dataclass(frozen=True)
class SendPong:
    """Write a pong frame (the answer to a ping)."""

    data: bytes = b""


@dataclass(frozen=True)
class SendClose:
    """Write a close frame; ``code=None`` writes one with no payload.

    ``reason`` is cut to 123 UTF-8 bytes (on a character boundary) by the engine.
    """

    code: int | None = 1000
    reason: str = ""


@dataclass(frozen=True)
class CloseTransport:
    """Close the TCP connection now (``abort``: with RST instead of FIN)."""

    abort: bool = False


WireAction: TypeAlias = SendMessage | SendPing | SendPong | SendClose | CloseTransport


@dataclass(frozen=True)
class ConnectRequest:
    """What a client session asks the engine to connect to, after its own checks.

    ``headers`` are extra request headers in the order given (``Host``/``Origin`` included when
    the session sets them). ``tls`` says how to verify the server; see ``engine.tls``.
    ``handshake_timeout`` bounds TLS and the HTTP upgrade together, or each on its own with
    ``timeout_per_stage`` (as OpenHarmony does).
    """

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()
    tls: TlsPolicy = field(default_factory=lambda: TlsPolicy())
    connect_timeout: float = 20.0
    handshake_timeout: float = 15.0
    timeout_per_stage: bool = False


@dataclass(frozen=True)
class TlsPolicy:
    """How a client verifies a wss server.

    ``mode``: ``strict`` (chain and hostname, the raw profile's default), ``device`` (what
    OpenHarmony does: chain checked, self-signed accepted, hostname not checked), or ``none``.
    ``cafile`` replaces the default trust store; ``certfile``/``keyfile``/``password`` give a
    client certificate.
    """

    mode: Literal["strict", "device", "none"] = "strict"
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    password: str | None = None
    allow_expired: bool = False
