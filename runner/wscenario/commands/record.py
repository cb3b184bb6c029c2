"""``wscenario record``: a recording proxy between WebSocket clients and one upstream server.

Clients connect to ``--listen``; each connection is relayed to ``--upstream`` (same path and
query, added to the upstream URL's path) by ``engine.proxy`` and written as one transcript
(``side: proxy``) into ``--out``, with secrets redacted unless ``--no-redact``. A ``wss://``
upstream is verified strictly (``--cafile`` adds a CA; ``--insecure`` checks nothing, with
a warning). The proxy listens on 127.0.0.1 unless ``--allow-remote``, for ``wss://`` with
``--tls-cert`` and ``--tls-key`` (``--client-ca``: clients must show a certificate it
issued), as ``serve`` does. It prints the address it listens on, a line when
a connection opens and one when it ends (close code, transcript path), and runs until
Ctrl-C or SIGTERM, which close open connections with 1001 on both legs and end their
transcripts as ``interrupted``.

Exit code: 0, or 3 when a transcript could not be written in full or the listener cannot be
opened; 2 for bad usage.
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import anyio
from anyio.abc import TaskStatus

from wscenario._version import __version__
from wscenario.cli import EXIT_CANNOT_RUN, EXIT_OK
from wscenario.commands.limit_options import parse_limits, with_limits
from wscenario.commands.record_options import redaction_policy
from wscenario.commands.tls_options import listening_context
from wscenario.core.model import Limits
from wscenario.core.redaction import Redactor
from wscenario.core.redaction_policy import RedactionPolicy
from wscenario.core.transcript import Header
from wscenario.core.urls import url_host
from wscenario.engine.proxy import (
    ConnectionReport,
    EndStatus,
    RecordingProxy,
    Role,
    Upstream,
    upstream_context,
)
from wscenario.engine.server import bound_port, is_loopback, open_listener, parse_listen
from wscenario.engine.transcript_io import TranscriptWriter
from wscenario.engine.transcript_tap import Recording
from wscenario.errors import CannotRun, UsageError


def run(args: argparse.Namespace) -> int:
    """Proxy and record until stopped; the exit code."""
    plan = plan_from(args)
    recording = Recording(plan.folder, plan.policy, warn=_warn)
    anyio.run(record, plan, recording, sys.stdout)
    return EXIT_CANNOT_RUN if recording.errors else EXIT_OK


@dataclass(frozen=True)
class RecordPlan:
    """Everything ``record`` needs, checked before any socket is opened."""

    host: str
    port: int
    upstream: Upstream
    folder: Path
    policy: RedactionPolicy
    limits: Limits
    tls: ssl.SSLContext | None = None


def plan_from(args: argparse.Namespace) -> RecordPlan:
    """Check the command line.

    Raises:
        UsageError: a bad address, URL, option combination or redaction rule.
        CannotRun: the CA file or the certificate files cannot be used.
    """
    host, port = parse_listen(args.listen)
    if not is_loopback(host) and not args.allow_remote:
        raise UsageError(
            f"listening on {host} lets other machines use the proxy; add --allow-remote to do that"
        )
    if args.max_connections is not None and args.max_connections < 1:
        raise UsageError("--max-connections must be 1 or more")
    policy = redaction_policy(args)
    secure = args.upstream.lower().startswith("wss:")
    if (args.cafile or args.insecure) and not secure:
        raise UsageError("--cafile and --insecure only apply to a wss:// upstream")
    if args.cafile and args.insecure:
        raise UsageError("--cafile and --insecure do not go together")
    context = upstream_context(cafile=args.cafile, insecure=args.insecure) if secure else None
    mode = "none" if not secure else "insecure" if args.insecure else "strict"
    try:
        upstream = Upstream(args.upstream, context, mode)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    limits = with_limits(Limits(), _limits(args))
    tls = listening_context(args)
    return RecordPlan(host, port, upstream, Path(args.out), policy, limits, tls)


def _limits(args: argparse.Namespace) -> dict[str, int | float]:
    """The proxy's limits set by ``--limit`` and ``--max-connections`` (one of them for that).

    Raises:
        UsageError: a bad ``--limit``, or both setting the connections.
    """
    limits = parse_limits(args.limit)
    if args.max_connections is not None:
        if "max_connections" in limits:
            raise UsageError("--max-connections and --limit maxConnections=N: give one of them")
        limits["max_connections"] = args.max_connections
    return limits


CHECKPOINT_EVERY = 1000
"""Records between two checkpoints (``fsync``) of a proxy transcript, unless a second passes
first: a proxy may forward tens of thousands of messages a second, and one ``fsync`` per 100
of them cost it a sixth of its time."""


class ProxyTranscript:
    """One proxied connection's transcript: each event redacted, then written.

    ``redactor`` is this transcript's own (``Recording.transcript_redactor``), so the names of
    its secrets do not depend on other connections.
    """

    def __init__(
        self, writer: TranscriptWriter | None, recording: Recording, redactor: Redactor
    ) -> None:
        self.writer = writer
        self.recording = recording
        self.redactor = redactor
        self._text = redactor.text
        self._reported = False

    @classmethod
    def open(cls, recording: Recording, url: str, tls: str) -> ProxyTranscript:
        """A new transcript in the recording's folder (none, reported, when it cannot be made)."""
        redactor = recording.transcript_redactor()
        header = Header(
            tool=f"wscenario {__version__}",
            url=redactor.url(url),
            side="proxy",
            started=datetime.now(UTC).isoformat(),
            redaction=recording.policy,
            tls=tls,
        )
        label = "proxy-" + url.split("://", 1)[-1].split("?", 1)[0]
        try:
            writer = TranscriptWriter.create_in(
                recording.folder,
                label,
                header,
                background_sync=True,
                sync_every=CHECKPOINT_EVERY,
            )
        except CannotRun as exc:
            recording.report(exc)
            writer = None
        return cls(writer, recording, redactor)

    def message(self, from_: Role, type_: str, data: str | bytes) -> None:
        """Write one message, ping or pong; the user's rules redact text."""
        writer = self.writer
        if writer is None:
            return
        if type_ == "text":
            assert isinstance(data, str)
            data = self._text(data)
        writer.message(from_, type_, data)
        if writer.io_error is not None:
            self._check()

    def event(self, from_: Role, type_: str, fields: Mapping[str, Any]) -> None:
        """Write one event, with its secrets replaced."""
        if self.writer is None:
            return
        redactor = self.redactor
        redacted = dict(fields)
        if "headers" in redacted:
            redacted["headers"] = redactor.headers(redacted["headers"])
        if type_ == "request":
            redacted["target"] = redactor.target(redacted["target"])
        self.writer.event(from_, type_, **redacted)
        self._check()

    async def end(self, status: EndStatus) -> str | None:
        """Write the end record; the transcript's path."""
        if self.writer is None:
            return None
        self.writer.close(status)
        self._check()
        return str(self.writer.path)

    def _check(self) -> None:
        if self.writer is not None and self.writer.io_error is not None and not self._reported:
            self._reported = True
            self.recording.report(self.writer.io_error)


async def record(
    plan: RecordPlan,
    recording: Recording,
    out: TextIO,
    *,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Proxy until Ctrl-C or SIGTERM, printing a line when each connection opens and ends.

    ``task_status`` gets the proxy's address (``ws://127.0.0.1:8765``, ``wss://`` with TLS)
    once it listens.

    Raises:
        CannotRun: the listener cannot be opened (port in use).
    """

    async def transcript(url: str) -> ProxyTranscript:
        return ProxyTranscript.open(recording, url, plan.upstream.tls_mode)

    proxy = RecordingProxy(
        plan.upstream,
        transcript,
        limits=plan.limits,
        tls=plan.tls,
        on_open=lambda report: _print(out, opened_line(report, recording.redactor.url)),
        on_close=lambda report: _print(out, closed_line(report)),
    )
    listener = await open_listener(plan.host, plan.port)
    if not is_loopback(plan.host):
        _warn(f"{plan.host} lets other machines use the proxy, and their secrets are recorded")
    if plan.upstream.tls_mode == "insecure":
        _warn("--insecure: the upstream's certificate is not checked")
    shown = url_host(plan.host)
    scheme = "ws" if plan.tls is None else "wss"
    address = f"{scheme}://{shown}:{bound_port(listener)}"
    redaction = "on" if plan.policy.enabled else "OFF"
    _print(
        out,
        f"recording {address} -> {plan.upstream.url} into {plan.folder} (redaction {redaction})",
    )
    async with anyio.create_task_group() as tasks:
        await tasks.start(proxy.serve, listener)
        task_status.started(address)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        proxy.stop()


def opened_line(report: ConnectionReport, redact: Callable[[str], str]) -> str:
    """``[#1] 127.0.0.1:50312 opened -> ws://host/chat``, the URL's secrets redacted."""
    return f"[#{report.number}] {report.peer} opened -> {redact(report.url)}"


def closed_line(report: ConnectionReport) -> str:
    """How a connection ended and where its transcript is."""
    if report.closed_by is not None and report.status != "aborted":
        code = "no code" if report.code is None else str(report.code)
        reason = f" {report.reason!r}" if report.reason else ""
        how = f"closed {code}{reason} by the {report.closed_by}"
    else:
        how = report.status
    if report.problem:
        how += f" ({report.problem})"
    if report.status == "interrupted":
        how = "interrupted, closed with 1001"
    where = f", transcript {report.transcript}" if report.transcript else ", no transcript"
    return f"[#{report.number}] {report.peer} {how}{where}"


def _print(out: TextIO, line: str) -> None:
    out.write(line + "\n")
    out.flush()


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")
