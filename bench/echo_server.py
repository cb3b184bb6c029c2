"""An echo server written with the ``websockets`` library, run in its own process by benchmarks.

Usage: ``python bench/echo_server.py PORT_FILE``; it binds 127.0.0.1 on a free port, writes the
port to PORT_FILE and echoes every message until killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve


async def echo(connection: ServerConnection) -> None:
    """Send every message back as it came."""
    async for message in connection:
        await connection.send(message)


async def main(port_file: Path) -> None:
    """Serve until cancelled."""
    async with serve(echo, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        port_file.write_text(str(port))  # noqa: ASYNC240 - once, before serving
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
