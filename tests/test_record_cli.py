"""``wscenario record`` as a user runs it: a real process between real peers, signals, files."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
import trustme
from anyio.streams.text import TextReceiveStream
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, InvalidMessage

from tests.engine.ws_peers import echo, websockets_server
from tests.test_serve_cli import Served, finish
from tests.tls_files import tls_files, trusting
from wscenario.cli import main
from wscenario.core.transcript import End, Header, TranscriptEvent
from wscenario.engine.server import bound_port, open_listener
from wscenario.engine.transcript_io import SYNC_INTERVAL, open_transcript

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def recording(*args: str) -> AsyncIterator[Served]:
    """Start ``wscenario record --listen 127.0.0.1:0 ARGS``; wait for its first line."""
    command = [sys.executable, "-m", "wscenario", "record", "--listen", "127.0.0.1:0", *args]
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        buffered = ""
        with anyio.fail_after(10):
            async for chunk in TextReceiveStream(process.stdout):
                buffered += chunk
                if "\n" in buffered:
                    break
        first, _, rest = buffered.partition("\n")
        assert first.startswith(("recording ws://127.0.0.1:", "recording wss://127.0.0.1:")), first
        try:
            yield Served(process, first.split()[1], [first, *rest.splitlines()])
        finally:
            if process.returncode is None:
                process.terminate()


async def line_with(proxy: Served, text: str) -> str:
    """Read the proxy's output until a line holds ``text`` (kept for ``finish``)."""
    assert proxy.process.stdout is not None
    pending = ""
    with anyio.fail_after(5):
        async for chunk in TextReceiveStream(proxy.process.stdout):
            pending += chunk
            *whole, pending = pending.split("\n")
            proxy.lines.extend(whole)
            found = [line for line in whole if text in line]
            if found:
                assert not pending, pending
                return found[0]
    raise AssertionError(f"no line with {text!r}")


def transcripts(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jsonl"))


async def test_a_proxied_connection_is_recorded_with_its_secrets_redacted(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    args = ("--out", str(out), "--redact-pointer", "/password")
    async with (
        websockets_server(echo) as port,
        recording("--upstream", f"ws://127.0.0.1:{port}/api", *args) as proxy,
    ):
        headers = {"Authorization": "Bearer sekrit-header"}
        target = proxy.url + "/chat?token=sekrit-query&room=1"
        async with connect(target, additional_headers=headers, proxy=None) as client:
            await client.send('{"user":"ann","password":"sekrit-body"}')
            assert await client.recv() == '{"user":"ann","password":"sekrit-body"}'
            await client.send(b"\x01\x02")
            assert await client.recv() == b"\x01\x02"
            await (await client.ping(b"beat"))
            await client.close(4000, "done")
        await line_with(proxy, "transcript")
        proxy.process.send_signal(signal.SIGTERM)
        code, printed, err = await finish(proxy)
    assert code == 0, printed + err
    (path,) = transcripts(out)
    raw = path.read_bytes()
    assert b"sekrit" not in raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    records = list(open_transcript(path))
    header, *events, end = records
    assert isinstance(header, Header)
    assert (header.side, header.tls) == ("proxy", "none")
    assert header.url.startswith(f"ws://127.0.0.1:{port}/api/chat?token=<redacted:token:")
    assert isinstance(end, End)
    assert end.status == "complete"
    assert end.counts["client"]["text"] == end.counts["server"]["text"] == 1
    assert all(isinstance(event, TranscriptEvent) for event in events)
    kinds = [(e.from_, e.type) for e in events if isinstance(e, TranscriptEvent)]
    assert kinds == [
        ("client", "request"),
        ("server", "response"),
        ("client", "text"),
        ("server", "text"),
        ("client", "binary"),
        ("server", "binary"),
        ("client", "ping"),
        ("server", "pong"),
        ("client", "close"),
        ("server", "close"),
    ]
    request = events[0]
    assert isinstance(request, TranscriptEvent)
    assert request.fields["target"].startswith("/chat?token=<redacted:token:")
    authorization = {k.lower(): v for k, v in request.fields["headers"]}["authorization"]
    assert authorization.startswith("<redacted:authorization:")
    message = json.loads(events[2].fields["data"])  # type: ignore[union-attr]
    assert message["user"] == "ann"
    assert message["password"].startswith("<redacted:")
    assert events[6].fields == events[7].fields == {"data": b"beat"}  # type: ignore[union-attr]
    assert events[8].fields == {"code": 4000, "reason": "done"}  # type: ignore[union-attr]
    assert f"opened -> ws://127.0.0.1:{port}/api/chat?token=<redacted:token:" in printed
    assert "sekrit" not in printed
    assert f"closed 4000 'done' by the client, transcript {path}" in printed


async def test_two_secrets_under_one_name_replay_each_from_its_own_variable(
    tmp_path: Path,
) -> None:
    seen: list[tuple[str, str | bytes]] = []

    async def note(ws: ServerConnection) -> None:
        async for message in ws:
            seen.append((ws.request.path, message))  # type: ignore[union-attr]
            await ws.send(message)

    out = tmp_path / "rec"
    args = ("--out", str(out), "--redact-pointer", "/token")
    async with (
        websockets_server(note) as port,
        recording("--upstream", f"ws://127.0.0.1:{port}", *args) as proxy,
    ):
        for n in (1, 2):
            async with connect(f"{proxy.url}/feed?token=query-{n}", proxy=None) as client:
                await client.send(f'{{"token":"body-{n}"}}')
                assert await client.recv() == f'{{"token":"body-{n}"}}'
            await line_with(proxy, "transcript")
        proxy.process.send_signal(signal.SIGTERM)
        code, printed, err = await finish(proxy)
        assert code == 0, err
        first, second = transcripts(out)  # in the order the connections started
        seen.clear()
        secrets = {"WSCENARIO_SECRET_TOKEN": "query-2", "WSCENARIO_SECRET_TOKEN_2": "body-2"}
        against = ("--against", f"ws://127.0.0.1:{port}", "--timing", "fast")
        replay = [sys.executable, "-m", "wscenario", "replay", str(second), *against]
        replayed = await anyio.run_process(replay, check=False, env={**os.environ, **secrets})
    assert replayed.returncode == 0, replayed.stdout.decode() + replayed.stderr.decode()
    assert b"is not set" not in replayed.stderr
    assert seen == [("/feed?token=query-2", '{"token":"body-2"}')]
    named = []
    for path in (first, second):  # each transcript names its own secrets alike
        assert b"query-" not in path.read_bytes()
        assert b"body-" not in path.read_bytes()
        header, request, _, sent, echoed, *_ = open_transcript(path)
        assert isinstance(header, Header)
        assert isinstance(request, TranscriptEvent)
        assert isinstance(sent, TranscriptEvent)
        assert isinstance(echoed, TranscriptEvent)
        query = header.url.split("?token=")[1]
        assert request.fields["target"] == f"/feed?token={query}"
        assert query.startswith("<redacted:token:")
        body = json.loads(sent.fields["data"])["token"]
        assert body.startswith("<redacted:token-2:")
        assert echoed.fields["data"] == sent.fields["data"]
        named.append((query, body))
    assert named[0] != named[1]  # the same names, other values
    assert printed.count("opened -> ws://127.0.0.1:") == 2
    assert printed.count("/feed?token=<redacted:token:") == 2


async def test_no_redact_writes_secrets_as_they_are(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    async with (
        websockets_server(echo) as port,
        recording(
            "--upstream", f"ws://127.0.0.1:{port}", "--out", str(out), "--no-redact"
        ) as proxy,
    ):
        async with connect(proxy.url + "/?token=plain", proxy=None) as client:
            await client.send("x")
            await client.recv()
        proxy.process.send_signal(signal.SIGINT)
        code, _, _ = await finish(proxy)
    assert code == 0
    (path,) = transcripts(out)
    assert b"token=plain" in path.read_bytes()


async def test_stopping_closes_open_connections_with_1001_and_ends_their_transcripts(
    tmp_path: Path,
) -> None:
    seen: list[int | None] = []

    async def hold(ws: ServerConnection) -> None:
        await ws.send(await ws.recv())
        await ws.wait_closed()
        seen.append(ws.close_code)

    out = tmp_path / "rec"
    async with (
        websockets_server(hold) as port,
        recording("--upstream", f"ws://127.0.0.1:{port}", "--out", str(out)) as proxy,
    ):
        async with connect(proxy.url, proxy=None) as client:
            await client.send("hello")
            assert await client.recv() == "hello"
            proxy.process.send_signal(signal.SIGINT)
            with anyio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
                await client.recv()
        code, printed, err = await finish(proxy)
        assert seen == [1001]
        (path,) = transcripts(out)
        # the server's side of it replays: the proxy's 1001 to the server is played, the
        # one it sent the client is not expected from the server
        against = ("--against", f"ws://127.0.0.1:{port}", "--timing", "fast")
        replay = [sys.executable, "-m", "wscenario", "replay", str(path), *against]
        replayed = await anyio.run_process(replay, check=False)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    assert code == 0, err
    assert "interrupted, closed with 1001" in printed
    *events, end = open_transcript(path)
    assert isinstance(end, End)
    assert end.status == "interrupted"
    closes = [e.from_ for e in events if isinstance(e, TranscriptEvent) and e.type == "close"]
    assert sorted(closes) == ["client", "client", "server", "server"]  # the proxy's, the answers
    assert replayed.returncode == 0, replayed.stdout.decode()
    assert seen == [1001, 1001]


async def test_an_upstream_refusal_is_recorded_and_printed(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    listener = await open_listener("127.0.0.1", 0)
    port = bound_port(listener)
    await listener.aclose()
    async with recording("--upstream", f"ws://127.0.0.1:{port}", "--out", str(out)) as proxy:
        with pytest.raises(Exception, match="502"):
            await connect(proxy.url, proxy=None, open_timeout=5)
        await line_with(proxy, "transcript")
        proxy.process.send_signal(signal.SIGTERM)
        code, printed, _ = await finish(proxy)
    assert code == 0
    assert "aborted (upstream: connection refused)" in printed
    *_, error, end = open_transcript(transcripts(out)[0])
    assert isinstance(error, TranscriptEvent)
    assert error.type == "error"
    assert isinstance(end, End)
    assert end.status == "aborted"


def test_a_port_in_use_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["record", "--listen", f"127.0.0.1:{port}", "--upstream", "ws://x"])
    assert code == 3
    assert "address already in use" in capsys.readouterr().err


async def test_the_proxy_listens_for_wss_and_can_require_client_certificates(
    tmp_path: Path, trustme_ca: trustme.CA
) -> None:
    out = tmp_path / "rec"
    files = tls_files(tmp_path, trustme_ca)
    async with websockets_server(echo) as port:
        args = ("--upstream", f"ws://127.0.0.1:{port}", "--out", str(out))
        async with recording(*args, *files.options(client_ca=True)) as proxy:
            assert proxy.url.startswith("wss://127.0.0.1:")
            with pytest.raises((ssl.SSLError, InvalidMessage)):  # no client certificate
                # (with TLS 1.3 the refusal comes after the client's side of the handshake)
                await connect(proxy.url, ssl=trusting(trustme_ca), proxy=None)
            device = trusting(trustme_ca, identity="device@example")
            async with connect(proxy.url + "/secure", ssl=device, proxy=None) as client:
                await client.send("over wss")
                assert await client.recv() == "over wss"
            await line_with(proxy, "transcript")
            proxy.process.send_signal(signal.SIGTERM)
            code, printed, err = await finish(proxy)
    assert code == 0, printed + err
    (path,) = transcripts(out)
    texts = [
        e for e in open_transcript(path) if isinstance(e, TranscriptEvent) and e.type == "text"
    ]
    assert [(e.from_, e.fields["data"]) for e in texts] == [
        ("client", "over wss"),
        ("server", "over wss"),
    ]


LOCAL = ["--listen", "127.0.0.1:0"]
UPSTREAM = ["--upstream", "ws://127.0.0.1:9"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "0.0.0.0:0", *UPSTREAM], "--allow-remote"),
        ([*LOCAL, "--upstream", "http://example.com"], "ws:// or wss://"),
        ([*LOCAL, *UPSTREAM, "--cafile", "ca.pem"], "only apply to a wss:// upstream"),
        ([*LOCAL, "--upstream", "wss://h", "--cafile", "c", "--insecure"], "do not go together"),
        ([*LOCAL, *UPSTREAM, "--max-connections", "0"], "1 or more"),
        ([*LOCAL, *UPSTREAM, "--redact-regex", "("], "regex"),
        ([*LOCAL, *UPSTREAM, "--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        ([*LOCAL, *UPSTREAM, "--client-ca", "ca.pem"], "--client-ca needs --tls-cert"),
        (["--listen", "nowhere", *UPSTREAM], "HOST:PORT"),
    ],
)
def test_bad_usage_is_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["record", *args]) == 2
    assert message in capsys.readouterr().err


def test_an_unreadable_certificate_is_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.pem")
    tls = ["--tls-cert", missing, "--tls-key", missing]
    assert main(["record", *LOCAL, *UPSTREAM, *tls]) == 3
    assert "cannot read" in capsys.readouterr().err


def test_an_unreadable_cafile_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.pem")
    code = main(["record", "--listen", "127.0.0.1:0", "--upstream", "wss://h", "--cafile", missing])
    assert code == 3
    assert "cannot read CA file" in capsys.readouterr().err


# ---------------------------------------------------------------------------- crash safety


async def test_a_killed_recorder_leaves_a_transcript_that_holds_every_message(
    tmp_path: Path,
) -> None:
    out = tmp_path / "rec"
    sent = [f"message {number}" for number in range(2000)]
    async with (
        websockets_server(echo) as port,
        recording("--upstream", f"ws://127.0.0.1:{port}/", "--out", str(out)) as proxy,
        connect(proxy.url, proxy=None, compression=None) as client,
    ):
        for message in sent:
            await client.send(message)
        with anyio.fail_after(10):
            echoed = [await client.recv() for _ in sent]
        assert echoed == sent
        await anyio.sleep(SYNC_INTERVAL + 0.2)  # idle past the checkpoint interval, then die
        proxy.process.kill()
        assert await proxy.process.wait() == -signal.SIGKILL
        with anyio.fail_after(5), pytest.raises(ConnectionClosed) as cut:
            await client.recv()
    assert cut.value.rcvd is None  # no close frame: the recorder died
    (path,) = transcripts(out)
    transcript = open_transcript(path)
    header, *events = transcript
    assert not transcript.complete
    assert transcript.warnings == ["the transcript is incomplete: it has no end record"]
    assert isinstance(header, Header)
    assert header.side == "proxy"
    assert all(isinstance(event, TranscriptEvent) for event in events)
    texts = [e for e in events if isinstance(e, TranscriptEvent) and e.type == "text"]
    assert [e.fields["data"] for e in texts if e.from_ == "client"] == sent
    assert [e.fields["data"] for e in texts if e.from_ == "server"] == sent


async def test_a_recorder_killed_mid_flow_keeps_an_in_order_prefix_with_every_forwarded_echo(
    tmp_path: Path,
) -> None:
    out = tmp_path / "rec"
    sent = [f"message {number}" for number in range(100_000)]
    echoed: list[str | bytes] = []
    async with (
        websockets_server(echo) as port,
        recording("--upstream", f"ws://127.0.0.1:{port}/", "--out", str(out)) as proxy,
        connect(proxy.url, proxy=None, compression=None) as client,
        anyio.create_task_group() as tasks,
    ):

        async def send_all() -> None:
            with contextlib.suppress(ConnectionClosed):
                for message in sent:
                    await client.send(message)

        tasks.start_soon(send_all)
        with anyio.fail_after(10):
            while len(echoed) < 3000:  # well under way, both directions busy
                echoed.append(await client.recv())
        proxy.process.kill()  # while messages are still flowing
        assert await proxy.process.wait() == -signal.SIGKILL
        with contextlib.suppress(ConnectionClosed), anyio.fail_after(5):
            while True:
                echoed.append(await client.recv())
    assert len(echoed) < len(sent), "the recorder was killed after the session, not during it"
    (path,) = transcripts(out)
    transcript = open_transcript(path)
    events = [e for e in transcript if isinstance(e, TranscriptEvent) and e.type == "text"]
    assert not transcript.complete
    from_client = [e.fields["data"] for e in events if e.from_ == "client"]
    from_server = [e.fields["data"] for e in events if e.from_ == "server"]
    assert from_client == sent[: len(from_client)]  # in order, nothing skipped
    assert from_server == sent[: len(from_server)]
    assert len(from_server) >= len(echoed)  # an echo is written down before it is forwarded
    assert echoed == sent[: len(echoed)]
