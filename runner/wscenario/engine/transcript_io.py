"""Transcript files: crash-safe writing, and streaming reading with the core reader.

A :class:`TranscriptWriter` creates its file exclusively (never overwriting, never following
a symlink) with mode 0600, ``fsync``s the folder so the new name survives a crash, writes each
record with one ``write`` on an append-only descriptor, and ``fsync``s every
``sync_every`` records or ``sync_interval`` seconds and on close. With ``background_sync``
those checkpoints run on a worker thread, so the caller (an event loop) does not wait for the
disk; ``sync`` and ``close`` wait for them. A write error (full disk,
I/O error) is kept in ``io_error`` with the file's name; the writer then stops writing, so the
connection it records goes on and other transcripts are unaffected.

:func:`open_transcript` reads a transcript file record by record, with bounded memory.
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wscenario.core.diagnostics import Diagnostic, Position
from wscenario.core.transcript import (
    COUNTED_TYPES,
    DEFAULT_MAX_LINE_LENGTH,
    End,
    EndStatus,
    Header,
    Record,
    Role,
    TranscriptError,
    TranscriptEvent,
    TranscriptReader,
    empty_counts,
    encode_data_event,
    encode_end,
    encode_event,
    encode_header,
)
from wscenario.errors import CannotRun, ScenarioLoadError

SYNC_EVERY = 100
SYNC_INTERVAL = 1.0
READ_CHUNK = 1024 * 1024

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
_NAME_ATTEMPTS = 1000
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_sequence = itertools.count(1)


def transcript_name(label: str, started: datetime, number: int) -> str:
    """``<UTC time>-<label>-<number>.jsonl``, with the label reduced to safe characters."""
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    safe = _UNSAFE.sub("_", label).strip("._")[:60] or "connection"
    return f"{stamp}-{safe}-{number}.jsonl"


class TranscriptWriter:
    """Writes one transcript file; see the module docstring for the guarantees.

    ``t`` of each event is measured from the writer's creation on ``clock`` (monotonic).
    """

    def __init__(
        self,
        path: Path,
        header: Header,
        *,
        clock: Callable[[], float] = time.monotonic,
        sync_every: int = SYNC_EVERY,
        sync_interval: float = SYNC_INTERVAL,
        background_sync: bool = False,
    ) -> None:
        """Create ``path`` and write ``header``.

        Raises:
            TranscriptIOError: the file exists, is a symlink, or cannot be created or written.
        """
        self.path = path
        self.header = header
        self.io_error: TranscriptIOError | None = None
        self.counts = empty_counts()
        self.closed = False
        self._clock = clock
        self._start = clock()
        self._last_t = 0.0
        self._sync_every = sync_every
        self._sync_interval = sync_interval
        self._unsynced = 0
        self._synced_at = self._start
        self._torn = False
        self._background = background_sync
        self._syncing: list[Future[OSError | None]] = []
        try:
            self._fd = os.open(path, _CREATE_FLAGS, 0o600)
        except OSError as exc:
            raise _error(path, "cannot create", exc) from None
        _sync_folder(path.parent)
        self._write(encode_header(header))
        if self.io_error is not None:
            os.close(self._fd)
            self.closed = True
            raise self.io_error

    @classmethod
    def create_in(
        cls, folder: Path, label: str, header: Header, **options: Any
    ) -> TranscriptWriter:
        """A new transcript in ``folder`` (made with mode 0700 if missing), named uniquely.

        Raises:
            TranscriptIOError: the folder or the file cannot be created.
            CannotRun: every name tried exists already.
        """
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise _error(folder, "cannot create the transcript folder", exc) from None
        started = datetime.fromisoformat(header.started)
        for _ in range(_NAME_ATTEMPTS):
            path = folder / transcript_name(label, started, next(_sequence))
            try:
                return cls(path, header, **options)
            except TranscriptIOError as exc:
                if exc.errno != errno.EEXIST:
                    raise
        raise CannotRun(f"cannot find a free transcript name in {folder}")

    def elapsed(self) -> float:
        """Seconds since the transcript started, never going backwards."""
        self._last_t = max(self._last_t, self._clock() - self._start)
        return self._last_t

    def event(self, from_: Role, type_: str, **fields: object) -> None:
        """Write one event now (``bytes`` fields are written as base64)."""
        self.write(TranscriptEvent(self.elapsed(), from_, type_, fields))

    def write(self, event: TranscriptEvent) -> None:
        """Write ``event`` and count it; nothing happens after an I/O error or close."""
        if self.closed:
            return
        if event.type in COUNTED_TYPES:
            self.counts[event.from_][event.type] += 1
        self._record(encode_event(event))

    def message(self, from_: Role, type_: str, data: str | bytes) -> None:
        """Write one ``text``, ``binary``, ``ping`` or ``pong`` event now.

        The same as ``event(from_, type_, data=data)``, with less work per event.
        """
        if self.closed:
            return
        self.counts[from_][type_] += 1
        self._record(encode_data_event(self.elapsed(), from_, type_, data))

    def _record(self, line: bytes) -> None:
        """Write one event's line, with a checkpoint when one is due."""
        self._write(line)
        self._unsynced += 1
        now = self._clock()
        if self._unsynced >= self._sync_every or now - self._synced_at >= self._sync_interval:
            if self._background:
                self._sync_in_background()
            else:
                self.sync()

    def sync(self) -> None:
        """``fsync`` what was written so far (a checkpoint), waiting for it."""
        self._collect_syncs(wait=True)
        if self.io_error is not None or self.closed:
            return
        error = _fsync(self._fd)
        if error is not None:
            self._fail(error)
        self._checkpointed()

    def _sync_in_background(self) -> None:
        """Queue a checkpoint on the worker thread.

        One that is queued and not started yet will sync this record too, so it is not queued
        twice; one that is running may have started before this record was written.
        """
        self._collect_syncs(wait=False)
        if self.io_error is not None:
            return
        last = self._syncing[-1] if self._syncing else None
        if last is None or last.running() or last.done():
            self._syncing.append(_sync_worker().submit(_fsync, self._fd))
        self._checkpointed()

    def _collect_syncs(self, *, wait: bool) -> None:
        """Take the outcome of background checkpoints that are over (all of them: ``wait``)."""
        while self._syncing and (wait or self._syncing[0].done()):
            error = self._syncing.pop(0).result()
            if error is not None and self.io_error is None:
                self._fail(error)

    def _checkpointed(self) -> None:
        self._unsynced = 0
        self._synced_at = self._clock()

    def close(self, status: EndStatus = "complete") -> None:
        """Write the end record (status ``io-error`` after a write error), sync and close.

        Safe to call more than once; only the first call writes.
        """
        if self.closed:
            return
        self._collect_syncs(wait=True)
        end_status: EndStatus = "io-error" if self.io_error is not None else status
        if not self._torn:
            counts: Mapping[str, Mapping[str, int]] = self.counts
            self._write(encode_end(End(self.elapsed(), end_status, counts)), after_error=True)
        self.sync()
        self.closed = True
        try:
            os.close(self._fd)
        except OSError as exc:  # NFS and the like report a failed write here
            if self.io_error is None:
                self._fail(exc)

    def _write(self, data: bytes, *, after_error: bool = False) -> None:
        if self.io_error is not None and not after_error:
            return
        view = memoryview(data)
        written = 0
        try:
            while written < len(view):
                written += os.write(self._fd, view[written:])
        except OSError as exc:
            self._torn = self._torn or written > 0
            if self.io_error is None:
                self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.io_error = _error(self.path, "cannot write the transcript", exc)


class TranscriptIOError(CannotRun):
    """A transcript file cannot be created or written; ``errno`` says why."""

    def __init__(self, message: str, errno: int | None) -> None:
        super().__init__(message)
        self.errno = errno


def _error(path: Path, what: str, exc: OSError) -> TranscriptIOError:
    if exc.errno == errno.EEXIST:  # a symlink too: O_EXCL never follows one
        reason = "the name exists already"
    else:
        reason = (exc.strerror or "unknown error").lower()
    return TranscriptIOError(f"{what} {path}: {reason}", exc.errno)


def _fsync(fd: int) -> OSError | None:
    """``fsync`` ``fd``; the error instead of raising it (it may run on the worker thread)."""
    try:
        os.fsync(fd)
    except OSError as exc:
        return exc
    return None


@functools.cache
def _sync_worker() -> ThreadPoolExecutor:
    """The thread that runs background checkpoints, shared by every writer."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="transcript-sync")


def _sync_folder(folder: Path) -> None:
    """``fsync`` a folder so a file just created in it survives a crash (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -------------------------------------------------------------------------------- reading


class TranscriptFile:
    """A transcript file read record by record; each iteration reads it again.

    After an iteration, ``warnings`` holds the reader's warnings (a torn last line, a missing end
    record) and ``complete`` says whether the end record was there.

    Iterating raises ``ScenarioLoadError`` (exit code 2) with a diagnostic at the offending
    line for an unreadable file or an invalid line.
    """

    def __init__(self, path: Path, max_line_length: int = DEFAULT_MAX_LINE_LENGTH) -> None:
        self.path = path
        self.max_line_length = max_line_length
        self.reader = TranscriptReader(max_line_length)

    @property
    def warnings(self) -> list[str]:
        """What the reader skipped or found missing."""
        return self.reader.warnings

    @property
    def complete(self) -> bool:
        """The end record was read."""
        return self.reader.complete

    def __iter__(self) -> Iterator[Record]:
        self.reader = TranscriptReader(self.max_line_length)
        fd = self._open()
        try:
            while chunk := self._read(fd):
                yield from self._parse(self.reader.feed, chunk)
            yield from self._parse(lambda _: self.reader.finish(), b"")
        finally:
            os.close(fd)

    def _parse(self, step: Callable[[bytes], list[Record]], chunk: bytes) -> list[Record]:
        try:
            return step(chunk)
        except TranscriptError as exc:
            position = Position(str(self.path), max(exc.lineno, 1), 1)
            raise ScenarioLoadError([Diagnostic(position, exc.message)]) from exc

    def _open(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            raise self._file_error(_reason(exc)) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise self._file_error("not a regular file")
        return fd

    def _read(self, fd: int) -> bytes:
        try:
            return os.read(fd, READ_CHUNK)
        except OSError as exc:
            raise self._file_error(_reason(exc)) from None

    def _file_error(self, reason: str) -> ScenarioLoadError:
        position = Position(str(self.path), 1, 1)
        return ScenarioLoadError(
            [Diagnostic(position, f"cannot read transcript {self.path}: {reason}")]
        )


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENXIO:  # a socket
        return "not a regular file"
    if exc.errno == errno.ENOENT:
        return "file not found"
    return (exc.strerror or "unknown error").lower()


def open_transcript(path: Path, max_line_length: int = DEFAULT_MAX_LINE_LENGTH) -> TranscriptFile:
    """The transcript at ``path``, to be iterated record by record."""
    return TranscriptFile(path, max_line_length)
