"""Client benchmark: a scenario that sends N messages and expects each echo.

Compares, in the same run and against the same ``websockets`` echo server (its own process):

* ``wscenario``: a generated client scenario (send + expect, N times) run by the real engine,
  in the ``raw`` and ``ohos`` profiles;
* ``wsproto``: a bare wsproto + anyio loop doing the same round trips (the floor we build on);
* ``websockets``: the websockets library's own client, as a reference.

Each round measures every stack seconds apart; ratios are taken per round and the median is
reported. Run: ``python bench/bench_client.py [--messages 10000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import wsproto
import wsproto.events as wse
from websockets.asyncio.client import connect as ws_connect

HERE = Path(__file__).resolve().parent
Runner = Callable[[int, str, int], Awaitable[float]]
"""Runs ``count`` round trips of ``message`` against the port; returns the seconds taken."""

SIZES = {"32 B": 32, "1 KiB": 1024, "1 MiB": 1024 * 1024}


def payload(size: int) -> str:
    """A text payload of ``size`` ASCII bytes."""
    return ("0123456789abcdef" * (size // 16 + 1))[:size]


async def bare_wsproto(port: int, message: str, count: int) -> float:
    """Round trips with wsproto over an anyio stream: the baseline; returns seconds taken."""
    start = time.perf_counter()
    stream = await anyio.connect_tcp("127.0.0.1", port)
    conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    await stream.send(conn.send(wse.Request(host="127.0.0.1", target="/")))
    while not any(isinstance(e, wse.AcceptConnection) for e in _drain(conn)):
        conn.receive_data(await stream.receive(65536))
    for _ in range(count):
        await stream.send(conn.send(wse.TextMessage(data=message)))
        parts: list[str] = []
        done = False
        while not done:
            conn.receive_data(await stream.receive(65536))
            for event in conn.events():
                if isinstance(event, wse.TextMessage):
                    parts.append(event.data)
                    done = event.message_finished
        assert "".join(parts) == message
    await stream.send(conn.send(wse.CloseConnection(code=1000)))
    await stream.aclose()
    return time.perf_counter() - start


def _drain(conn: wsproto.WSConnection) -> list[wse.Event]:
    return list(conn.events())


async def websockets_client(port: int, message: str, count: int) -> float:
    """Round trips with the websockets library: the reference; returns seconds taken."""
    start = time.perf_counter()
    async with ws_connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=None) as ws:
        for _ in range(count):
            await ws.send(message)
            assert await ws.recv() == message
    return time.perf_counter() - start


def scenario_text(port: int, message: str, count: int, profile: str) -> str:
    """A client scenario doing ``count`` send/expect round trips of the variable ``msg``."""
    lines = [
        "wscenario: 1",
        "name: echo bench",
        f"vars: {{msg: {message!r}}}",
        "limits: {maxMessageSize: 2MiB}",
        f"client: {{url: 'ws://127.0.0.1:{port}/', profile: {profile}}}",
        "steps:",
        "  - connect: {}",
        "  - expect: open",
    ]
    lines.extend(["  - send: '{{ msg }}'\n  - expect: {message: '{{ msg }}'}"] * count)
    lines.append("  - close: {}")
    return "\n".join(lines) + "\n"


def wscenario_runner(profile: str) -> Runner:
    """Round trips as a generated scenario run by wscenario's engine (loading not timed)."""

    async def run(port: int, message: str, count: int) -> float:
        from wscenario.core.scenario_loader import load_scenario
        from wscenario.engine.client import run_client_scenario

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "bench.yaml"
            path.write_text(scenario_text(port, message, count, profile))
            scenario = load_scenario(path)
            start = time.perf_counter()
            result = await run_client_scenario(scenario, env={})
            elapsed = time.perf_counter() - start
            assert result.outcome == "passed", result
            return elapsed

    return run


async def timed(run: Runner, port: int, message: str, count: int) -> float:
    """Messages per second for one run."""
    return count / await run(port, message, count)


def main() -> None:
    """Run the benchmark and print a table of rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large-messages", type=int, default=100, help="count for 1 MiB")
    args = parser.parse_args()

    stacks: dict[str, Runner] = {
        "wsproto": bare_wsproto,
        "websockets": websockets_client,
        "wscenario raw": wscenario_runner("raw"),
        "wscenario ohos": wscenario_runner("ohos"),
    }
    with tempfile.TemporaryDirectory() as folder:
        port_file = Path(folder) / "port"
        server = subprocess.Popen([sys.executable, str(HERE / "echo_server.py"), str(port_file)])
        try:
            while not port_file.exists() or not port_file.read_text():
                time.sleep(0.05)
            port = int(port_file.read_text())
            report(stacks, port, args)
        finally:
            server.terminate()
            server.wait()


def report(
    stacks: dict[str, Runner],
    port: int,
    args: argparse.Namespace,
) -> None:
    """Measure every stack for every size and print rates and per-round ratios."""
    print(f"echo round trips, {args.rounds} rounds, median msg/s and median per-round ratio")
    print(f"{'size':>6}  {'stack':<15} {'msg/s':>9}  {'x wsproto':>9}  {'x websockets':>12}")
    for label, size in SIZES.items():
        count = args.large_messages if size >= 1024 * 1024 else args.messages
        message = payload(size)
        rates: dict[str, list[float]] = {name: [] for name in stacks}
        for _ in range(args.rounds):
            for name, run in stacks.items():
                rates[name].append(anyio.run(timed, run, port, message, count))
        for name in stacks:
            vs_wsproto = statistics.median(
                r / b for r, b in zip(rates[name], rates["wsproto"], strict=True)
            )
            vs_ws = statistics.median(
                r / b for r, b in zip(rates[name], rates["websockets"], strict=True)
            )
            rate = statistics.median(rates[name])
            print(f"{label:>6}  {name:<15} {rate:>9,.0f}  {vs_wsproto:>9.2f}  {vs_ws:>12.2f}")


if __name__ == "__main__":
    main()
