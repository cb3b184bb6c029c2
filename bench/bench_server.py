"""Fake-server benchmark: an echo scenario served by ``wscenario serve`` against bare servers.

Three servers, each in its own process pinned to CPU 0, load from the ``websockets`` client in
another process pinned to CPU 1:

* ``wscenario``: ``wscenario serve`` running an echo scenario (one rule sends every message
  back unchanged, ``send: {echo: true}``, text or binary);
* ``wsproto``: a bare wsproto + anyio echo server (``wsproto_echo_server.py``), the floor;
* ``websockets``: the websockets library's own echo server (``echo_server.py``), a reference.

Throughput: text messages of 32 B and 1 KiB, ``round trip`` (send, await the echo, repeat)
and ``pipelined`` (the client sends as fast as back-pressure lets it while it counts the
echoes); messages/s over ``--duration`` seconds after a warm-up. Three clients pipeline:

* the ``websockets`` client (Python) is slower than every server here, so this row measures
  the client more than the server: it does best against a server that answers late, in large
  pieces (its writes then back up and go out many at a time, and it reads many echoes per
  read), and worst against one that answers every few messages at once, as ``wscenario``
  does. A ``wscenario`` build slowed down on purpose lets it reach a higher rate, so read
  this row as how that client fares, not as server capacity;
* Node's ``ws`` client (``node_pipelined_client.js``), an independent client fast enough to
  keep every server here busy: the server is the bottleneck. Needs ``node`` and the ``ws``
  package of ``tests/node`` (installed with ``npm`` when missing); skipped, with the reason,
  without them;
* ``raw client``: a plain socket that writes ready-made masked frames from a thread and
  counts the echoed bytes, the least a client can cost.

Every round runs every stack seconds apart in shuffled order; the ratio to wsproto is taken
per round, the median shown.

Connections (fresh server per stack): 20 warm-up connections, then 1,000 timed new connections
(100 handshakes in flight), then up to ``--idle`` in all; after a settle the server's RSS
growth per connection is read from ``/proc``, every connection echoes 4 bytes to prove it is
alive, and all close.

Run: ``python bench/bench_server.py [--rounds 3] [--duration 1] [--idle 10000] [--reps 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NamedTuple

from websockets.asyncio.client import ClientConnection, connect

HERE = Path(__file__).resolve().parent
STACKS = ("wscenario", "wsproto", "websockets")
BASELINE = "wsproto"
SIZES = {"32 B": 32, "1 KiB": 1024}
WEBSOCKETS_PIPELINED = "pipelined, websockets client"
NODE_PIPELINED = "pipelined, Node ws client"
RAW_PIPELINED = "pipelined, raw client"
MODES = ("round trip", WEBSOCKETS_PIPELINED, NODE_PIPELINED, RAW_PIPELINED)
NODE_PACKAGES = HERE.parent / "tests" / "node"
SERVER_CPU = 0
CLIENT_CPU = 1
IN_FLIGHT = 100
WARM_CONNECTIONS = 20
TIMED_CONNECTIONS = 1000
SETTLE = 1.0
WARMUP = 0.25

ECHO_SCENARIO = """\
wscenario: 1
name: echo
server:
  listen: 127.0.0.1:0
  path: /
limits:
  maxConnections: 20000
  maxMessageSize: 1MiB
steps: []
rules:
  - on: messageReceive
    send: {echo: true}
"""


# ---------------------------------------------------------------------------- processes


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard limit (inherited by children); the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _pinned(cpu: int) -> None:
    if cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


@contextmanager
def server(stack: str, workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Start one echo server in its own process; yield it and its port; kill it after."""
    port_file = workdir / f"{stack}.port"
    port_file.unlink(missing_ok=True)
    log = workdir / f"{stack}.log"
    if stack == "wscenario":
        scenario = workdir / "echo.server.yaml"
        scenario.write_text(ECHO_SCENARIO)
        command = [sys.executable, "-m", "wscenario", "serve", str(scenario), "--no-color"]
    else:
        script = "wsproto_echo_server.py" if stack == "wsproto" else "echo_server.py"
        command = [sys.executable, str(HERE / script), str(port_file)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: _pinned(SERVER_CPU),  # noqa: PLW1509 - no threads here
        )
    try:
        yield process, _wait_port(stack, port_file, log, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_port(stack: str, port_file: Path, log: Path, process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{stack} server exited: {log.read_text()[-2000:]}")
        if stack == "wscenario":
            for line in log.read_text().splitlines():
                if line.startswith("listening on ws://"):
                    return int(line.split()[2].rsplit(":", 1)[1])
        elif port_file.exists() and port_file.read_text().strip():
            return int(port_file.read_text())
        time.sleep(0.05)
    raise SystemExit(f"{stack} server did not start")


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def client(*args: str) -> subprocess.Popen[str]:
    """This script in client mode, in its own process on the client CPU."""
    return _on_client_cpu([sys.executable, __file__, *args])


def _on_client_cpu(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: _pinned(CLIENT_CPU),  # noqa: PLW1509 - no threads here
    )


class NodeClient(NamedTuple):
    """How to start ``node_pipelined_client.js``."""

    command: list[str]
    env: dict[str, str]

    def rate(self, port: int, size: int, duration: float) -> subprocess.Popen[str]:
        """The client loading ``port``, in its own process on the client CPU."""
        args = [str(port), str(size), str(WARMUP), str(duration)]
        return _on_client_cpu([*self.command, *args], self.env)


def find_node_client() -> NodeClient | str:
    """The Node ``ws`` client, installing ``ws`` into ``tests/node`` if needed; or why not."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        return "node is not on PATH"
    if not (NODE_PACKAGES / "node_modules" / "ws").is_dir():
        if npm is None:
            return f"ws is not installed in {NODE_PACKAGES} and npm is not on PATH"
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund"],
            cwd=NODE_PACKAGES,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            return f"npm install in {NODE_PACKAGES} failed: {done.stderr.strip()[-300:]}"
    env = dict(os.environ, NODE_PATH=str(NODE_PACKAGES / "node_modules"))
    return NodeClient([node, str(HERE / "node_pipelined_client.js")], env)


def _line(pipe: IO[str] | None) -> dict[str, float]:
    assert pipe is not None
    line = pipe.readline()
    if not line:
        raise SystemExit("the client process ended early")
    result: dict[str, float] = json.loads(line)
    return result


# ---------------------------------------------------------------------------- client side


async def _round_trips(ws: ClientConnection, message: str, until: float) -> int:
    count = 0
    while time.perf_counter() < until:
        await ws.send(message)
        await ws.recv()
        count += 1
    return count


async def _pipelined(ws: ClientConnection, message: str, warmup: float, duration: float) -> int:
    """Echoes received in the measured window while a sender keeps the pipe full."""

    async def blast() -> None:
        while True:
            await ws.send(message)
            await asyncio.sleep(0)  # let the reader in even while the socket takes everything

    sender = asyncio.create_task(blast())
    start = time.perf_counter() + warmup
    end = start + duration
    count = 0
    try:
        while (now := time.perf_counter()) < end:
            await ws.recv()
            if now >= start:
                count += 1
    finally:
        sender.cancel()
    return count


RAW_UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
MASK = b"\x01\x02\x03\x04"


def masked_text_frame(payload: bytes) -> bytes:
    """One masked text frame as a client writes it (payloads under 64 KiB)."""
    length = len(payload)
    head = (
        bytes([0x81, 0x80 | length]) if length < 126 else bytes([0x81, 0xFE]) + length.to_bytes(2)
    )
    masked = bytes(byte ^ MASK[index % 4] for index, byte in enumerate(payload))
    return head + MASK + masked


def raw_rate(port: int, size: int, duration: float) -> float:
    """Echoes per second with a plain socket writing frames as fast as the server takes them."""
    message = ("0123456789abcdef" * (size // 16 + 1))[:size].encode()
    echo_size = len(message) + (2 if size < 126 else 4)
    burst = masked_text_frame(message) * max(1, 65536 // (size + 8))
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(RAW_UPGRADE)
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(4096)
    counted = len(received.split(b"\r\n\r\n", 1)[1])
    stop = threading.Event()

    def blast() -> None:
        try:
            while not stop.is_set():
                sock.sendall(burst)
        except OSError:
            pass  # the socket was shut down: done

    sender = threading.Thread(target=blast, daemon=True)
    sender.start()
    start = time.perf_counter() + WARMUP
    end = start + duration
    in_window = 0
    while (now := time.perf_counter()) < end:
        data = sock.recv(1 << 20)
        if not data:
            raise SystemExit("the server closed the connection")
        if now >= start:
            in_window += len(data)
        counted += len(data)
    stop.set()
    sock.shutdown(socket.SHUT_RDWR)
    sender.join()
    sock.close()
    return in_window / echo_size / duration


async def client_rate(port: int, mode: str, size: int, duration: float) -> None:
    """Print ``{"rate": messages per second}`` for one mode and size."""
    if mode == RAW_PIPELINED:
        print(json.dumps({"rate": raw_rate(port, size, duration)}), flush=True)
        return
    message = ("0123456789abcdef" * (size // 16 + 1))[:size]
    async with connect(
        f"ws://127.0.0.1:{port}/", compression=None, ping_interval=None, max_size=None
    ) as ws:
        if mode == "round trip":
            await _round_trips(ws, message, time.perf_counter() + WARMUP)
            count = await _round_trips(ws, message, time.perf_counter() + duration)
        else:
            count = await _pipelined(ws, message, WARMUP, duration)
        ws.transport.abort()
    print(json.dumps({"rate": count / duration}), flush=True)


async def _open_many(port: int, count: int, into: list[ClientConnection]) -> float:
    """Open ``count`` connections with ``IN_FLIGHT`` handshakes at a time; seconds taken."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one() -> None:
        async with gate:
            into.append(
                await connect(
                    f"ws://127.0.0.1:{port}/",
                    compression=None,
                    ping_interval=None,
                    open_timeout=60,
                )
            )

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return time.perf_counter() - start


async def client_idle(port: int, total: int) -> None:
    """Warm up, time 1,000 new connections, hold ``total`` idle, then prove them alive.

    Talks to the bench over stdin/stdout: one JSON line per phase, one stdin line to go on.
    """
    raise_fd_limit()
    held: list[ClientConnection] = []
    await _open_many(port, WARM_CONNECTIONS, held)
    print(json.dumps({"warm": len(held)}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    first = await _open_many(port, TIMED_CONNECTIONS, held)
    rest = await _open_many(port, max(total - TIMED_CONNECTIONS - WARM_CONNECTIONS, 0), held)
    print(json.dumps({"first": first, "all": first + rest, "held": len(held)}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def alive(ws: ClientConnection) -> bool:
        async with gate:
            try:
                await ws.send("ping")
                return await asyncio.wait_for(ws.recv(), 30) == "ping"
            except Exception:  # noqa: BLE001 - a dead connection is what we count
                return False

    answered = sum(await asyncio.gather(*(alive(ws) for ws in held)))
    for ws in held:
        ws.transport.abort()
    print(json.dumps({"alive": answered}), flush=True)


# ---------------------------------------------------------------------------- bench side


def measure_rates(
    rounds: int, duration: float, workdir: Path, node: NodeClient | None
) -> dict[str, list[float]]:
    """Messages/s per (stack, mode, size) cell, one sample per round (Node's only with it)."""
    samples: dict[str, list[float]] = {}
    with (
        server("wscenario", workdir) as (_, p1),
        server("wsproto", workdir) as (_, p2),
        server("websockets", workdir) as (_, p3),
    ):
        ports = {"wscenario": p1, "wsproto": p2, "websockets": p3}
        for _ in range(rounds):
            for mode in MODES:
                if mode == NODE_PIPELINED and node is None:
                    continue
                for label, size in SIZES.items():
                    order = list(STACKS)
                    random.shuffle(order)
                    for stack in order:
                        port = ports[stack]
                        if mode == NODE_PIPELINED and node is not None:
                            proc = node.rate(port, size, duration)
                        else:
                            proc = client("rate", str(port), mode, str(size), str(duration))
                        rate = _line(proc.stdout)["rate"]
                        proc.wait()
                        samples.setdefault(f"{stack}|{mode}|{label}", []).append(rate)
    return samples


def measure_connections(stack: str, total: int, workdir: Path) -> dict[str, float]:
    """Accept time for 1,000 connections and server KiB per idle connection."""
    with server(stack, workdir) as (process, port):
        proc = client("idle", str(port), str(total))
        _line(proc.stdout)
        time.sleep(0.2)
        before = rss_kib(process.pid)
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        opened = _line(proc.stdout)
        time.sleep(SETTLE)
        after = rss_kib(process.pid)
        proc.stdin.write("echo\n")
        proc.stdin.flush()
        alive = _line(proc.stdout)["alive"]
        proc.wait()
    new = opened["held"] - WARM_CONNECTIONS
    return {
        "first": opened["first"],
        "all": opened["all"],
        "held": opened["held"],
        "alive": alive,
        "kib_per_conn": (after - before) / new,
    }


def report_rates(samples: dict[str, list[float]], rounds: int) -> list[str]:
    """A Markdown table: median msgs/s and median per-round ratio to wsproto."""
    lines = [
        "| mode | size | " + " | ".join(STACKS) + " | wscenario ÷ wsproto | websockets ÷ wsproto |",
        "|---|---|" + "---|" * (len(STACKS) + 2),
    ]
    for mode in MODES:
        for label in SIZES:
            if f"{BASELINE}|{mode}|{label}" not in samples:
                continue
            cell = {stack: samples[f"{stack}|{mode}|{label}"] for stack in STACKS}
            rates = " | ".join(f"{statistics.median(cell[s]):,.0f}" for s in STACKS)
            ratios = [
                statistics.median(cell[s][r] / cell[BASELINE][r] for r in range(rounds))
                for s in ("wscenario", "websockets")
            ]
            lines.append(f"| {mode} | {label} | {rates} | {ratios[0]:.2f}× | {ratios[1]:.2f}× |")
    return lines


def report_connections(reps: list[dict[str, dict[str, float]]]) -> list[str]:
    """A Markdown table of the connection measurements: medians over repetitions.

    ``× wsproto`` is the median of the per-repetition ratios of the time for 1,000 new
    connections; ``held / alive`` the minimum over repetitions.
    """
    lines = [
        (
            "| stack | held / alive | 1,000 new connections | × wsproto | all (conn/s) "
            "| server KiB per idle conn |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for stack in STACKS:
        runs = [rep[stack] for rep in reps]
        held = min(r["held"] for r in runs)
        alive = min(r["alive"] for r in runs)
        first = statistics.median(r["first"] for r in runs)
        ratio = statistics.median(rep[stack]["first"] / rep[BASELINE]["first"] for rep in reps)
        every = statistics.median(r["all"] for r in runs)
        kib = statistics.median(r["kib_per_conn"] for r in runs)
        rate = (held - WARM_CONNECTIONS) / every
        lines.append(
            f"| {stack} | {held:,.0f} / {alive:,.0f} | {first:.2f} s | {ratio:.2f}× "
            f"| {every:.1f} s ({rate:,.0f}/s) | {kib:.1f} |"
        )
    return lines


def main() -> None:
    """Run the benchmark (or, with ``rate``/``idle`` as first argument, one client)."""
    if len(sys.argv) > 1 and sys.argv[1] == "rate":
        port, mode, size, duration = sys.argv[2:6]
        asyncio.run(client_rate(int(port), mode, int(size), float(duration)))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "idle":
        asyncio.run(client_idle(int(sys.argv[2]), int(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per cell")
    parser.add_argument("--idle", type=int, default=10_000, help="idle connections to hold")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the connections run")
    parser.add_argument("--skip", choices=("rates", "connections"), action="append", default=[])
    args = parser.parse_args()
    limit = raise_fd_limit()
    if args.idle + 100 > limit:
        raise SystemExit(f"--idle {args.idle} needs more than the open-files limit {limit}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "rates" not in args.skip:
            node = find_node_client()
            if isinstance(node, str):
                print(f"({NODE_PIPELINED} skipped: {node})\n", flush=True)
            samples = measure_rates(
                args.rounds, args.duration, workdir, None if isinstance(node, str) else node
            )
            print(f"## Echo throughput, messages/s (text, {args.rounds} rounds)\n")
            print("\n".join(report_rates(samples, args.rounds)) + "\n", flush=True)
        if "connections" not in args.skip:
            reps = []
            for _ in range(args.reps):
                order = list(STACKS)
                random.shuffle(order)
                reps.append({s: measure_connections(s, args.idle, workdir) for s in order})
            print(
                f"## Connections ({args.idle:,} idle, {IN_FLIGHT} handshakes in flight, "
                f"{args.reps} repetitions)\n"
            )
            print("\n".join(report_connections(reps)))


if __name__ == "__main__":
    main()
