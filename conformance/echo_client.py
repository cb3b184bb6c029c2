"""The client under test in ``scripts/conformance``: wscenario's engine driven by an echo loop.

Autobahn's fuzzingserver expects a client that sends every message back. This loop opens
``/getCaseCount``, then ``/runCase?case=N&agent=A`` for each case, echoing every whole message
(fragments put back together), answering pings through the engine's ``auto_pong``, answering
a close frame as RFC 6455 §5.5.1 asks (with 1002 when the peer's code is one it may not
send), and finally opens ``/updateReports?agent=A`` so the reports are written. It uses the
same ``WebSocketConnection`` the client profiles use; nothing here decides about frames.

Usage: ``python conformance/echo_client.py ws://127.0.0.1:9001 AGENT`` (exit 0 when every
case ran; the verdicts are Autobahn's, in its reports).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from urllib.parse import quote

import anyio

from wscenario.core.model import Limits
from wscenario.core.wire import (
    CloseReceived,
    ConnectionLost,
    ConnectRequest,
    DataFrame,
    SendClose,
    SendMessage,
)
from wscenario.engine.errors import ConnectionClosed, EngineError
from wscenario.engine.frames import close_code_allowed
from wscenario.engine.websocket import WebSocketConnection, connect

LIMITS = Limits(max_message_size=32 * 1024 * 1024, close_timeout=5.0)
"""The engine's defaults, with messages up to 32 MiB so Autobahn's 16 MiB cases fit."""

PROTOCOL_ERROR = 1002


def close_answer(event: CloseReceived) -> SendClose:
    """The close frame that answers ``event``: its code echoed, or 1002 for a code not allowed."""
    if event.code is None:
        return SendClose(code=None)
    if not close_code_allowed(event.code):
        return SendClose(PROTOCOL_ERROR, "invalid close code")
    return SendClose(event.code)


async def echo(connection: WebSocketConnection) -> None:
    """Send back every message until the connection ends, then close it as the protocol asks."""
    pieces: list[str | bytes] = []
    try:
        while True:
            event = await connection.receive()
            if isinstance(event, DataFrame):
                pieces.append(event.data)
                if event.final:
                    whole = "".join(p for p in pieces if isinstance(p, str))
                    data = (
                        whole
                        if event.kind == "text"
                        else b"".join(p for p in pieces if isinstance(p, bytes))
                    )
                    pieces = []
                    await connection.send(SendMessage(data))
            elif isinstance(event, CloseReceived):
                if not connection.close_sent:
                    await connection.send(close_answer(event))
                break
            elif isinstance(event, ConnectionLost):
                break
    except ConnectionClosed:
        pass
    finally:
        await connection.aclose()


async def open_and_echo(url: str) -> str | None:
    """Connect to ``url`` and echo until the end; the first text message received, if any."""
    connection, _ = await connect(ConnectRequest(url), LIMITS, auto_pong=True)
    first: str | None = None
    if url.split("?")[0].endswith("/getCaseCount"):
        with contextlib.suppress(ConnectionClosed):
            event = await connection.receive()
            if isinstance(event, DataFrame) and isinstance(event.data, str):
                first = event.data
    await echo(connection)
    return first


async def run_all(base: str, agent: str) -> int:
    """Run every case the fuzzingserver offers, then have it write its reports."""
    count_text = await open_and_echo(f"{base}/getCaseCount")
    if count_text is None or not count_text.isdigit():
        sys.stderr.write(f"no case count from {base}\n")
        return 1
    count = int(count_text)
    name = quote(agent)
    for case in range(1, count + 1):
        try:
            await open_and_echo(f"{base}/runCase?case={case}&agent={name}")
        except EngineError as exc:
            sys.stderr.write(f"case {case}: {exc}\n")
    await open_and_echo(f"{base}/updateReports?agent={name}")
    sys.stdout.write(f"ran {count} cases as {agent}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("base", help="the fuzzingserver's ws:// URL, e.g. ws://127.0.0.1:9001")
    parser.add_argument("agent", help="the agent name the reports use")
    args = parser.parse_args(argv)
    try:
        return anyio.run(run_all, args.base.rstrip("/"), args.agent)
    except EngineError as exc:
        sys.stderr.write(f"cannot reach the fuzzingserver: {exc}\n")
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
