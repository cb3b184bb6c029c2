"""A bare wsproto + anyio echo server, the floor the fake server is measured against.

Usage: ``python bench/wsproto_echo_server.py PORT_FILE``; it binds 127.0.0.1 on a free port,
writes the port to PORT_FILE and echoes every whole message (text or binary) until killed. One
task per connection, no task group, no queue: the least an anyio + wsproto server can hold.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import wsproto
import wsproto.events as wse
from anyio.abc import SocketStream

CHUNK = 65536


async def echo(stream: SocketStream) -> None:
    """Accept the handshake, then send every whole message back; end on close or EOF."""
    conn = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    texts: list[str] = []
    blobs: list[bytes] = []
    async with stream:
        try:
            while True:
                data = await stream.receive(CHUNK)
                conn.receive_data(data)
                out = bytearray()
                for event in conn.events():
                    if isinstance(event, wse.Request):
                        out += conn.send(wse.AcceptConnection())
                    elif isinstance(event, wse.TextMessage):
                        texts.append(event.data)
                        if event.message_finished:
                            out += conn.send(wse.TextMessage("".join(texts)))
                            texts.clear()
                    elif isinstance(event, wse.BytesMessage):
                        blobs.append(bytes(event.data))
                        if event.message_finished:
                            out += conn.send(wse.BytesMessage(b"".join(blobs)))
                            blobs.clear()
                    elif isinstance(event, wse.Ping):
                        out += conn.send(event.response())
                    elif isinstance(event, wse.CloseConnection):
                        out += conn.send(event.response())
                        await stream.send(bytes(out))
                        return
                if out:
                    await stream.send(bytes(out))
        except (
            anyio.EndOfStream,
            anyio.BrokenResourceError,
            OSError,
            wsproto.utilities.LocalProtocolError,
        ):
            return


async def main(port_file: Path) -> None:
    """Serve until killed."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0, backlog=4096)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    port_file.write_text(str(port))  # noqa: ASYNC240 - once, before serving
    await listener.serve(echo)


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]))
