"""Client benchmark: a scenario that sends N messages and expects each echo.

Compares, in the same run and against the same ``websockets`` echo server (its own process):

* ``wscenario``: a generated client scenario (send + expect, N times) run by the real engine,
  in the ``raw`` and ``ohos`` profiles;
* ``wsproto``: a bare wsproto + anyio loop doing the same round trips (the floor we build on);
* ``websockets``: the websockets library's own client, as a reference.

Each round measures every stack seconds apart (the order rotates from round to round); ratios
are taken per round and the median is reported. Besides messages per second, the CPU time of
the client process per message is shown: on a machine shared with other work it moves far less
than wall-clock rates. ``--best-of N`` is the quieter mode: every stack runs N times in a row
per round and its least disturbed run (shortest wall time, least CPU) counts. Before measuring,
the allocator is settled (``settle_allocator``) so that every stack reads sockets alike.
Run: ``python bench/bench_client.py [--messages 10000] [--rounds 3] [--best-of 1]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import wsproto
import wsproto.events as wse
from websockets.asyncio.client import connect as ws_connect

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Sample:
    """One timed run: wall-clock seconds and CPU seconds of this process."""

    wall: float
    cpu: float


def clocks() -> tuple[float, float]:
    """The wall clock and this process's CPU clock, read together."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> Sample:
    """The wall and CPU time spent since ``start`` (from ``clocks()``)."""
    wall, cpu = clocks()
    return Sample(wall - start[0], cpu - start[1])


Runner = Callable[[int, str, int], Awaitable[Sample]]
"""Runs ``count`` round trips of ``message`` against the port; returns the time taken."""

SIZES = {"32 B": 32, "1 KiB": 1024, "1 MiB": 1024 * 1024}


def payload(size: int) -> str:
    """A text payload of ``size`` ASCII bytes."""
    return ("0123456789abcdef" * (size // 16 + 1))[:size]


async def bare_wsproto(port: int, message: str, count: int) -> Sample:
    """Round trips with wsproto over an anyio stream: the baseline; returns the time taken."""
    start = clocks()
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
    return since(start)


def _drain(conn: wsproto.WSConnection) -> list[wse.Event]:
    return list(conn.events())


async def websockets_client(port: int, message: str, count: int) -> Sample:
    """Round trips with the websockets library: the reference; returns the time taken."""
    start = clocks()
    async with ws_connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=None) as ws:
        for _ in range(count):
            await ws.send(message)
            assert await ws.recv() == message
    return since(start)


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

    async def run(port: int, message: str, count: int) -> Sample:
        from wscenario.core.scenario_loader import load_scenario
        from wscenario.engine.client import run_client_scenario

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "bench.yaml"
            path.write_text(scenario_text(port, message, count, profile))
            scenario = load_scenario(path)
            start = clocks()
            result = await run_client_scenario(scenario, env={})
            elapsed = since(start)
            assert result.outcome == "passed", result
            return elapsed

    return run


def settle_allocator() -> None:
    """Let large reads come from the heap for every stack alike, from the first run on.

    asyncio reads a socket into a fresh 256 KiB buffer. glibc serves a block that large with
    mmap (and munmap when it is freed: three more syscalls per read) until a freed block of
    that size raises its mmap threshold, which then stays raised for the process. When that
    happens depends on the process's history: the stacks measured before it paid for it on
    every message, those after did not. Freeing one large block first puts them all on the
    footing a long-running process has.
    """
    block = bytearray(4 << 20)
    del block


def best_of(run: Runner, port: int, message: str, count: int, times: int) -> Sample:
    """The least disturbed of ``times`` runs: the shortest wall time and the least CPU."""
    samples = [anyio.run(run, port, message, count) for _ in range(times)]
    return Sample(min(s.wall for s in samples), min(s.cpu for s in samples))


def main() -> None:
    """Run the benchmark and print a table of rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large-messages", type=int, default=100, help="count for 1 MiB")
    parser.add_argument(
        "--best-of", type=int, default=1, help="runs per stack and round; the fastest counts"
    )
    parser.add_argument(
        "--sizes", nargs="+", choices=list(SIZES), default=list(SIZES), help="sizes to measure"
    )
    args = parser.parse_args()
    settle_allocator()

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
    """Measure every stack for every size and print rates, CPU and per-round ratios."""
    print(
        f"echo round trips, {args.rounds} rounds (best of {args.best_of}), medians;"
        f" load average before: {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'size':>6}  {'stack':<15} {'msg/s':>9}  {'x wsproto':>9}  {'x websockets':>12}"
        f"  {'CPU us/msg':>10}  {'CPU x wsproto':>13}"
    )
    names = list(stacks)
    for label in args.sizes:
        size = SIZES[label]
        count = args.large_messages if size >= 1024 * 1024 else args.messages
        message = payload(size)
        samples: dict[str, list[Sample]] = {name: [] for name in stacks}
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(best_of(stacks[name], port, message, count, args.best_of))
        for name in stacks:
            mine, bare, ws = samples[name], samples["wsproto"], samples["websockets"]
            rate = statistics.median(count / s.wall for s in mine)
            vs_wsproto = statistics.median(b.wall / s.wall for s, b in zip(mine, bare, strict=True))
            vs_ws = statistics.median(w.wall / s.wall for s, w in zip(mine, ws, strict=True))
            cpu = statistics.median(s.cpu / count * 1e6 for s in mine)
            cpu_vs = statistics.median(b.cpu / s.cpu for s, b in zip(mine, bare, strict=True))
            print(
                f"{label:>6}  {name:<15} {rate:>9,.0f}  {vs_wsproto:>9.2f}  {vs_ws:>12.2f}"
                f"  {cpu:>10,.0f}  {cpu_vs:>13.2f}"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
