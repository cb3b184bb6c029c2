"""``--record DIR`` on ``run`` and ``serve``: one schema-valid transcript per connection."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as sync_connect
from websockets.sync.server import ServerConnection, serve

from tests.transcript_checks import checked_transcript
from wscenario.cli import main
from wscenario.core.transcript import End, Header, Record, TranscriptEvent


def echo(connection: ServerConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        for message in connection:
            connection.send(message)


@pytest.fixture
def echo_url() -> Iterator[str]:
    """A websockets echo server on a free loopback port, run in a thread."""
    with serve(echo, "127.0.0.1", 0, compression=None) as server:
        port = server.socket.getsockname()[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"ws://127.0.0.1:{port}/feed"
        server.shutdown()
        thread.join(5)


CLIENT = """\
wscenario: 1
name: {name}
timeout: 2s
client:
  url: ws://127.0.0.1:9/
  profile: {profile}
steps:
  - connect: {{options: {{header: {{Authorization: Bearer hunter2}}}}}}
  - expect: {{open: {{status: 101}}}}
  - send: {{json: {{type: hello, token: abc, text: "ünï ✓"}}}}
  - expect: {{message: {{json: {{type: hello, token: abc, text: "ünï ✓"}}}}}}
  - send: {{binary: {{hex: "00ff10"}}}}
  - expect: {{message: {{binary: {{hex: "00ff10"}}}}}}
  - close: {{code: 1000, reason: bye}}
  - expect: {{close: {{code: 1000}}}}
"""


def events(records: list[Record]) -> list[tuple[str, str, dict[str, object]]]:
    return [(r.from_, r.type, dict(r.fields)) for r in records if isinstance(r, TranscriptEvent)]


def lowered(headers: object) -> dict[str, str]:
    assert isinstance(headers, tuple)
    return {name.lower(): value for name, value in headers}


def transcripts(folder: Path) -> list[list[Record]]:
    return [checked_transcript(path) for path in sorted(folder.glob("*.jsonl"))]


@pytest.mark.parametrize("profile", ["raw", "ohos"])
def test_run_record_writes_the_messages_byte_for_byte(
    tmp_path: Path, echo_url: str, profile: str
) -> None:
    path = tmp_path / "hello.yaml"
    path.write_text(CLIENT.format(name="hello feed", profile=profile), encoding="utf-8")
    record = tmp_path / "rec"
    code = main(
        ["run", str(path), "--url", echo_url, "--record", str(record), "--redact-pointer", "/token"]
    )
    assert code == 0
    (only,) = transcripts(record)
    assert "hello_feed" in next(record.glob("*.jsonl")).name
    header = only[0]
    assert isinstance(header, Header)
    assert header.side == "client"
    assert header.url == echo_url
    assert [rule.pointer for rule in header.redaction.rules] == ["/token"]
    got = events(only)
    request_headers = lowered(got[0][2]["headers"])
    assert request_headers["authorization"].startswith("<redacted:authorization:")
    traffic = [(who, kind, fields.get("data")) for who, kind, fields in got[2:]]
    sent_json = traffic[0][2]
    assert isinstance(sent_json, str)
    assert "abc" not in sent_json
    assert "ünï ✓" in sent_json
    assert sent_json.startswith('{"type":"hello","token":"<redacted:token:')
    assert traffic == [
        ("client", "text", sent_json),
        ("server", "text", sent_json),
        ("client", "binary", b"\x00\xff\x10"),
        ("server", "binary", b"\x00\xff\x10"),
        ("client", "close", None),
        ("server", "close", None),
    ]
    assert got[-1][2] == {"code": 1000, "reason": "bye"}
    end = only[-1]
    assert isinstance(end, End)
    assert end.status == "complete"
    assert "hunter2" not in next(record.glob("*.jsonl")).read_text(encoding="utf-8")


def test_run_record_in_parallel_names_each_transcript_after_its_scenario(
    tmp_path: Path, echo_url: str
) -> None:
    for name in ("first", "second"):
        (tmp_path / f"{name}.yaml").write_text(
            CLIENT.format(name=name, profile="raw"), encoding="utf-8"
        )
    record = tmp_path / "rec"
    argv = ["run", str(tmp_path / "first.yaml"), str(tmp_path / "second.yaml")]
    assert main([*argv, "--url", echo_url, "--jobs", "2", "--record", str(record)]) == 0
    names = sorted(path.name.split("-")[1] for path in record.glob("*.jsonl"))
    assert names == ["first", "second"]
    assert len(transcripts(record)) == 2


def test_run_record_without_redaction_keeps_secrets(tmp_path: Path, echo_url: str) -> None:
    path = tmp_path / "hello.yaml"
    path.write_text(CLIENT.format(name="plain", profile="raw"), encoding="utf-8")
    record = tmp_path / "rec"
    assert main(["run", str(path), "--url", echo_url, "--record", str(record), "--no-redact"]) == 0
    (only,) = transcripts(record)
    request_headers = lowered(events(only)[0][2]["headers"])
    assert request_headers["authorization"] == "Bearer hunter2"


def test_run_record_rejects_bad_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hello.yaml"
    path.write_text(CLIENT.format(name="x", profile="raw"), encoding="utf-8")
    code = main(["run", str(path), "--record", str(tmp_path), "--redact-regex", "("])
    assert code == 2
    assert "redaction regex is invalid" in capsys.readouterr().err
    assert list(tmp_path.glob("*.jsonl")) == []


def test_run_record_into_an_unusable_folder_still_runs(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hello.yaml"
    path.write_text(CLIENT.format(name="x", profile="raw"), encoding="utf-8")
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["run", str(path), "--url", echo_url, "--record", str(blocker / "rec")])
    assert code == 3
    out = capsys.readouterr()
    assert "warning: cannot create the transcript folder" in out.err
    assert "passed" in out.out


SERVER = """\
wscenario: 1
name: greeter
timeout: 2s
server:
  listen: 127.0.0.1:0
  path: /greet
steps:
  - expect: connect
  - expect: {messageReceive: hi}
  - send: hello
  - expect: {close: {}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def connect_when_listening(url: str) -> ClientConnection:
    for _ in range(200):
        try:
            return sync_connect(url, compression=None, open_timeout=2)
        except ConnectionRefusedError:
            time.sleep(0.02)
    raise AssertionError(f"nothing listens at {url}")


def test_serve_record_writes_a_server_transcript(tmp_path: Path) -> None:
    scenario = tmp_path / "greeter.yaml"
    scenario.write_text(SERVER, encoding="utf-8")
    record = tmp_path / "rec"
    port = free_port()
    argv = ["serve", str(scenario), "--listen", f"127.0.0.1:{port}", "--once"]
    process = subprocess.Popen(
        [sys.executable, "-m", "wscenario", *argv, "--record", str(record)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"ws://127.0.0.1:{port}/greet"
    try:
        with connect_when_listening(url) as client:
            client.send("hi")
            assert client.recv(timeout=2) == "hello"
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, out + err
    (only,) = transcripts(record)
    header = only[0]
    assert isinstance(header, Header)
    assert header.side == "server"
    assert header.url == url
    assert "serve-_greet" in next(record.glob("*.jsonl")).name
    traffic = [(who, kind, fields.get("data")) for who, kind, fields in events(only)]
    assert traffic[:4] == [
        ("client", "request", None),
        ("server", "response", None),
        ("client", "text", "hi"),
        ("server", "text", "hello"),
    ]
    assert [kind for _, kind, _ in traffic[4:]] == ["close", "close"]
    end = only[-1]
    assert isinstance(end, End)
    assert end.status == "complete"


WAITER = """\
wscenario: 1
name: waiter
timeout: 5s
server:
  listen: 127.0.0.1:0
  path: /wait
steps:
  - expect: connect
  - expect: {messageReceive: hi}
  - expect: {close: {}}
"""


def test_serve_record_marks_connections_a_signal_ends_as_interrupted(tmp_path: Path) -> None:
    scenario = tmp_path / "waiter.yaml"
    scenario.write_text(WAITER, encoding="utf-8")
    record = tmp_path / "rec"
    port = free_port()
    argv = ["serve", str(scenario), "--listen", f"127.0.0.1:{port}", "--record", str(record)]
    process = subprocess.Popen(
        [sys.executable, "-m", "wscenario", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with connect_when_listening(f"ws://127.0.0.1:{port}/wait") as client:
            client.send("hi")
            time.sleep(0.2)
            process.send_signal(signal.SIGINT)
            with contextlib.suppress(ConnectionClosed):
                client.recv(timeout=5)
        process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    (only,) = [checked_transcript(path) for path in sorted(record.glob("*.jsonl"))]
    assert ("client", "text", {"data": "hi"}) in events(only)
    end = only[-1]
    assert isinstance(end, End)
    assert end.status == "interrupted"
