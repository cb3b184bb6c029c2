"""Replay benchmark: how faithfully recorded gaps are reproduced, and memory on huge transcripts.

1. Timing: a transcript of ``--messages`` client messages ``--gap`` apart (each echoed) is
   replayed with ``--timing recorded`` against a ``websockets`` echo server in another process.
   Reported: p50/p99/max of |actual gap - recorded gap|, as sent (the replay's send steps)
   and as arrived (noted by the server).
2. Memory: transcripts of each ``--events`` size (client message + server echo pairs) are
   replayed with ``--timing fast`` by ``wscenario replay`` in a fresh process each; reported:
   its peak RSS and the time taken. Memory should stay flat as the transcript grows.

Run: ``python bench/bench_replay.py [--messages 1000] [--gap 5ms] [--events 100000 1000000]``.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio

from wscenario.core.transcript import End, Header, empty_counts, encode_end, encode_header
from wscenario.engine.replay import ReplayOptions, Timing, replay_against
from wscenario.report.results import StepResult

ECHO_SERVER = r"""
import asyncio, json, sys, time
import websockets

async def main():
    timed = sys.argv[1:] == ["--times"]
    times = []
    async def handler(ws):
        async for message in ws:
            if timed:
                times.append(time.monotonic())
            await ws.send(message)
        if timed:
            print(json.dumps(times), flush=True)
            times.clear()
    async with websockets.serve(handler, "127.0.0.1", 0, compression=None,
                                max_size=None, ping_interval=None) as server:
        print(next(iter(server.sockets)).getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
"""

RUN_REPLAY = r"""
import resource, sys, time
from wscenario.cli import main
started = time.perf_counter()
code = main(sys.argv[1:])
took = time.perf_counter() - started
print(f"RESULT {code} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} {took:.2f}")
"""


@contextmanager
def echo_server(*, times: bool = False) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A websockets echo server in its own process; yields its url and the process.

    With ``times`` it prints the arrival times of each connection's messages when it ends.
    """
    command = [sys.executable, "-c", ECHO_SERVER] + (["--times"] if times else [])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"ws://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(10)


def write_transcript(path: Path, pairs: int, gap: float) -> None:
    """``pairs`` client messages ``gap`` seconds apart, each echoed by the server."""
    header = Header("bench", "ws://127.0.0.1:1/bench", "proxy", "2026-11-25T16:00:00+00:00")
    with path.open("w", encoding="utf-8") as out:
        out.write(encode_header(header).decode())
        out.write('{"t":0.001,"from":"client","type":"request","target":"/bench","headers":[]}\n')
        out.write(
            '{"t":0.002,"from":"server","type":"response","status":101,'
            '"reason":"Switching Protocols","headers":[]}\n'
        )
        t = 0.002
        for index in range(pairs):
            t += gap
            if index % 2:
                data = base64.b64encode(index.to_bytes(4, "big")).decode()
                line = f'"type":"binary","data":"{data}"'
            else:
                line = f'"type":"text","data":"{{\\"seq\\":{index},\\"body\\":\\"hello\\"}}"'
            out.write(f'{{"t":{t:.6f},"from":"client",{line}}}\n')
            out.write(f'{{"t":{t + gap / 10:.6f},"from":"server",{line}}}\n')
        out.write(
            f'{{"t":{t + 0.01:.6f},"from":"client","type":"close","code":1000,"reason":""}}\n'
        )
        out.write(
            f'{{"t":{t + 0.011:.6f},"from":"server","type":"close","code":1000,"reason":""}}\n'
        )
        counts = empty_counts()
        for role in counts.values():
            role.update(text=(pairs + 1) // 2, binary=pairs // 2, close=1)
        out.write(encode_end(End(t + 0.012, "complete", counts)).decode())


def replay(path: Path, url: str, timing: str) -> tuple[int, int, float]:
    """Run ``wscenario replay`` in a fresh process: exit code, peak RSS (KiB), seconds."""
    command = [sys.executable, "-c", RUN_REPLAY, "replay", str(path), "--against", url,
               "--timing", timing, "--no-color"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    result = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not result:
        sys.exit(f"replay did not finish:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    _, code, rss, took = result[-1].split()
    if code != "0":
        print(done.stdout[-3000:], done.stderr[-1000:])
    return int(code), int(rss), float(took)


def gap_errors(times: list[float], gap: float) -> str:
    """p50/p99/max of |actual gap - recorded gap| in milliseconds."""
    errors = sorted(abs((b - a) - gap) * 1000 for a, b in itertools.pairwise(times))
    p99 = errors[int(len(errors) * 0.99) - 1]
    return f"p50 {statistics.median(errors):.3f}ms  p99 {p99:.3f}ms  max {errors[-1]:.3f}ms"


def timing_accuracy(folder: Path, messages: int, gap: float) -> None:
    """Replay in this process (sends timed here) against an echo server (arrivals timed there)."""
    path = folder / "timing.jsonl"
    write_transcript(path, messages, gap)
    sent: list[float] = []

    def on_step(step: StepResult) -> None:
        if step.kind == "send":
            sent.append(step.started)

    async def play(url: str) -> str:
        result, _ = await replay_against(
            path, url, ReplayOptions(Timing(1.0)), env={}, warn=sys.stderr.write, on_step=on_step
        )
        return result.outcome

    with echo_server(times=True) as (url, process):
        outcome = anyio.run(play, url)
        assert process.stdout is not None
        arrivals = json.loads(process.stdout.readline())
    print(f"timing: {messages} messages {gap * 1000:g}ms apart, {outcome} (target p99 <= 2ms)")
    print(f"  |actual gap - recorded gap| when sent:    {gap_errors(sent, gap)}")
    print(f"  |actual gap - recorded gap| when arrived: {gap_errors(arrivals, gap)}")


def memory(folder: Path, sizes: list[int]) -> None:
    with echo_server() as (url, _):
        for events in sizes:
            path = folder / f"events-{events}.jsonl"
            write_transcript(path, events // 2, 0.001)
            megabytes = path.stat().st_size / 1e6
            code, rss, took = replay(path, url, "fast")
            print(
                f"memory: {events} events ({megabytes:.0f} MB), --timing fast: exit {code}, "
                f"peak RSS {rss / 1024:.1f} MiB, {took:.1f}s ({events / took:,.0f} events/s)"
            )
            path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--gap", type=float, default=0.005, help="seconds (default 0.005)")
    parser.add_argument("--events", type=int, nargs="*", default=[100_000, 1_000_000])
    args = parser.parse_args()
    if args.messages < 2 or args.gap <= 0 or any(n < 2 for n in args.events):
        parser.error("--messages and --events need at least 2, --gap a positive number")
    with tempfile.TemporaryDirectory() as folder:
        timing_accuracy(Path(folder), args.messages, args.gap)
        memory(Path(folder), args.events)


if __name__ == "__main__":
    main()
