"""Transcript files: exclusive 0600 creation, checkpoints, crash safety, write errors, reading."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.transcript_checks import checked_transcript, schema_errors
from wscenario.core.transcript import End, Header, TranscriptEvent
from wscenario.engine import transcript_io
from wscenario.engine.transcript_io import (
    TranscriptIOError,
    TranscriptWriter,
    open_transcript,
    transcript_name,
)
from wscenario.errors import CannotRun, ScenarioLoadError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "transcripts"
HEADER = Header("wscenario 0.1.0", "ws://127.0.0.1:1/", "client", "2026-11-25T16:00:00+00:00")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr("wscenario.engine.transcript_io.os.fsync", counting)
    return calls


def test_writer_writes_a_complete_transcript_with_mode_0600(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = TranscriptWriter(tmp_path / "a.jsonl", HEADER, clock=clock)
    clock.now += 0.25
    writer.event("client", "text", data="hé")
    clock.now += 0.25
    writer.event("server", "binary", data=b"\x00\xff")
    writer.event("server", "disconnect", kind="eof", message="gone")
    writer.close("aborted")
    writer.close("complete")  # a second close writes nothing
    path = tmp_path / "a.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    records = checked_transcript(path)
    assert records[0] == HEADER
    assert records[1] == TranscriptEvent(0.25, "client", "text", {"data": "hé"})
    assert records[2] == TranscriptEvent(0.5, "server", "binary", {"data": b"\x00\xff"})
    end = records[-1]
    assert isinstance(end, End)
    assert end.status == "aborted"
    assert end.t == 0.5
    assert end.counts["client"]["text"] == 1
    assert end.counts["server"] == {"text": 0, "binary": 1, "ping": 0, "pong": 0, "close": 0}
    writer.event("client", "text", data="late")
    assert len(path.read_bytes().splitlines()) == 5


def test_messages_pings_and_pongs_are_written_and_counted(tmp_path: Path) -> None:
    writer = TranscriptWriter(tmp_path / "a.jsonl", HEADER)
    writer.message("client", "text", "hé")
    writer.message("server", "binary", b"\x00\xff")
    writer.message("client", "ping", b"p")
    writer.message("server", "pong", b"")
    writer.close()
    writer.message("client", "text", "after the end")
    records = checked_transcript(tmp_path / "a.jsonl")
    fields = [(r.from_, r.type, r.fields["data"]) for r in records[1:-1]]  # type: ignore[union-attr]
    assert fields == [
        ("client", "text", "hé"),
        ("server", "binary", b"\x00\xff"),
        ("client", "ping", b"p"),
        ("server", "pong", b""),
    ]
    end = records[-1]
    assert isinstance(end, End)
    assert end.counts["client"] == {"text": 1, "binary": 0, "ping": 1, "pong": 0, "close": 0}
    assert end.counts["server"] == {"text": 0, "binary": 1, "ping": 0, "pong": 1, "close": 0}


def test_elapsed_never_goes_backwards(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = TranscriptWriter(tmp_path / "a.jsonl", HEADER, clock=clock)
    clock.now += 1.0
    assert writer.elapsed() == 1.0
    clock.now -= 0.5
    assert writer.elapsed() == 1.0
    writer.close()


def test_writer_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("keep")
    with pytest.raises(TranscriptIOError, match=f"cannot create {path}: the name exists already"):
        TranscriptWriter(path, HEADER)
    assert path.read_text() == "keep"


@pytest.mark.parametrize("dangling", [True, False])
def test_writer_never_follows_a_symlink(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "target"
    if not dangling:
        target.write_text("keep")
    link = tmp_path / "a.jsonl"
    link.symlink_to(target)
    with pytest.raises(TranscriptIOError, match=f"cannot create {link}"):
        TranscriptWriter(link, HEADER)
    assert target.exists() is not dangling
    if not dangling:
        assert target.read_text() == "keep"


def test_names_are_unique_and_safe(tmp_path: Path) -> None:
    started = datetime(2026, 11, 25, 16, 0, 0, 123456, tzinfo=UTC)
    assert (
        transcript_name("chat/../x y", started, 3) == "20261125T160000.123456Z-chat_.._x_y-3.jsonl"
    )
    assert transcript_name("..", started, 1).endswith("-connection-1.jsonl")
    folder = tmp_path / "new" / "rec"
    writers = [TranscriptWriter.create_in(folder, "127.0.0.1", HEADER) for _ in range(5)]
    for writer in writers:
        writer.close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert len({w.path for w in writers}) == 5
    for writer in writers:
        checked_transcript(writer.path)


def test_an_existing_name_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transcript_io, "_sequence", iter([7, 7, 8]))
    first = TranscriptWriter.create_in(tmp_path, "h", HEADER)
    second = TranscriptWriter.create_in(tmp_path, "h", HEADER)
    assert first.path.name.endswith("-h-7.jsonl")
    assert second.path.name.endswith("-h-8.jsonl")
    first.close()
    second.close()


def test_no_free_name_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transcript_io, "_sequence", iter([1] * 1001))
    TranscriptWriter.create_in(tmp_path, "h", HEADER).close()
    with pytest.raises(CannotRun, match="cannot find a free transcript name"):
        TranscriptWriter.create_in(tmp_path, "h", HEADER)


def test_unusable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TranscriptIOError, match="cannot create the transcript folder"):
        TranscriptWriter.create_in(blocker / "rec", "h", HEADER)


def test_checkpoints_every_n_records_and_every_interval(tmp_path: Path, fsyncs: list[int]) -> None:
    clock = FakeClock()
    writer = TranscriptWriter(tmp_path / "a.jsonl", HEADER, clock=clock, sync_every=3)
    fsyncs.clear()
    for _ in range(7):
        writer.event("client", "text", data="x")
    assert len(fsyncs) == 2
    clock.now += 1.5
    writer.event("client", "text", data="x")
    assert len(fsyncs) == 3
    writer.close()
    assert len(fsyncs) == 4


def test_background_checkpoints_run_off_the_calling_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    started = threading.Event()
    release = threading.Event()
    real = os.fsync

    def slow_fsync(fd: int) -> None:
        threads.append(threading.get_ident())
        started.set()
        release.wait(5)
        real(fd)

    writer = TranscriptWriter(tmp_path / "a.jsonl", HEADER, sync_every=2, background_sync=True)
    monkeypatch.setattr("wscenario.engine.transcript_io.os.fsync", slow_fsync)
    writer.event("client", "text", data="x")
    writer.event("client", "text", data="x")  # a checkpoint starts, and does not finish yet
    assert started.wait(5)
    for _ in range(4):  # two more are due: one is queued, and it covers the other
        writer.event("client", "text", data="x")
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()
    release.set()
    for _ in range(500):  # the queued checkpoint runs with no further record or close
        if len(threads) == 2:
            break
        time.sleep(0.01)
    assert len(threads) == 2
    writer.close()  # waits for both, then syncs the end
    assert len(threads) == 3
    assert threads[1] == threads[0] != threads[2] == threading.get_ident()
    assert len(checked_transcript(tmp_path / "a.jsonl")) == 8


def test_a_failing_background_checkpoint_ends_the_transcript_as_io_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = TranscriptWriter(tmp_path / "a.jsonl", HEADER, sync_every=1, background_sync=True)

    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr("wscenario.engine.transcript_io.os.fsync", fsync)
    writer.event("client", "text", data="kept")
    writer.close()
    assert writer.io_error is not None
    assert "input/output error" in str(writer.io_error)
    end = checked_transcript(tmp_path / "a.jsonl")[-1]
    assert isinstance(end, End)
    assert end.status == "io-error"


def test_the_folder_is_synced_after_creating(tmp_path: Path, fsyncs: list[int]) -> None:
    TranscriptWriter(tmp_path / "a.jsonl", HEADER).close()
    assert len(fsyncs) == 2  # the folder, then the file on close


def failing_writes(
    monkeypatch: pytest.MonkeyPatch, path: Path, error: int, partial: int = 0
) -> None:
    """``os.write`` on ``path``'s descriptor writes ``partial`` bytes once, then fails."""
    real = os.write
    state = {"partial": partial}

    def write(fd: int, data: bytes | memoryview) -> int:
        if os.path.realpath(f"/proc/self/fd/{fd}") != str(path):
            return real(fd, data)
        if state["partial"]:
            count, state["partial"] = state["partial"], 0
            return real(fd, bytes(data[:count]))
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr("wscenario.engine.transcript_io.os.write", write)


def test_a_full_disk_stops_one_transcript_and_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = TranscriptWriter(tmp_path / "full.jsonl", HEADER)
    other = TranscriptWriter(tmp_path / "other.jsonl", HEADER)
    full.event("client", "text", data="kept")
    failing_writes(monkeypatch, tmp_path / "full.jsonl", errno.ENOSPC)
    full.event("client", "text", data="lost")
    other.event("client", "text", data="fine")
    assert full.io_error is not None
    assert str(full.io_error) == (
        f"cannot write the transcript {tmp_path / 'full.jsonl'}: no space left on device"
    )
    assert full.io_error.exit_code == 3
    full.event("client", "text", data="after")
    full.sync()
    full.close()
    other.close()
    records = checked_transcript(tmp_path / "full.jsonl", complete=False)
    assert [r.fields["data"] for r in records[1:]] == ["kept"]  # type: ignore[union-attr]
    assert len(checked_transcript(tmp_path / "other.jsonl")) == 3


def test_after_a_clean_write_error_the_end_record_says_io_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.jsonl"
    writer = TranscriptWriter(path, HEADER)
    real = os.write
    failures = iter([True])

    def write_once_failing(fd: int, data: bytes | memoryview) -> int:
        if next(failures, False):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(fd, data)

    monkeypatch.setattr("wscenario.engine.transcript_io.os.write", write_once_failing)
    writer.event("server", "text", data="lost")
    assert writer.io_error is not None
    writer.close()
    end = checked_transcript(path)[-1]
    assert isinstance(end, End)
    assert end.status == "io-error"


def test_a_short_write_is_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.jsonl"
    writer = TranscriptWriter(path, HEADER)
    real = os.write
    monkeypatch.setattr(
        "wscenario.engine.transcript_io.os.write", lambda fd, data: real(fd, bytes(data[:5]))
    )
    writer.event("client", "text", data="a longer message")
    writer.close()
    assert writer.io_error is None
    assert len(checked_transcript(path)) == 3


def test_a_torn_write_leaves_a_readable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.jsonl"
    writer = TranscriptWriter(path, HEADER)
    writer.event("client", "text", data="kept")
    failing_writes(monkeypatch, path, errno.EIO, partial=10)
    writer.event("client", "text", data="torn")
    writer.close()
    transcript = open_transcript(path)
    records = list(transcript)
    assert len(records) == 2
    assert transcript.warnings == [
        "line 3: the last line is torn and was skipped",
        "the transcript is incomplete: it has no end record",
    ]


def test_failing_fsync_is_an_io_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = TranscriptWriter(tmp_path / "a.jsonl", HEADER)

    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr("wscenario.engine.transcript_io.os.fsync", fsync)
    writer.sync()
    assert writer.io_error is not None
    assert "input/output error" in str(writer.io_error)
    writer.close()


def test_a_failing_close_is_an_io_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = TranscriptWriter(tmp_path / "a.jsonl", HEADER)
    real = os.close

    def close(fd: int) -> None:
        real(fd)
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr("wscenario.engine.transcript_io.os.close", close)
    writer.close()
    assert writer.io_error is not None
    assert "input/output error" in str(writer.io_error)


def test_a_header_that_cannot_be_written_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.jsonl"
    failing_writes(monkeypatch, path, errno.ENOSPC)
    with pytest.raises(TranscriptIOError, match="no space left on device"):
        TranscriptWriter(path, HEADER)


def test_the_folder_sync_is_best_effort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(fd: int) -> None:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    monkeypatch.setattr("wscenario.engine.transcript_io.os.fsync", fsync)
    transcript_io._sync_folder(tmp_path)
    transcript_io._sync_folder(tmp_path / "missing")
    assert os.listdir(tmp_path) == []


CRASHING_WRITER = """
import sys
import threading
from pathlib import Path
from wscenario.core.transcript import Header
from wscenario.engine.transcript_io import TranscriptWriter

header = Header("wscenario 0.1.0", "ws://127.0.0.1:1/", "client", "2026-11-25T16:00:00+00:00")
writer = TranscriptWriter(Path(sys.argv[1]), header, sync_every=10)
n = 0
while True:
    n += 1
    writer.event("client", "text", data=f"message {n}")
    if n % 10 == 0:
        print(n, flush=True)
"""


def test_a_killed_writer_leaves_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "crash.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    checkpoint = 0
    try:
        for line in process.stdout:
            checkpoint = int(line)
            if checkpoint >= 500:
                break
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    transcript = open_transcript(path)
    records = list(transcript)
    assert not transcript.complete
    messages = [r.fields["data"] for r in records[1:]]  # type: ignore[union-attr]
    assert len(messages) >= checkpoint
    assert messages == [f"message {n}" for n in range(1, len(messages) + 1)]


# -------------------------------------------------------------------------------- reading


def test_valid_fixtures_read_and_match_the_schema() -> None:
    for path in sorted((FIXTURES / "valid").glob("*.jsonl")):
        complete = path.name != "torn_last_line.jsonl"
        if complete:
            checked_transcript(path)
        else:
            assert len(list(open_transcript(path))) == 4


@pytest.mark.parametrize(
    ("name", "line", "schema_catches"),
    [
        ("unknown_version", 1, True),
        ("wrong_types", 4, True),
        ("invalid_base64", 4, True),
        ("negative_delay", 2, True),
        ("huge_delay", 4, True),
        ("unknown_type", 4, True),
        ("time_goes_backwards", 4, False),
    ],
)
def test_hostile_fixtures_fail_at_their_line(name: str, line: int, schema_catches: bool) -> None:
    path = FIXTURES / "hostile" / f"{name}.jsonl"
    with pytest.raises(ScenarioLoadError) as info:
        list(open_transcript(path))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.position.line == line
    assert diagnostic.position.path == str(path)
    bad_line = path.read_bytes().splitlines()[line - 1]
    assert bool(schema_errors(bad_line)) is schema_catches


def test_an_enormous_line_is_refused_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as out:
        out.write((FIXTURES / "valid" / "chat.jsonl").read_bytes().splitlines(keepends=True)[0])
        out.write(b'{"t":1,"from":"client","type":"text","data":"')
        chunk = b"x" * (1 << 20)
        for _ in range(24):
            out.write(chunk)
        out.write(b'"}\n')
    with pytest.raises(ScenarioLoadError, match=r"huge\.jsonl:2:1: error: line longer than"):
        list(open_transcript(path))


def test_a_transcript_can_be_read_twice() -> None:
    transcript = open_transcript(FIXTURES / "valid" / "chat.jsonl")
    first = list(transcript)
    assert list(transcript) == first
    assert transcript.complete
    assert len(first) == 8


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    with pytest.raises(ScenarioLoadError, match="empty transcript"):
        list(open_transcript(path))


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ScenarioLoadError, match="not a regular file"):
        list(open_transcript(fifo))
    with pytest.raises(ScenarioLoadError, match="not a regular file"):
        list(open_transcript(tmp_path))
    with pytest.raises(ScenarioLoadError, match="file not found"):
        list(open_transcript(tmp_path / "missing.jsonl"))


def test_unreadable_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = FIXTURES / "valid" / "chat.jsonl"

    def read(fd: int, size: int) -> bytes:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr("wscenario.engine.transcript_io.os.read", read)
    with pytest.raises(ScenarioLoadError, match="input/output error"):
        list(open_transcript(path))


def test_a_socket_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        with pytest.raises(ScenarioLoadError, match="not a regular file"):
            list(open_transcript(path))


def test_other_creation_errors_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: object, flags: int, mode: int = 0o777) -> int:
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr("wscenario.engine.transcript_io.os.open", refuse)
    with pytest.raises(TranscriptIOError, match=r"cannot create .*: permission denied"):
        TranscriptWriter.create_in(tmp_path, "h", HEADER)
    with pytest.raises(ScenarioLoadError, match="permission denied"):
        list(open_transcript(tmp_path / "a.jsonl"))


def test_reading_streams_records(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    writer = TranscriptWriter(path, HEADER)
    for n in range(3000):
        writer.event("client", "text", data=json.dumps({"n": n}) * 50)
    writer.close()
    iterator: Iterator[object] = iter(open_transcript(path))
    assert next(iterator) == HEADER
    assert len(list(iterator)) == 3001
