"""Recording live connections: one transcript per WebSocket connection.

A :class:`Recording` says where transcripts go and what is redacted (``--record DIR``). While
a recording is active (:func:`recording`, a context manager that tasks started inside it
inherit), every connection that ``engine.websocket.connect`` makes or ``accept`` accepts gets
a :class:`TranscriptTap`: it watches the connection as its observer, turns its traffic into
transcript events with ``core.transcript_recorder`` and writes them with a
``TranscriptWriter``. The end record is written when the transport closes, or when the
recording ends (``interrupted``).

Recording is fail-open: a transcript that cannot be created or written is reported through
``warn`` and kept in ``Recording.errors``, and the connection goes on.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from wscenario._version import __version__
from wscenario.core.redaction import Redactor
from wscenario.core.redaction_policy import RedactionPolicy
from wscenario.core.transcript import EndStatus, Header, Role, TranscriptEvent
from wscenario.core.transcript_recorder import WireRecorder
from wscenario.core.urls import url_host
from wscenario.core.wire import HandshakeDone, HandshakeFailed, TlsPolicy, WireEvent
from wscenario.engine.connection import Address, WebSocketConnection
from wscenario.engine.transcript_io import TranscriptWriter
from wscenario.errors import CannotRun


@dataclass
class Recording:
    """Where transcripts go (``folder``), what is redacted, and what went wrong so far.

    ``key`` keys the redaction placeholders; a fresh random one per run by default. Each
    transcript numbers its own secrets (``transcript_redactor``); ``redactor`` redacts what is
    only shown. Once ``interrupted`` is set (Ctrl-C, SIGTERM), transcripts end as
    ``interrupted``.
    """

    folder: Path
    policy: RedactionPolicy = field(default_factory=RedactionPolicy)
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    warn: Callable[[str], object] | None = None
    errors: list[CannotRun] = field(default_factory=list)
    interrupted: bool = False
    taps: set[TranscriptTap] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self.redactor = Redactor(self.key, self.policy, numbered=False)

    def transcript_redactor(self) -> Redactor:
        """A redactor for one new transcript: its distinct secrets get names of their own."""
        return Redactor(self.key, self.policy)

    def start(self, *, side: Role, label: str, url: str, tls: str = "none") -> TranscriptTap | None:
        """A tap writing a new transcript, or ``None`` (reported) when it cannot be created."""
        redactor = self.transcript_redactor()
        header = Header(
            tool=f"wscenario {__version__}",
            url=redactor.url(url),
            side=side,
            started=datetime.now(UTC).isoformat(),
            redaction=self.policy,
            tls=tls,
        )
        try:
            writer = TranscriptWriter.create_in(self.folder, label, header, background_sync=True)
        except CannotRun as exc:
            self.report(exc)
            return None
        tap = TranscriptTap(writer, side, self, redactor)
        self.taps.add(tap)
        return tap

    def report(self, error: CannotRun) -> None:
        """Keep ``error`` and pass it to ``warn``."""
        self.errors.append(error)
        if self.warn is not None:
            self.warn(str(error))

    def close_all(self, status: EndStatus = "interrupted") -> None:
        """End every transcript still open (the run stopped before their connections did)."""
        for tap in list(self.taps):
            tap.close(status)


class TranscriptTap:
    """Writes one connection's transcript; the connection's ``observer`` once attached.

    ``redactor`` is this transcript's own (``Recording.transcript_redactor``).
    """

    def __init__(
        self, writer: TranscriptWriter, local: Role, recording: Recording, redactor: Redactor
    ) -> None:
        self.writer = writer
        self.recording = recording
        self.recorder = WireRecorder(local, redactor)
        self.connection: WebSocketConnection | None = None
        self._reported = False

    def attach(self, connection: WebSocketConnection, done: HandshakeDone) -> None:
        """Record the opening handshake and watch ``connection`` from now on."""
        self._write(
            self.recorder.handshake(
                self.writer.elapsed(),
                done,
                connection.request_headers,
                connection.response_headers,
            )
        )
        self.connection = connection
        connection.observer = self

    def handshake_failed(self, failed: HandshakeFailed) -> None:
        """The connection never opened: record why and end the transcript."""
        self._write(self.recorder.handshake_failed(self.writer.elapsed(), failed))
        self.close("aborted")

    def refused(
        self,
        target: str,
        request_headers: tuple[tuple[str, str], ...],
        status: int,
        response_headers: tuple[tuple[str, str], ...],
        body: bytes,
    ) -> None:
        """The server refused the opening handshake: record both sides and end."""
        t = self.writer.elapsed()
        self._write(
            [
                self.recorder.request(t, target, request_headers),
                self.recorder.response(t, status, "", response_headers, body),
            ]
        )
        self.close("aborted")

    # ------------------------------------------------------------- ConnectionObserver

    def frame_sent(self, data: bytes) -> None:
        """Frames this side wrote."""
        self._write(self.recorder.sent(self.writer.elapsed(), data))

    def event_received(self, event: WireEvent) -> None:
        """An event that came off the wire."""
        self._write(self.recorder.received(self.writer.elapsed(), event))

    def dropped(self, *, rst: bool) -> None:
        """This side cut the connection."""
        self._write(self.recorder.dropped(self.writer.elapsed(), rst=rst))

    def transport_closed(self) -> None:
        """The connection is over: end the transcript."""
        self.close()

    # ---------------------------------------------------------------------------- end

    def close(self, status: EndStatus | None = None) -> None:
        """Write the end record; only the first call writes.

        ``status`` ``None`` means ``interrupted`` once the recording is, else ``complete``
        after a closing handshake, else ``aborted``.
        """
        if self.writer.closed:
            return
        connection = self.connection
        if status is None:
            clean = (
                connection is not None
                and connection.lost is None
                and connection.close_sent
                and connection.close_received
            )
            status = "complete" if clean else "aborted"
            if self.recording.interrupted:
                status = "interrupted"
        if connection is not None and connection.lost is not None:
            self._write(self.recorder.received(self.writer.elapsed(), connection.lost))
        self.writer.close(status)
        self._check()
        self.recording.taps.discard(self)

    def _write(self, events: list[TranscriptEvent]) -> None:
        for event in events:
            self.writer.write(event)
        self._check()

    def _check(self) -> None:
        if self.writer.io_error is not None and not self._reported:
            self._reported = True
            self.recording.report(self.writer.io_error)


_active: ContextVar[tuple[Recording, str] | None] = ContextVar("wscenario_recording", default=None)


@contextlib.contextmanager
def recording(record: Recording | None, label: str) -> Iterator[None]:
    """Record every connection made or accepted inside (``None``: record nothing).

    ``label`` goes into the transcripts' file names (a scenario's name, or a host).
    """
    token = _active.set(None if record is None else (record, label))
    try:
        yield
    finally:
        _active.reset(token)


def mark_interrupted() -> None:
    """From now on, the active recording's transcripts end as ``interrupted`` (a signal)."""
    active = _active.get()
    if active is not None:
        active[0].interrupted = True


def client_tap(url: str, tls: TlsPolicy) -> TranscriptTap | None:
    """A tap for a client connection about to be made, when a recording is active."""
    active = _active.get()
    if active is None:
        return None
    record, label = active
    mode = "none" if not url.lower().startswith("wss:") else tls.mode.replace("none", "insecure")
    return record.start(side="client", label=label, url=url, tls=mode)


def recording_active() -> bool:
    """Whether connections made or accepted here are recorded."""
    return _active.get() is not None


def server_tap(local: Address | None, path: str, *, secure: bool) -> TranscriptTap | None:
    """A tap for a connection accepted at ``local``, when a recording is active.

    The header's ``url`` is the address the client reached; ``tls`` is ``none`` (a server
    verifies no certificate). The file name holds the recording's label and the path.
    """
    active = _active.get()
    if active is None:
        return None
    record, label = active
    host, port = local or ("localhost", 0)
    host = url_host(host)
    url = f"{'wss' if secure else 'ws'}://{host}:{port}{path}"
    return record.start(side="server", label=f"{label}-{path.split('?')[0]}", url=url)
