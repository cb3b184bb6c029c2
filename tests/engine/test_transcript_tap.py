"""Recording live connections against real peers: one transcript per connection."""

from __future__ import annotations

import ssl
from pathlib import Path

import anyio
import pytest
import trustme
from websockets.asyncio.client import connect as websockets_connect
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

from tests.engine.ws_peers import (
    LIMITS,
    accept_chat,
    echo,
    engine_server,
    open_client,
    raw_server,
    read_head,
    serve_echo,
    upgrade_response,
    websockets_server,
)
from tests.transcript_checks import checked_transcript
from wscenario.core.redaction_policy import RedactionPolicy, RedactionRule
from wscenario.core.transcript import End, Header, Record, TranscriptEvent
from wscenario.core.wire import (
    CloseReceived,
    ConnectionLost,
    ConnectRequest,
    DataFrame,
    PongReceived,
    SendClose,
    SendMessage,
    SendPing,
    TlsPolicy,
)
from wscenario.engine.errors import HandshakeError
from wscenario.engine.transcript_tap import Recording, recording, recording_active
from wscenario.engine.websocket import connect

pytestmark = pytest.mark.anyio


def paths(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jsonl"))


def transcripts(folder: Path) -> list[list[Record]]:
    return [checked_transcript(path) for path in paths(folder)]


def events(records: list[Record]) -> list[tuple[str, str, dict[str, object]]]:
    return [(r.from_, r.type, dict(r.fields)) for r in records if isinstance(r, TranscriptEvent)]


async def test_client_messages_are_recorded_byte_for_byte(tmp_path: Path) -> None:
    record = Recording(tmp_path)
    text = "ünïcødé ✓ " * 1000
    blob = bytes(range(256)) * 300
    async with websockets_server(echo) as port:
        with recording(record, "echo scenario"):
            assert recording_active()
            connection = await open_client(port, path="/chat?token=s3cret&room=1")
        assert not recording_active()
        await connection.send_fragmented(text, 7)
        await connection.send(SendMessage(blob))
        await connection.send(SendPing(b"hi"))
        received: list[str | bytes] = []
        pieces: list[str | bytes] = []
        while len(received) < 2:
            event = await connection.receive()
            if isinstance(event, DataFrame):
                pieces.append(event.data)
                if event.final:
                    received.append(pieces[0][:0].join(pieces))  # type: ignore[arg-type]
                    pieces = []
        await connection.aclose()
    assert received == [text, blob]
    (only,) = transcripts(tmp_path)
    header = only[0]
    assert isinstance(header, Header)
    assert header.side == "client"
    assert header.url == record.redactor.url(f"ws://127.0.0.1:{port}/chat?token=s3cret&room=1")
    (path,) = paths(tmp_path)
    assert "s3cret" not in path.read_text()
    got = events(only)
    assert got[0][:2] == ("client", "request")
    assert got[0][2]["target"] == record.redactor.target("/chat?token=s3cret&room=1")
    assert got[1][:2] == ("server", "response")
    assert got[1][2]["status"] == 101
    traffic = [e for e in got[2:] if e[1] != "pong"]
    assert traffic == [
        ("client", "text", {"data": text}),
        ("client", "binary", {"data": blob}),
        ("client", "ping", {"data": b"hi"}),
        ("server", "text", {"data": text}),
        ("server", "binary", {"data": blob}),
        ("client", "close", {"code": 1000, "reason": ""}),
        ("server", "close", {"code": 1000, "reason": ""}),
    ]
    assert ("server", "pong", {"data": b"hi"}) in got
    end = only[-1]
    assert isinstance(end, End)
    assert end.status == "complete"
    assert end.counts["client"] == {"text": 1, "binary": 1, "ping": 1, "pong": 0, "close": 1}
    assert "echo_scenario" in path.name


async def test_each_connection_gets_its_own_transcript(tmp_path: Path) -> None:
    record = Recording(tmp_path)
    async with websockets_server(echo) as port:
        with recording(record, "many"):
            for n in range(3):
                connection = await open_client(port)
                await connection.send(SendMessage(f"n{n}"))
                await connection.aclose()
    found = transcripts(tmp_path)
    assert len(found) == 3
    texts = sorted(
        str(e[2]["data"]) for t in found for e in events(t) if e[:2] == ("client", "text")
    )
    assert texts == ["n0", "n1", "n2"]


async def test_each_transcript_names_its_own_secrets(tmp_path: Path) -> None:
    record = Recording(tmp_path, RedactionPolicy(rules=(RedactionRule.for_pointer("/token"),)))
    async with websockets_server(echo) as port:
        with recording(record, "names"):
            for n in range(2):
                connection = await open_client(port, path=f"/?token=query-{n}")
                await connection.send(SendMessage(f'{{"token":"body-{n}"}}'))
                await connection.aclose()
    shown = record.redactor
    found = transcripts(tmp_path)  # in the order the connections started
    assert len(found) == 2
    for n, records in enumerate(found):
        header = records[0]
        assert isinstance(header, Header)
        assert header.url == shown.url(f"ws://127.0.0.1:{port}/?token=query-{n}")
        got = events(records)
        assert got[0][2]["target"] == f"/?token={shown.placeholder('token', f'query-{n}')}"
        body = shown.placeholder("token", f"body-{n}").replace(":token:", ":token-2:")
        assert ("client", "text", {"data": f'{{"token":"{body}"}}'}) in got


async def test_a_refused_handshake_is_recorded(tmp_path: Path) -> None:
    def refuse(ws: ServerConnection, request: object) -> Response:
        return Response(403, "Forbidden", Headers([("Set-Cookie", "sid=1")]), b"go away")

    record = Recording(tmp_path)
    async with websockets_server(echo, process_request=refuse) as port:
        with recording(record, "refused"), pytest.raises(HandshakeError):
            await connect(ConnectRequest(f"ws://127.0.0.1:{port}/"), LIMITS)
    (only,) = transcripts(tmp_path)
    got = events(only)
    assert got[0][:2] == ("server", "response")
    assert got[0][2]["status"] == 403
    assert got[0][2]["body"] == b"go away"
    assert dict(got[0][2]["headers"])["Set-Cookie"].startswith("<redacted:set-cookie:")  # type: ignore[call-overload]
    assert got[1][:2] == ("client", "error")
    assert isinstance(only[-1], End)
    assert only[-1].status == "aborted"


async def test_an_unreachable_server_is_recorded(tmp_path: Path) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    with recording(Recording(tmp_path), "down"), pytest.raises(HandshakeError):
        await connect(ConnectRequest(f"ws://127.0.0.1:{port}/"), LIMITS)
    (only,) = transcripts(tmp_path)
    assert [e[1] for e in events(only)] == ["error"]


async def test_a_cancelled_connect_ends_as_interrupted(tmp_path: Path) -> None:
    async def silent(stream: anyio.abc.SocketStream) -> None:
        await anyio.sleep(10)

    async with raw_server(silent) as port:
        with recording(Recording(tmp_path), "slow"), anyio.move_on_after(0.1):
            await connect(ConnectRequest(f"ws://127.0.0.1:{port}/"), LIMITS)
    (only,) = transcripts(tmp_path)
    assert isinstance(only[-1], End)
    assert only[-1].status == "interrupted"


async def test_a_protocol_violation_is_recorded(tmp_path: Path) -> None:
    async def hostile(stream: anyio.abc.SocketStream) -> None:
        request = await read_head(stream)
        await stream.send(upgrade_response(request) + b"\x81\x02ok" + b"\x83\x00")
        await anyio.sleep(1)

    async with raw_server(hostile) as port:
        with recording(Recording(tmp_path), "hostile"):
            connection = await open_client(port)
        first = await connection.receive()
        assert isinstance(first, DataFrame)
        lost = await connection.receive()
        assert isinstance(lost, ConnectionLost)
    (only,) = transcripts(tmp_path)
    got = events(only)[2:]
    assert got[0] == ("server", "text", {"data": "ok"})
    assert got[1][:2] == ("server", "disconnect")
    assert got[1][2]["kind"] == "protocol"
    assert ("client", "close", {"code": 1002, "reason": got[2][2].get("reason")}) == got[2]
    assert isinstance(only[-1], End)
    assert only[-1].status == "aborted"


async def test_server_refusals_and_acceptances(tmp_path: Path) -> None:
    record = Recording(tmp_path)
    with recording(record, "fake-server"):
        async with engine_server(accept_chat, serve_echo) as (port, _):
            async with websockets_connect(
                f"ws://127.0.0.1:{port}/chat", compression=None
            ) as client:
                await client.send("hello")
                assert await client.recv() == "hello"
            with pytest.raises(Exception, match="404"):
                async with websockets_connect(f"ws://127.0.0.1:{port}/nope", compression=None):
                    pass  # pragma: no cover - refused
            await anyio.sleep(0.05)
    found = transcripts(tmp_path)
    assert len(found) == 2
    by_status = {}
    for transcript in found:
        header = transcript[0]
        assert isinstance(header, Header)
        assert header.side == "server"
        response = next(e for e in events(transcript) if e[1] == "response")
        by_status[response[2]["status"]] = transcript
    accepted = events(by_status[101])
    assert accepted[0][2]["target"] == "/chat"
    assert ("client", "text", {"data": "hello"}) in accepted
    assert ("server", "text", {"data": "hello"}) in accepted
    assert isinstance(by_status[101][-1], End)
    refused = events(by_status[404])
    assert refused[1][2]["body"] == b"no such path"
    assert by_status[404][-1].status == "aborted"  # type: ignore[union-attr]


async def test_dropping_the_connection_is_recorded(tmp_path: Path) -> None:
    async with websockets_server(echo) as port:
        with recording(Recording(tmp_path), "drop"):
            connection = await open_client(port)
        await connection.abort(rst=True)
    (only,) = transcripts(tmp_path)
    assert events(only)[-1] == (
        "client",
        "disconnect",
        {"kind": "reset", "message": "connection dropped by the client"},
    )
    assert only[-1].status == "aborted"  # type: ignore[union-attr]


async def test_recording_fails_open(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    warnings: list[str] = []
    record = Recording(blocker / "rec", warn=warnings.append)
    async with websockets_server(echo) as port:
        with recording(record, "x"):
            connection = await open_client(port)
        await connection.send(SendMessage("still works"))
        event = await connection.receive()
        assert event == DataFrame("text", "still works", True, True)
        await connection.aclose()
    assert len(record.errors) == 1
    assert warnings == [str(record.errors[0])]
    assert "cannot create the transcript folder" in warnings[0]


async def test_write_errors_are_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[str] = []
    record = Recording(tmp_path, warn=warnings.append)
    async with websockets_server(echo) as port:
        with recording(record, "full"):
            connection = await open_client(port)

        def full(fd: int, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr("wscenario.engine.transcript_io.os.write", full)
        await connection.send(SendMessage("a"))
        await connection.send(SendMessage("b"))
        await connection.receive()
        await connection.aclose()
    assert len(warnings) == 1
    assert "no space left on device" in warnings[0]
    monkeypatch.undo()
    (only,) = [checked_transcript(p, complete=False) for p in paths(tmp_path)]
    assert [e[1] for e in events(only)] == ["request", "response"]


async def test_close_all_ends_open_transcripts_as_interrupted(tmp_path: Path) -> None:
    record = Recording(tmp_path)
    async with websockets_server(echo) as port:
        with recording(record, "open"):
            connection = await open_client(port)
        record.close_all()
        assert not record.taps
        await connection.aclose()
    (only,) = transcripts(tmp_path)
    assert only[-1].status == "interrupted"  # type: ignore[union-attr]


async def test_no_recording_writes_nothing(tmp_path: Path) -> None:
    async with websockets_server(echo) as port:
        with recording(None, "none"):
            assert not recording_active()
            connection = await open_client(port)
        await connection.send(SendClose(1000))
        assert isinstance(await connection.receive(), CloseReceived | PongReceived)
        await connection.aclose()
    assert paths(tmp_path) == []


def test_redaction_policy_is_in_the_header(tmp_path: Path) -> None:
    policy = RedactionPolicy(enabled=False)
    record = Recording(tmp_path, policy)
    tap = record.start(side="client", label="h", url="ws://u:p@h/?token=1")
    assert tap is not None
    tap.close()
    (only,) = transcripts(tmp_path)
    header = only[0]
    assert isinstance(header, Header)
    assert header.redaction == policy
    assert header.url == "ws://u:p@h/?token=1"


async def test_an_interrupted_recording_marks_connections_closed_since(tmp_path: Path) -> None:
    record = Recording(tmp_path)
    async with websockets_server(echo) as port:
        with recording(record, "stopped"):
            connection = await open_client(port)
        record.interrupted = True
        await connection.aclose()
    (only,) = transcripts(tmp_path)
    assert [e[1] for e in events(only)][-2:] == ["close", "close"]
    assert only[-1].status == "interrupted"  # type: ignore[union-attr]


@pytest.mark.parametrize(("mode", "written"), [("strict", "strict"), ("none", "insecure")])
async def test_wss_transcripts_name_the_verification_mode(
    tmp_path: Path, trustme_ca: trustme.CA, mode: str, written: str
) -> None:
    leaf = trustme_ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    cafile = tmp_path / "ca.pem"
    trustme_ca.cert_pem.write_to_path(str(cafile))
    folder = tmp_path / "rec"
    async with websockets_server(echo, ssl=context) as port:
        url = f"wss://127.0.0.1:{port}/secure"
        policy = TlsPolicy(mode=mode, cafile=str(cafile))  # type: ignore[arg-type]
        with recording(Recording(folder), "tls"):
            connection, _ = await connect(ConnectRequest(url, tls=policy), LIMITS)
        await connection.send(SendMessage("over tls"))
        assert await connection.receive() == DataFrame("text", "over tls", True, True)
        await connection.aclose()
    (only,) = transcripts(folder)
    header = only[0]
    assert isinstance(header, Header)
    assert (header.url, header.tls) == (url, written)
    assert ("server", "text", {"data": "over tls"}) in events(only)
    assert only[-1].status == "complete"  # type: ignore[union-attr]
