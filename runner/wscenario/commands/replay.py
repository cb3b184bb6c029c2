"""``wscenario replay``: play a transcript's client side against a server, or its server side.

``--against URL`` connects to URL (never to the transcript's own url; a URL with no path gets
the recorded request path and query) with the recorded request headers, sends what the
client sent at the recorded times (``--timing``) and expects what the server sent (JSON
loosened by ``--ignore``, ``--match POINTER=any:TYPE|regex:PATTERN`` and ``--loose``; an id
the server sent that the client sends back is sent as the server sent it this time); several
transcripts are played one after another (all are checked before the first connects). Only
failing steps are printed, with the same details and diffs as ``run``, then one line with the
outcome. ``--serve`` listens (``--listen``, default 127.0.0.1:8765) on the recorded path with
the recorded subprotocol and plays the server to each client, until Ctrl-C, SIGTERM or, with
``--once``, the end of the first connection; an address other machines can reach needs
``--allow-remote``. With ``--tls-cert`` and ``--tls-key`` it listens for ``wss://``
(``--client-ca``: clients must show a certificate it issued), as ``serve`` does.
``--record DIR`` writes one transcript per connection the replay makes or accepts, as
``run --record`` and ``serve --record`` do.

Exit code: 0 passed, 1 a step failed, 2 bad usage or an invalid transcript (with its line),
3 could not run (port in use, the target unreachable), 130 when ``--against`` is interrupted.
A ``--serve`` stopped by Ctrl-C or SIGTERM ends normally: its code says how the connections
went.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import ssl
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import anyio

from wscenario.cli import EXIT_CANNOT_RUN, EXIT_OK
from wscenario.commands.given_url import checked_url
from wscenario.commands.limit_options import parse_limits, with_limits
from wscenario.commands.record_options import recording_from_args
from wscenario.commands.run import exit_code
from wscenario.commands.tls_options import listening_context, listening_tls
from wscenario.core.checks import WILDCARD_TYPES
from wscenario.core.model import JSON, Limits
from wscenario.core.regexes import UnsafePattern, compile_pattern
from wscenario.core.transcript import Role
from wscenario.core.units import parse_duration
from wscenario.engine.replay import (
    ReplayOptions,
    ServeReplay,
    Timing,
    TranscriptInfo,
    check_transcript,
    replay_against,
)
from wscenario.engine.server import is_loopback, open_listener, parse_listen
from wscenario.engine.transcript_tap import mark_interrupted, recording
from wscenario.errors import UsageError
from wscenario.report.console import (
    Style,
    render_end,
    render_header,
    render_step,
    render_summary,
    write_lines,
)
from wscenario.report.json_report import write_report
from wscenario.report.junit import write_junit
from wscenario.report.results import ScenarioResult, StepResult, not_started

DEFAULT_TIMEOUT = 5.0

_POINTER = re.compile(r"(?:/(?:[^~/]|~[01])*)+")
"""A non-empty JSON Pointer (RFC 6901): each ``~`` starts ``~0`` or ``~1``."""


def run(args: argparse.Namespace) -> int:
    """Run the ``replay`` command; returns the exit code."""
    out: TextIO = sys.stdout
    options = ReplayOptions(
        timing=parse_timing(args.timing),
        ignore=tuple(parse_ignore(pointer) for pointer in args.ignore),
        expect_timeout=_timeout(args.timeout),
        limits=with_limits(Limits(), parse_limits(args.limit)),
        wildcards=dict(parse_match(rule) for rule in args.match),
        loose=args.loose,
    )
    if args.serve:
        host, port = parse_listen(args.listen)
        if not is_loopback(host) and not args.allow_remote:
            raise UsageError(
                f"listening on {host} lets other machines connect; add --allow-remote to do that"
            )
        tls = listening_context(args)
    else:
        against = checked_url(args.against, "--against")
        if listening_tls(args) is not None:
            raise UsageError("--tls-cert, --tls-key and --client-ca only apply to --serve")
    paths = [Path(name) for name in args.transcript]
    if args.serve and len(paths) > 1:
        raise UsageError("--serve plays one transcript (--against plays several in turn)")
    record = recording_from_args(args)
    flags: dict[str, str] = {}  # each pointer's flags, as a warning names them
    for pointer, flag in [
        *((pointer, f"--ignore {pointer}") for pointer in options.ignore),
        *((pointer, f"--match {pointer}=...") for pointer in options.wildcards),
    ]:
        flags[pointer] = f"{flags[pointer]} and {flag}" if pointer in flags else flag
    expected_from: Role = "client" if args.serve else "server"
    infos = []
    for path in paths:  # all of them, before anything connects
        info = check_transcript(
            path, warn=sys.stderr.write, pointers=flags, expected_from=expected_from
        )
        for pointer in sorted(info.unused):
            sys.stderr.write(
                f"wscenario: warning: {flags[pointer]}: no JSON message the {expected_from}"
                f" sent in {path} has a value at {pointer}; it never applies\n"
            )
        infos.append(info)
    style = Style.for_stream(out, no_color=args.no_color)
    timestamp = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    interrupted = False
    try:
        with recording(record, "replay"):
            if args.serve:
                serving = (host, port, tls)
                results = anyio.run(
                    _serve, paths[0], infos[0], serving, args.once, options, style, out
                )
            else:
                results = []
                for path in paths:
                    if interrupted:  # kept from starting
                        results.append(not_started(path.name, str(path), 0))
                        continue
                    result, interrupted = anyio.run(_against, path, against, options, style, out)
                    results.append(result)
    finally:
        if record is not None:
            record.close_all()
    elapsed = time.perf_counter() - started
    if interrupted:
        write_lines(out, ["interrupted: the replay did not finish"])
    write_lines(out, [render_summary(results, elapsed, style)])
    if args.junit:
        write_junit(Path(args.junit), results, elapsed, timestamp)
    if args.report:
        write_report(Path(args.report), results, elapsed, timestamp)
    code = exit_code(results, interrupted=interrupted)
    return EXIT_CANNOT_RUN if code == EXIT_OK and record is not None and record.errors else code


def parse_timing(value: str) -> Timing:
    """``recorded``, ``fast`` or ``xN`` (N times as fast, N > 0) as a ``Timing``."""
    if value == "recorded":
        return Timing(1.0)
    if value == "fast":
        return Timing(None)
    try:
        scale = float(value[1:]) if value.startswith("x") else math.nan
    except ValueError:
        scale = math.nan
    if not (math.isfinite(scale) and scale > 0):
        raise UsageError(f"--timing expects recorded, fast or xN (x2, x0.5), got {value!r}")
    return Timing(scale)


def parse_ignore(value: str) -> str:
    """An ``--ignore`` value: a JSON Pointer."""
    if _POINTER.fullmatch(value) is None:
        raise UsageError(f"--ignore {value}: {value!r} is not a JSON Pointer (~ is ~0, / is ~1)")
    return value


def parse_match(value: str) -> tuple[str, JSON]:
    """``POINTER=any:TYPE`` or ``POINTER=regex:PATTERN`` as a pointer and its wildcard."""
    pointer, _, rule = value.partition("=")
    kind, colon, argument = rule.partition(":")
    usage = "write POINTER=any:TYPE or POINTER=regex:PATTERN, e.g. /ts=any:number"
    if not pointer.startswith("/") or not colon:
        raise UsageError(f"--match {value}: {usage}")
    if _POINTER.fullmatch(pointer) is None:
        raise UsageError(f"--match {value}: {pointer!r} is not a JSON Pointer (~ is ~0, / is ~1)")
    if kind == "any":
        if argument not in WILDCARD_TYPES:
            raise UsageError(
                f"--match {value}: unknown type {argument!r}; types: {', '.join(WILDCARD_TYPES)}"
            )
        return pointer, {"$any": True if argument == "true" else argument}
    if kind == "regex":
        try:
            compile_pattern(argument)
        except UnsafePattern as exc:
            raise UsageError(f"--match {value}: {exc.message}") from None
        return pointer, {"$regex": argument}
    raise UsageError(f"--match {value}: {usage}")


def _timeout(value: str | None) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        return parse_duration(float(value))
    except ValueError:
        pass
    try:
        return parse_duration(value)
    except ValueError:
        raise UsageError(f"--timeout expects a duration (250ms, 2s, 1m), got {value!r}") from None


async def _against(
    path: Path,
    url: str,
    options: ReplayOptions,
    style: Style,
    out: TextIO,
) -> tuple[ScenarioResult, bool]:
    """Replay against ``url``; ``True`` as second value if a signal cut it short."""
    write_lines(out, render_header(path.name, f"{path} against {url}", style))

    def on_step(step: StepResult) -> None:
        if step.failure is not None:
            write_lines(out, render_step(step, style))

    stop = anyio.CancelScope()
    async with anyio.create_task_group() as watching:
        watching.start_soon(_on_signal, mark_interrupted, stop.cancel)
        result, steps = await replay_against(
            path, url, options, env=os.environ, warn=sys.stderr.write, on_step=on_step, stop=stop
        )
        watching.cancel_scope.cancel()
    if stop.cancelled_caught:
        result = result.stopped()
    write_lines(out, [*render_end(result, style), f"{steps} steps replayed"])
    return result, stop.cancelled_caught


async def _serve(
    path: Path,
    info: TranscriptInfo,
    serving: tuple[str, int, ssl.SSLContext | None],
    once: bool,
    options: ReplayOptions,
    style: Style,
    out: TextIO,
) -> list[ScenarioResult]:
    host, port, tls = serving

    def on_step(number: int, step: StepResult) -> None:
        if step.failure is not None:
            write_lines(out, [f"[#{number}] {line}" for line in render_step(step, style)])

    replay = ServeReplay(
        path,
        info,
        options,
        env=os.environ,
        warn=sys.stderr.write,
        stop_after=1 if once else None,
        tls=tls,
        on_step=on_step,
        on_result=lambda result: write_lines(out, render_end(result, style)),
    )
    listener = await open_listener(host, port)
    async with anyio.create_task_group() as tasks:
        url = await tasks.start(replay.serve, listener, host)
        write_lines(out, [f"replaying the server side of {path.name} on {url}"])
        tasks.start_soon(_on_signal, replay.stop, mark_interrupted)
        await replay.finished.wait()
        tasks.cancel_scope.cancel()
    return replay.results


async def _on_signal(*stop: Callable[[], object]) -> None:
    """Call each of ``stop`` at the first SIGINT or SIGTERM."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            for call in stop:
                call()
            return
