"""WebSocket connections over anyio streams: the engine's one entry point for the protocol.

``connect`` (client) and ``accept`` (server) run the opening handshake with h11 under the
limits of ``core.model.Limits`` and return a ``WebSocketConnection``, which turns bytes into
``core.wire`` events and ``core.wire`` actions into frames. The pieces live in
``client_handshake``, ``server_handshake``, ``connection``, ``frames`` and ``http_head``;
import them from here.
"""

from __future__ import annotations

from wscenario.engine.client_handshake import ByteStreamFactory, connect
from wscenario.engine.connection import READ_SIZE, Address, WebSocketConnection
from wscenario.engine.frames import close_payload, encode_frame
from wscenario.engine.server_handshake import Accept, Decide, HandshakeRequest, Reject, accept

__all__ = [
    "READ_SIZE",
    "Accept",
    "Address",
    "ByteStreamFactory",
    "Decide",
    "HandshakeRequest",
    "Reject",
    "WebSocketConnection",
    "accept",
    "close_payload",
    "connect",
    "encode_frame",
]
