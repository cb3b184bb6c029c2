"""Proxy benchmark: messages per second through ``wscenario record`` against a direct connection.

The same peers both ways: a ``websockets`` client (this process) and the ``websockets`` echo
server of ``echo_server.py`` (its own process). The proxy runs as ``wscenario record`` in its own
process too, recording every message to a transcript in a temporary folder (redaction on), as
a user would run it. For each message size the client streams N messages while reading the
echoes (at most ``--window`` unanswered, so the pipe never holds more than that), directly and
through the proxy, and each round compares the two; the median ratio is reported (target: the
proxy keeps 70% or more of the direct rate).
Run: ``python bench/bench_proxy.py [--messages 20000] [--rounds 3] [--window 64]``;
``--profile FILE`` runs the proxy under ``cProfile`` and writes its statistics to FILE
(read them with ``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from websockets.asyncio.client import connect as ws_connect

HERE = Path(__file__).resolve().parent
SIZES = (32, 1024)
TARGET = 0.70


async def stream(url: str, message: str, count: int, window: int) -> float:
    """Send ``count`` messages with at most ``window`` echoes outstanding; messages per second."""
    async with ws_connect(url, compression=None, max_size=None, proxy=None) as client:
        credit = anyio.Semaphore(window)

        async def send_all() -> None:
            for _ in range(count):
                await credit.acquire()
                await client.send(message)

        start = time.perf_counter()
        async with anyio.create_task_group() as group:
            group.start_soon(send_all)
            for _ in range(count):
                await client.recv()
                credit.release()
        return count / (time.perf_counter() - start)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_echo_server(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The echo server in its own process, and its port."""
    port_file = folder / "echo.port"
    server = subprocess.Popen([sys.executable, str(HERE / "echo_server.py"), str(port_file)])
    deadline = time.monotonic() + 10
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline:
            server.kill()
            raise SystemExit("the echo server did not start")
        time.sleep(0.05)
    return server, int(port_file.read_text())


def start_proxy(
    folder: Path, upstream_port: int, profile: str | None = None
) -> tuple[subprocess.Popen[str], str]:
    """``wscenario record`` in its own process (under ``cProfile`` when ``profile`` names a
    file for its statistics), and the address it listens on."""
    profiler = ["-m", "cProfile", "-o", profile] if profile else []
    command = [
        sys.executable,
        *profiler,
        "-m",
        "wscenario",
        "record",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        f"ws://127.0.0.1:{upstream_port}",
        "--out",
        str(folder / "transcripts"),
    ]
    proxy = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proxy.stdout is not None
    first = proxy.stdout.readline()
    if not first.startswith("recording "):
        proxy.kill()
        raise SystemExit(f"the proxy did not start: {first!r}")
    return proxy, first.split()[1]


def main() -> None:
    """Measure, print each round and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--profile", metavar="FILE", help="profile the proxy into FILE")
    args = parser.parse_args()
    if args.messages < 1 or args.rounds < 1 or args.window < 1:
        parser.error("--messages, --rounds and --window must be 1 or more")
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        server, port = start_echo_server(folder)
        proxy, proxy_url = start_proxy(folder, port, args.profile)
        try:
            results = measure(f"ws://127.0.0.1:{port}", proxy_url, args, (server.pid, proxy.pid))
        finally:
            proxy.terminate()
            proxy.wait(10)
            server.terminate()
            server.wait(10)
    print()
    print(
        f"{'size':>6}  {'direct msg/s':>13}  {'proxy msg/s':>12}  {'ratio':>6}  "
        f"{'proxy CPU/round trip':>20}"
    )
    for size, (direct, proxied, ratio, cpu) in results.items():
        verdict = "ok" if ratio >= TARGET else f"below {TARGET:.0%}"
        print(
            f"{size:>5}B  {direct:>13,.0f}  {proxied:>12,.0f}  {ratio:>6.0%}  "
            f"{cpu * 1e6:>17.0f} us  {verdict}"
        )


def measure(
    direct_url: str, proxy_url: str, args: argparse.Namespace, pids: tuple[int, int]
) -> dict[int, tuple[float, float, float, float]]:
    """Per size: the median direct rate, proxied rate, ratio and proxy CPU per round trip.

    Each round also prints the CPU time per round trip (a message and its echo) of the echo
    server (direct run) and of the proxy (proxied run, two messages forwarded and recorded):
    unlike rates, it hardly moves when other work shares the machine.
    """
    server_pid, proxy_pid = pids
    results: dict[int, tuple[float, float, float, float]] = {}
    for size in SIZES:
        message = "x" * size
        direct_rates, proxy_rates, ratios, proxy_cpus = [], [], [], []
        for round_number in range(1, args.rounds + 1):
            order = [direct_url, proxy_url] if round_number % 2 else [proxy_url, direct_url]
            rates: dict[str, float] = {}
            for url in order:
                before = cpu_seconds(server_pid), cpu_seconds(proxy_pid)
                rates[url] = anyio.run(stream, url, message, args.messages, args.window)
                if url == direct_url:
                    server_cpu = (cpu_seconds(server_pid) - before[0]) / args.messages
                else:
                    proxy_cpu = (cpu_seconds(proxy_pid) - before[1]) / args.messages
            direct_rates.append(rates[direct_url])
            proxy_rates.append(rates[proxy_url])
            ratios.append(rates[proxy_url] / rates[direct_url])
            proxy_cpus.append(proxy_cpu)
            print(
                f"{size:>5}B round {round_number}: direct {rates[direct_url]:,.0f} msg/s, "
                f"proxy {rates[proxy_url]:,.0f} msg/s ({ratios[-1]:.0%}); CPU per round trip: "
                f"echo server {server_cpu * 1e6:.0f} us, proxy {proxy_cpu * 1e6:.0f} us"
            )
        results[size] = (
            statistics.median(direct_rates),
            statistics.median(proxy_rates),
            statistics.median(ratios),
            statistics.median(proxy_cpus),
        )
    return results


if __name__ == "__main__":
    main()
