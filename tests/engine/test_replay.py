"""Replaying transcripts against real ``websockets`` servers, and to real ``websockets`` clients."""

from __future__ import annotations

import base64
import json
import statistics
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tests.engine.ws_peers import websockets_server
from wscenario.core.transcript import Header, empty_counts, encode_header
from wscenario.engine import replay as replay_module
from wscenario.engine.replay import (
    ReplayOptions,
    ServeReplay,
    Timing,
    check_transcript,
    read_records,
    replay_against,
    wait_until,
)
from wscenario.engine.server import open_listener
from wscenario.errors import ScenarioLoadError
from wscenario.report.results import ScenarioResult

HEADER: dict[str, Any] = json.loads(
    encode_header(
        Header("wscenario 0.1.0", "ws://10.255.255.1:9/chat", "proxy", "2026-11-25T16:00:00+00:00")
    )
)
FAST = ReplayOptions(timing=Timing(None), expect_timeout=2.0)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ev(t: float, who: str, type_: str, **fields: Any) -> dict[str, Any]:
    return {"t": t, "from": who, "type": type_, **fields}


def handshake(
    target: str = "/chat", headers: list[list[str]] | None = None
) -> list[dict[str, Any]]:
    return [
        ev(0.001, "client", "request", target=target, headers=headers or [["Host", "x"]]),
        ev(0.002, "server", "response", status=101, reason="Switching Protocols", headers=[]),
    ]


def end(t: float) -> dict[str, Any]:
    return {"t": t, "type": "end", "status": "complete", "counts": empty_counts()}


def write(path: Path, records: list[dict[str, Any]], header: dict[str, Any] = HEADER) -> Path:
    lines = [json.dumps(header)] + [json.dumps(record) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Known traffic: what an echo server answers to a client that says these things.
MESSAGES: list[str | bytes] = [
    '{"type":"hello","name":"ann"}',
    "plain text with {{ braces }} and ünïcode",
    b"\x00\xff\x10",
    "",
    '{ "spaced" : [1, 2] }',
]


def echo_transcript(
    path: Path, *, gap: float = 0.001, close: tuple[int, str] = (4001, "bye")
) -> Path:
    records = handshake("/chat?room=1")
    t = 0.002
    for message in MESSAGES:
        t += gap
        kind, data = ("text", message) if isinstance(message, str) else ("binary", b64(message))
        records += [ev(t, "client", kind, data=data), ev(t + 0.0001, "server", kind, data=data)]
    code, reason = close
    records += [
        ev(t + 0.01, "client", "close", code=code, reason=reason),
        ev(t + 0.011, "server", "close", code=code, reason=reason),
        end(t + 0.02),
    ]
    return write(path, records)


class Recorder:
    """A websockets server handler that echoes and records what it saw."""

    def __init__(self, answer: Callable[[str | bytes], str | bytes] = lambda m: m) -> None:
        self.answer = answer
        self.received: list[str | bytes] = []
        self.times: list[float] = []
        self.path = ""
        self.headers: dict[str, str] = {}
        self.close: tuple[int | None, str | None] = (None, None)

    async def __call__(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        self.path = connection.request.path
        self.headers = {k.lower(): v for k, v in connection.request.headers.raw_items()}
        try:
            async for message in connection:
                self.times.append(anyio.current_time())
                self.received.append(message)
                await connection.send(self.answer(message))
        except ConnectionClosed:
            pass
        received = connection.protocol.close_rcvd
        self.close = (received.code, received.reason) if received else (None, None)


@asynccontextmanager
async def recorder_url(recorder: Recorder) -> AsyncIterator[str]:
    async with websockets_server(recorder) as port:
        yield f"ws://127.0.0.1:{port}"


async def against(
    path: Path, url: str, options: ReplayOptions = FAST, **kw: Any
) -> tuple[ScenarioResult, int]:
    warnings: list[str] = kw.pop("warnings", [])
    return await replay_against(
        path, url, options, env=kw.pop("env", {}), warn=warnings.append, **kw
    )


# ------------------------------------------------------------------------- --against


@pytest.mark.anyio
async def test_the_client_side_replays_byte_for_byte_against_an_echo_server(tmp_path: Path) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    recorder = Recorder()
    async with recorder_url(recorder) as url:
        result, steps = await against(path, url)
    assert result.outcome == "passed", result.session.steps
    assert steps == 2 + 2 * len(MESSAGES) + 2
    assert recorder.received == MESSAGES
    assert recorder.close == (4001, "bye")
    assert recorder.path == "/chat?room=1"  # the recorded target, on the --against host


@pytest.mark.anyio
async def test_a_changed_server_fails_with_a_diff_at_the_transcript_line(tmp_path: Path) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")

    def changed(message: str | bytes) -> str | bytes:
        return message.replace("ann", "bob") if isinstance(message, str) else message

    async with recorder_url(Recorder(changed)) as url:
        result, steps = await against(path, url)
    failed = result.session.failed_step
    assert failed is not None
    assert failed.failure is not None
    assert result.outcome == "failed"
    assert str(failed.position) == f"{path}:5:1"
    assert "/name: expected 'ann', got 'bob'" in failed.failure.message
    assert any(line.startswith('-  "name": "ann"') for line in failed.failure.diff)
    assert steps == 4  # it stops at the first failure


@pytest.mark.anyio
async def test_ignored_pointers_are_not_compared(tmp_path: Path) -> None:
    records = [*handshake(), ev(0.01, "client", "text", data='{"ts":1}'),
               ev(0.02, "server", "text", data='{"ts":2}'), end(0.03)]  # fmt: skip
    path = write(tmp_path / "ts.jsonl", records)
    async with recorder_url(Recorder()) as url:
        strict, _ = await against(path, url)
        loose, _ = await against(path, url, ReplayOptions(Timing(None), ignore=("/ts",)))
    assert strict.outcome == "failed"
    assert loose.outcome == "passed"


@pytest.mark.anyio
async def test_a_value_at_an_ignored_pointer_is_not_saved_so_the_server_may_leave_it_out(
    tmp_path: Path,
) -> None:
    session = "3f2b8c1e-1111-2222-3333-444455556666"
    records = [*handshake(),
               ev(0.01, "server", "text", data=f'{{"type":"welcome","session":"{session}"}}'),
               ev(0.02, "client", "text", data=f'{{"type":"ack","session":"{session}"}}'),
               end(0.03)]  # fmt: skip
    path = write(tmp_path / "session.jsonl", records)
    acks: list[str | bytes] = []

    async def sessionless(connection: ServerConnection) -> None:
        await connection.send('{"type":"welcome"}')
        acks.append(await connection.recv())

    async with websockets_server(sessionless) as port:
        options = ReplayOptions(Timing(None), ignore=("/session",))
        result, _ = await against(path, f"ws://127.0.0.1:{port}", options)
    assert result.outcome == "passed", result.session.steps
    assert acks == [f'{{"type":"ack","session":"{session}"}}']  # as recorded


@pytest.mark.anyio
async def test_a_server_that_closes_first_is_expected_and_its_close_answered(
    tmp_path: Path,
) -> None:
    async def closer(connection: ServerConnection) -> None:
        await connection.send("ready")
        await connection.close(4000, "done")

    records = [*handshake(), ev(0.01, "server", "text", data="ready"),
               ev(0.02, "server", "close", code=4000, reason="done"),
               ev(0.03, "client", "close", code=4000, reason="done"), end(0.04)]  # fmt: skip
    path = write(tmp_path / "closer.jsonl", records)
    async with websockets_server(closer) as port:
        result, steps = await against(path, f"ws://127.0.0.1:{port}/")
    assert result.outcome == "passed"
    assert steps == 4


@pytest.mark.anyio
async def test_recorded_headers_are_sent_with_secrets_restored(tmp_path: Path) -> None:
    headers = [
        ["Host", "old:1"],
        ["Authorization", "<redacted:authorization:8d1e44c0>"],
        ["Cookie", "<redacted:cookie:aaaaaaaa>"],
        ["Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA=="],
        ["X-Trace", "t-1"],
    ]
    path = write(
        tmp_path / "h.jsonl", [*handshake("/h?token=<redacted:token:1f0c2a9b>", headers), end(0.01)]
    )
    recorder = Recorder()
    warnings: list[str] = []
    env = {"WSCENARIO_SECRET_AUTHORIZATION": "Bearer s3", "WSCENARIO_SECRET_TOKEN": "tk"}
    async with recorder_url(recorder) as url:
        result, _ = await against(path, url, env=env, warnings=warnings)
    assert result.outcome == "passed"
    assert recorder.path == "/h?token=tk"
    assert recorder.headers["authorization"] == "Bearer s3"
    assert recorder.headers["cookie"] == "<redacted:cookie:aaaaaaaa>"
    assert recorder.headers["x-trace"] == "t-1"
    assert recorder.headers["host"] != "old:1"
    assert recorder.headers["sec-websocket-key"] != "AAAAAAAAAAAAAAAAAAAAAA=="
    assert warnings == [
        "wscenario: warning: WSCENARIO_SECRET_COOKIE is not set; its redacted value is sent as is\n"
    ]


@pytest.mark.anyio
async def test_a_url_with_a_path_is_used_as_it_is(tmp_path: Path) -> None:
    path = write(tmp_path / "p.jsonl", [*handshake("/recorded"), end(0.01)])
    recorder = Recorder()
    async with recorder_url(recorder) as url:
        result, _ = await against(path, url + "/mine?x=1")
    assert result.outcome == "passed"
    assert recorder.path == "/mine?x=1"


@pytest.mark.anyio
async def test_an_unreachable_server_means_the_replay_could_not_run(tmp_path: Path) -> None:
    path = write(tmp_path / "u.jsonl", [*handshake(), end(0.01)])
    async with websockets_server(Recorder()) as port:
        pass  # the port is free again
    result, steps = await against(path, f"ws://127.0.0.1:{port}")
    assert result.outcome == "error"
    assert result.session.error == f"could not reach ws://127.0.0.1:{port}/chat: connection refused"
    assert result.session.failed_step is not None
    assert steps == 2


@pytest.mark.anyio
async def test_recorded_timing_reproduces_the_gaps(tmp_path: Path) -> None:
    path = echo_transcript(tmp_path / "slow.jsonl", gap=0.04)
    recorder = Recorder()
    async with recorder_url(recorder) as url:
        result, _ = await against(path, url, ReplayOptions(Timing(1.0)))
        assert result.outcome == "passed"
        gaps = [b - a for a, b in zip(recorder.times, recorder.times[1:], strict=False)]
        assert max(abs(gap - 0.04) for gap in gaps) < 0.015
        twice = Recorder()
    async with recorder_url(twice) as url:
        await against(path, url, ReplayOptions(Timing(2.0)))
    halved = [b - a for a, b in zip(twice.times, twice.times[1:], strict=False)]
    assert abs(statistics.mean(halved) - 0.02) < 0.008


@pytest.mark.anyio
async def test_wait_until_is_not_early() -> None:
    clock = anyio.current_time
    for delay in (0.0, 0.001, 0.01):
        deadline = clock() + delay
        await wait_until(deadline, clock)
        assert clock() >= deadline


def test_timing_deadlines() -> None:
    assert Timing(None).deadline(10.0, 1.0) is None
    assert Timing(2.0).deadline(10.0, 1.0) == 10.5


# ------------------------------------------------------------------------- --serve


async def serve_replay(path: Path, run: Callable[[str], Any], **kw: Any) -> list[ScenarioResult]:
    info = check_transcript(path, warn=lambda _: None)
    replay = ServeReplay(
        path, info, kw.pop("options", FAST), env={}, warn=lambda _: None, stop_after=1
    )
    async with anyio.create_task_group() as tasks:
        url = await tasks.start(replay.serve, await open_listener("127.0.0.1", 0), "127.0.0.1")
        await run(url)
    return replay.results


@pytest.mark.anyio
async def test_the_server_side_answers_a_websockets_client_as_recorded(tmp_path: Path) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    answers: list[str | bytes] = []
    closed: list[Any] = []

    async def client(url: str) -> None:
        assert url.endswith("/chat")
        async with connect(url, compression=None) as ws:
            for message in MESSAGES:
                await ws.send(message)
                answers.append(await ws.recv())
            await ws.close(4001, "bye")
            closed.append((ws.close_code, ws.close_reason))

    (result,) = await serve_replay(path, client)
    assert answers == MESSAGES
    assert closed == [(4001, "bye")]
    assert result.outcome == "passed", result.session.steps


@pytest.mark.anyio
async def test_a_client_that_strays_from_the_transcript_fails_its_connection(
    tmp_path: Path,
) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    closed: list[Any] = []

    async def client(url: str) -> None:
        async with connect(url, compression=None) as ws:
            await ws.send("something else")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            closed.append(ws.close_code)

    (result,) = await serve_replay(path, client)
    assert result.outcome == "failed"
    failed = result.session.failed_step
    assert failed is not None
    assert failed.position.line == 4
    assert closed == [1011]


@pytest.mark.anyio
async def test_the_server_side_selects_the_recorded_subprotocol_and_pings(tmp_path: Path) -> None:
    records = [ev(0.001, "client", "request", target="/p",
                  headers=[["Sec-WebSocket-Protocol", "chat.v1, chat.v2"]]),
               ev(0.002, "server", "response", status=101, reason="OK",
                  headers=[["Sec-WebSocket-Protocol", "chat.v2"]]),
               ev(0.003, "server", "ping", data=b64(b"hi")),
               ev(0.004, "client", "pong", data=b64(b"hi")),
               ev(0.005, "server", "close", code=1000, reason=""),
               ev(0.006, "client", "close", code=1000, reason=""), end(0.01)]  # fmt: skip
    path = write(tmp_path / "proto.jsonl", records)
    seen: list[Any] = []

    async def client(url: str) -> None:
        async with connect(url, subprotocols=["chat.v1", "chat.v2"], compression=None) as ws:  # type: ignore[list-item]
            seen.append(ws.subprotocol)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            seen.append(ws.close_code)

    (result,) = await serve_replay(path, client)
    assert seen == ["chat.v2", 1000]
    assert result.outcome == "passed", result.session.steps


# ------------------------------------------------------------------------- hostile transcripts


def bad_line(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioLoadError) as caught:
        check_transcript(path, warn=lambda _: None)
    return str(caught.value)


GOOD_START = json.dumps(HEADER) + "\n" + "\n".join(json.dumps(r) for r in handshake()) + "\n"


END_LINE = json.dumps(end(1)) + "\n"


def mid(line: str) -> str:
    """A transcript with ``line`` as its fourth line, followed by an end record."""
    return GOOD_START + line + "\n" + END_LINE


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (mid('{"t": 0.1, "from": "client", "type": "text"'), ":4:1:", "not valid JSON"),
        (
            '{"wscenario_transcript": 9, "url": "ws://x/"}\n',
            ":1:1:",
            "unknown transcript version 9",
        ),
        ('{"url": "ws://x/"}\n' + END_LINE, ":1:1:", "t must be a number"),
        (mid(json.dumps(ev(0.1, "client", "text", data=5))), ":4:1:", "data must be a string"),
        (mid(json.dumps(ev(0.1, "server", "binary", data="***"))), ":4:1:", "base64"),
        (mid(json.dumps(ev(0.1, "server", "pong", data=b64(b"x"), extra=1))), ":4:1:", "extra"),
        (mid(json.dumps(ev(-1, "client", "text", data=""))), ":4:1:", "0 or more"),
        (mid(json.dumps(ev(1e300, "client", "text", data=""))), ":4:1:", "more than a year"),
        (mid(json.dumps(ev(0.0001, "client", "text", data=""))), ":4:1:", "goes backwards"),
        (mid("\xff"), ":4:1:", "not valid JSON"),
        (GOOD_START + END_LINE + END_LINE, ":5:1:", "after the end record"),
        ("", ":1:1:", "empty transcript"),
        (json.dumps(HEADER) + "\n" + END_LINE, ":1:1:", "no opening handshake"),
    ],
)
def test_hostile_transcripts_are_errors_with_their_line(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    shown = bad_line(tmp_path, text)
    assert where in shown
    assert message in shown


def test_an_enormous_line_is_refused_without_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "MAX_LINE", 1024 * 1024)
    huge = json.dumps(ev(0.1, "client", "text", data="x" * (3 * 1024 * 1024)))
    shown = bad_line(tmp_path, mid(huge))
    assert ":4:1:" in shown
    assert "line longer than 1048576 bytes" in shown


def test_invalid_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(mid("").encode().replace(b"\n\n", b'\n{"t": 0.1, "data": "\xff"}\n'))
    with pytest.raises(ScenarioLoadError, match=":4:1: error: not valid"):
        check_transcript(path, warn=lambda _: None)


def test_pointers_that_lead_nowhere_in_the_expected_sides_json_are_unused(
    tmp_path: Path,
) -> None:
    records = [*handshake(), ev(0.1, "client", "text", data='{"c": 1}'),
               ev(0.2, "server", "text", data='{"s": [1]}'), ev(0.3, "server", "text", data="x"),
               end(0.4)]  # fmt: skip
    path = write(tmp_path / "json.jsonl", records)
    pointers = ("/c", "/s/0", "/s/1")
    info = check_transcript(path, warn=lambda _: None, pointers=pointers)
    assert info.unused == {"/c", "/s/1"}  # what the server sent, by default
    info = check_transcript(path, warn=lambda _: None, pointers=pointers, expected_from="client")
    assert info.unused == {"/s/0", "/s/1"}
    assert check_transcript(path, warn=lambda _: None).unused == frozenset()


def test_a_torn_last_line_and_a_missing_end_are_warnings(tmp_path: Path) -> None:
    path = tmp_path / "torn.jsonl"
    path.write_text(GOOD_START + '{"t": 0.1, "from": "cli', encoding="utf-8")
    warnings: list[str] = []
    info = check_transcript(path, warn=warnings.append)
    assert info.path == "/chat"
    assert info.events == 2
    assert warnings == [
        f"wscenario: warning: {path}: line 4: the last line is torn and was skipped\n",
        f"wscenario: warning: {path}: the transcript is incomplete: it has no end record\n",
    ]
    path.write_text(GOOD_START, encoding="utf-8")
    warnings.clear()
    check_transcript(path, warn=warnings.append)
    assert warnings == [
        f"wscenario: warning: {path}: the transcript is incomplete: it has no end record\n"
    ]


def test_records_come_with_their_line_and_a_missing_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    path.write_text(GOOD_START + END_LINE, encoding="utf-8")
    assert [n for n, _ in read_records(path, warn=lambda _: None)] == [1, 2, 3, 4]
    with pytest.raises(ScenarioLoadError, match="cannot read"):
        list(read_records(tmp_path / "missing.jsonl", warn=lambda _: None))
