"""The server side of a TLS handshake on an accepted connection, within a deadline."""

from __future__ import annotations

import ssl

import anyio
from anyio.abc import ByteStream
from anyio.streams.tls import TLSStream

from wscenario.engine.server import TLS_FAILURES, TLS_HANDSHAKE_TIMEOUT

__all__ = ["TLS_FAILURES", "accept_tls"]


async def accept_tls(stream: ByteStream, context: ssl.SSLContext) -> TLSStream:
    """``stream`` after the TLS handshake as the server, which gets ``TLS_HANDSHAKE_TIMEOUT``.

    Raises:
        One of ``TLS_FAILURES``: the client broke, stalled or left the handshake.
    """
    with anyio.fail_after(TLS_HANDSHAKE_TIMEOUT):
        return await TLSStream.wrap(
            stream, server_side=True, ssl_context=context, standard_compatible=False
        )
