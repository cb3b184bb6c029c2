"""``wscenario convert`` end to end: convert, validate, and run against the same real server."""

from __future__ import annotations

import json
import re
import secrets
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import anyio
import pytest
import yaml
from websockets.asyncio.client import connect as connect_async
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close
from websockets.sync.client import connect

from tests import test_run_cli
from tests.engine.test_replay import HEADER, MESSAGES, echo_transcript, end, ev, handshake, write
from tests.engine.ws_peers import websockets_server
from tests.test_record_cli import line_with, recording
from tests.test_serve_cli import finish, serving
from wscenario.cli import main
from wscenario.core.schema import schema_path

echo_url = test_run_cli.echo_url
"""A websockets echo server on a free loopback port (the fixture ``run``'s tests use)."""


@pytest.fixture
def echo_port(echo_url: str) -> int:
    """The port of a websockets echo server."""
    return int(echo_url.rstrip("/").rsplit(":", 1)[1])


def recorded_against(tmp_path: Path, port: int, *, gap: float = 0.001) -> Path:
    """A transcript of the echo traffic, recorded as if against the server on ``port``."""
    path = echo_transcript(tmp_path / "echo.jsonl", gap=gap)
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace("10.255.255.1:9", f"127.0.0.1:{port}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_convert_validate_run_passes_against_the_same_server(
    tmp_path: Path, echo_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = recorded_against(tmp_path, echo_port, gap=0.06)
    scenario = tmp_path / "echo.yaml"
    assert main(["convert", str(path), "--side", "client", "-o", str(scenario)]) == 0
    assert f"wrote {scenario}" in capsys.readouterr().err
    text = scenario.read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    steps = yaml.safe_load(text)["steps"]
    assert {"sleep": "60ms"} in steps
    assert {"send": {"json": {"type": "hello", "name": "ann"}}} in steps
    assert {"expect": {"message": {"json": {"type": "hello", "name": "ann"}}}} in steps
    assert main(["validate", str(scenario)]) == 0
    capsys.readouterr()
    assert main(["run", str(scenario)]) == 0, capsys.readouterr().out


def test_convert_server_side_then_serve_answers_a_real_client(tmp_path: Path) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    scenario = tmp_path / "echo.server.yaml"
    assert main(["convert", str(path), "--side", "server", "-o", str(scenario)]) == 0
    assert main(["validate", str(scenario)]) == 0
    command = [sys.executable, "-m", "wscenario", "serve", str(scenario),
               "--listen", "127.0.0.1:0", "--once"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        base = first.split()[2]
        answers = []
        with connect(base + "/chat", compression=None) as ws:
            for message in MESSAGES:
                ws.send(message)
                answers.append(ws.recv(timeout=5))
            ws.close(4001, "bye")
        rest = process.stdout.read()
        assert process.wait(timeout=10) == 0, first + rest
    assert answers == MESSAGES


def test_loose_wildcards_volatile_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    welcome = ev(0.01, "server", "text", data='{"id":"3f0c2a9b-1111-2222-3333-444455556666"}')
    records = [*handshake(), welcome, end(0.02)]
    path = write(tmp_path / "ids.jsonl", records)
    assert main(["convert", str(path), "--side", "client"]) == 0
    strict = capsys.readouterr().out
    assert "# /id looks volatile (uuid)" in strict
    assert main(["convert", str(path), "--side", "client", "--loose"]) == 0
    loose = yaml.safe_load(capsys.readouterr().out)
    assert loose["steps"][-1] == {
        "expect": {"message": {"json": {"id": {"$regex": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-"
                                                 "[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"}}}}
    }  # fmt: skip


def test_an_existing_file_is_kept_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    target = tmp_path / "out.yaml"
    target.write_text("mine\n")
    assert main(["convert", str(path), "--side", "client", "-o", str(target)]) == 2
    assert "exists; add --force" in capsys.readouterr().err
    assert target.read_text() == "mine\n"
    assert main(["convert", str(path), "--side", "client", "-o", str(target), "--force"]) == 0
    assert target.read_text().startswith("# yaml-language-server")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_an_unwritable_folder_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    target = tmp_path / "no" / "such" / "out.yaml"
    assert main(["convert", str(path), "--side", "client", "-o", str(target)]) == 3
    assert "cannot write" in capsys.readouterr().err


def test_a_hostile_transcript_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "bad.jsonl", [*handshake(), {"t": 0.1, "type": "text", "from": "x"}])
    assert main(["convert", str(path), "--side", "server"]) == 2
    assert f"{path}:4:1: error: a text event lacks data" in capsys.readouterr().err
    other = write(tmp_path / "v9.jsonl", [], header={**HEADER, "wscenario_transcript": 9})
    assert main(["convert", str(other), "--side", "server"]) == 2
    assert f"{other}:1:1: error:" in capsys.readouterr().err


def test_schema_line_points_at_the_schema_relative_to_the_output(tmp_path: Path) -> None:
    transcript = echo_transcript(tmp_path / "t.jsonl", gap=0.001)
    target = tmp_path / "out" / "scenario.yaml"
    target.parent.mkdir()
    assert main(["convert", str(transcript), "--side", "client", "-o", str(target)]) == 0
    first = target.read_text().splitlines()[0]
    relative = first.removeprefix("# yaml-language-server: $schema=")
    assert (target.parent / relative).resolve() == schema_path().resolve()


@pytest.mark.parametrize("side", ["client", "server"])
def test_a_transcript_with_only_a_header_converts_to_a_valid_scenario(
    tmp_path: Path, side: str
) -> None:
    transcript = write(tmp_path / "empty.jsonl", [])
    scenario = tmp_path / "empty.yaml"
    assert main(["convert", str(transcript), "--side", side, "-o", str(scenario)]) == 0
    assert "steps: []" in scenario.read_text().splitlines()
    assert main(["validate", str(scenario)]) == 0


def test_the_recorded_urls_credentials_are_left_out_with_a_remark(tmp_path: Path) -> None:
    header = {**HEADER, "url": "ws://alice:s3cret@127.0.0.1:9/chat"}
    transcript = write(tmp_path / "creds.jsonl", handshake(), header=header)
    scenario = tmp_path / "creds.yaml"
    assert main(["convert", str(transcript), "--side", "client", "-o", str(scenario)]) == 0
    text = scenario.read_text()
    assert "s3cret" not in text
    assert "alice" not in text
    assert "# the recorded url held user:password@, left out here;" in text
    assert yaml.safe_load(text)["client"]["url"] == "ws://127.0.0.1:9/chat"
    assert main(["validate", str(scenario)]) == 0


def test_text_that_is_not_valid_unicode_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lone = {"t": 0.1, "from": "client", "type": "text", "data": "a\udcffb"}
    transcript = write(tmp_path / "lone.jsonl", [*handshake(), lone])
    scenario = tmp_path / "lone.yaml"
    assert main(["convert", str(transcript), "--side", "client", "-o", str(scenario)]) == 2
    err = capsys.readouterr().err
    assert f"{transcript}:4" in err
    assert "holds text that is not valid Unicode" in err
    assert not scenario.exists()


def test_a_file_name_that_is_not_utf8_still_gives_a_valid_scenario(tmp_path: Path) -> None:
    transcript = write(tmp_path / "chat\udcff.jsonl", handshake())
    scenario = tmp_path / "chat.yaml"
    assert main(["convert", str(transcript), "--side", "client", "-o", str(scenario)]) == 0
    assert yaml.safe_load(scenario.read_text())["name"] == "chat\ufffd"
    assert main(["validate", str(scenario)]) == 0


class EndWatcher:
    """A websockets echo handler that notes how each connection ended: the client's close
    frame, or ``None`` when TCP ended without one."""

    def __init__(self) -> None:
        self.ends: list[Close | None] = []
        self._ended = anyio.Event()

    async def __call__(self, ws: ServerConnection) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass
        self.ends.append(ws.protocol.close_rcvd)
        self._ended.set()

    async def end(self, number: int) -> Close | None:
        """How connection ``number`` (from 1) ended, once it has."""
        with anyio.fail_after(5):
            while len(self.ends) < number:
                self._ended = anyio.Event()
                await self._ended.wait()
        return self.ends[number - 1]


async def wscenario(*args: str) -> tuple[int, str]:
    """Run ``wscenario ARGS`` in a process of its own (it handles signals); code and output."""
    command = [sys.executable, "-m", "wscenario", *args]
    with anyio.fail_after(30):
        done = await anyio.run_process(command, check=False, stderr=subprocess.STDOUT)
    return done.returncode, done.stdout.decode()


async def ping_then_drop(url: str) -> None:
    """A websockets client that says hello, pings, and drops TCP without a close frame."""
    async with connect_async(url, proxy=None, compression=None) as client:
        await client.send("hello")
        assert await client.recv() == "hello"
        await (await client.ping(b"beat"))
        client.transport.abort()


async def recorded_ping_then_drop(upstream: str, folder: Path) -> Path:
    """The transcript of ``ping_then_drop`` against ``upstream``, through ``wscenario record``."""
    async with recording("--upstream", upstream, "--out", str(folder)) as proxy:
        await ping_then_drop(proxy.url + "/chat")
        await line_with(proxy, "transcript")
        proxy.process.send_signal(signal.SIGTERM)
        await finish(proxy)
    (transcript,) = [Path(path) async for path in anyio.Path(folder).glob("*.jsonl")]
    return transcript


@pytest.mark.anyio
async def test_a_client_that_pinged_and_dropped_converts_and_runs_and_replays_in_full(
    tmp_path: Path,
) -> None:
    watcher = EndWatcher()
    async with websockets_server(watcher) as port:
        upstream = f"ws://127.0.0.1:{port}"
        transcript = await recorded_ping_then_drop(upstream, tmp_path / "rec")
        assert await watcher.end(1) is None
        scenario = tmp_path / "dropper.yaml"
        assert main(["convert", str(transcript), "--side", "client", "-o", str(scenario)]) == 0
        steps = yaml.safe_load(scenario.read_text())["steps"]
        assert steps[-5:] == [
            {"send": {"text": "hello"}},
            {"expect": {"message": {"text": "hello"}}},
            {"ping": {"base64": "YmVhdA=="}},
            {"expect": {"pong": {"binary": {"base64": "YmVhdA=="}}}},
            {"drop": {}},
        ]
        assert main(["validate", str(scenario)]) == 0
        code, out = await wscenario("run", str(scenario))
        assert code == 0, out
        assert await watcher.end(2) is None  # the raw client dropped as recorded
        app = tmp_path / "app.yaml"
        command = ["convert", str(transcript), "--side", "client", "--profile", "ohos"]
        assert main([*command, "-o", str(app)]) == 0
        text = app.read_text()
        assert "# left out, as a client scenario cannot do it: drop, ping; see the comments" in text
        assert "  # the client sent a ping here (payload YmVhdA== in base64); left out" in text
        assert "  # the client dropped the connection here without a close frame;" in text
        assert yaml.safe_load(text)["steps"][-2:] == [
            {"send": {"text": "hello"}},
            {"expect": {"message": {"text": "hello"}}},
        ]
        code, out = await wscenario("run", str(app))
        assert code == 0, out
        assert await watcher.end(3) == Close(1000, "CLOSE_NORMAL")  # the app closes instead
        code, out = await wscenario(
            "replay", str(transcript), "--against", upstream, "--timing", "fast"
        )
        assert code == 0, out
        assert "7 steps replayed" in out  # connect, open, send, expect, the ping, its pong, drop
        assert await watcher.end(4) is None  # dropped as recorded


@pytest.mark.anyio
async def test_the_server_side_of_it_expects_the_ping_and_the_drop_from_the_same_client(
    tmp_path: Path,
) -> None:
    async with websockets_server(EndWatcher()) as port:
        transcript = await recorded_ping_then_drop(f"ws://127.0.0.1:{port}", tmp_path / "rec")
    scenario = tmp_path / "server.yaml"
    assert main(["convert", str(transcript), "--side", "server", "-o", str(scenario)]) == 0
    steps = yaml.safe_load(scenario.read_text())["steps"]
    assert steps[-2:] == [
        {"expect": {"ping": {"binary": {"base64": "YmVhdA=="}}}},
        {"expect": {"close": {"code": 1006}}},
    ]
    async with serving(str(scenario), "--once", "--no-color") as served:
        await ping_then_drop(served.url + "/chat")
        code, out, err = await finish(served)
    assert code == 0, out + err
    assert "PASS expect close {code: 1006}" in out


@pytest.mark.anyio
async def test_a_session_the_recording_proxy_ended_converts_to_a_scenario_that_passes(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "rec"
    watcher = EndWatcher()
    async with websockets_server(watcher) as port:
        upstream = f"ws://127.0.0.1:{port}"
        async with recording("--upstream", upstream, "--out", str(folder)) as proxy:
            async with connect_async(proxy.url + "/chat", proxy=None, compression=None) as client:
                await client.send("hello")
                assert await client.recv() == "hello"
                await line_with(proxy, "opened")
                proxy.process.send_signal(signal.SIGTERM)  # the user stops recording
                with pytest.raises(ConnectionClosed) as stopped:
                    await client.recv()
                assert stopped.value.rcvd == Close(1001, "proxy shutting down")
            await finish(proxy)
        (transcript,) = [Path(path) async for path in anyio.Path(folder).glob("*.jsonl")]
        scenario = tmp_path / "stopped.yaml"
        assert main(["convert", str(transcript), "--side", "client", "-o", str(scenario)]) == 0
        text = scenario.read_text()
        assert "  # left out: the recording proxy sent this close, not the server" in text
        steps = yaml.safe_load(text)["steps"]
        closes = [step for step in steps if "close" in step]  # the upstream's answer, if recorded
        assert closes[0] == {"close": {"code": 1001, "reason": "proxy shutting down"}}
        code, out = await wscenario("run", str(scenario))
        assert code == 0, out
        assert await watcher.end(2) == Close(1001, "proxy shutting down")  # as the proxy sent it


ISSUED = "3f2b8c1e-1111-2222-3333-444455556666"


def issued_and_sent_back(path: Path, port: int) -> Path:
    """A transcript, as if recorded against ``port``: the server issued a session id, the
    client sent it back, and the server said ok."""
    records = [
        *handshake(),
        ev(0.01, "server", "text", data=f'{{"type":"welcome","session":"{ISSUED}"}}'),
        ev(0.02, "client", "text", data=f'{{"type":"ack","session":"{ISSUED}"}}'),
        ev(0.03, "server", "text", data='{"type":"ok"}'),
        ev(0.04, "client", "close", code=1000, reason=""),
        ev(0.05, "server", "close", code=1000, reason=""),
        end(0.06),
    ]
    return write(path, records, {**HEADER, "url": f"ws://127.0.0.1:{port}/chat"})


async def fresh_sessions(ws: ServerConnection) -> None:
    """A websockets server that issues a new session id to each client and wants it back."""
    session = str(uuid.uuid4())
    await ws.send(json.dumps({"type": "welcome", "session": session}))
    ack = json.loads(await ws.recv())
    await ws.send('{"type":"ok"}' if ack == {"type": "ack", "session": session} else "{}")
    await ws.wait_closed()


@pytest.mark.anyio
async def test_a_client_sends_back_the_session_a_server_issues_afresh(tmp_path: Path) -> None:
    async with websockets_server(fresh_sessions) as port:
        transcript = issued_and_sent_back(tmp_path / "session.jsonl", port)
        scenario = tmp_path / "session.yaml"
        command = ["convert", str(transcript), "--side", "client", "--loose"]
        assert main([*command, "-o", str(scenario)]) == 0
        steps = yaml.safe_load(scenario.read_text())["steps"]
        assert steps[2]["expect"]["save"] == {"session": "/session"}
        assert steps[3] == {"send": {"json": {"type": "ack", "session": "{{ session }}"}}}
        code, out = await wscenario("run", str(scenario))
        assert code == 0, out
        url = f"ws://127.0.0.1:{port}"
        code, out = await wscenario("replay", str(transcript), "--against", url, "--loose")
        assert code == 0, out


def asked_with_a_fresh_id(*args: str) -> bool:
    """Start ``wscenario ARGS`` (a server for one connection) and ask it once with a new id;
    whether the answer carries that id."""
    command = [sys.executable, "-m", "wscenario", *args]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = re.search(r"ws://[0-9.:]+", first)  # serve names no path, replay does
        assert found is not None, first
        fresh = secrets.token_hex(16)
        with connect(found[0] + "/chat", compression=None) as ws:
            ws.send(json.dumps({"type": "get", "id": fresh}, separators=(",", ":")))
            answer = json.loads(ws.recv(timeout=5))
        out = first + process.stdout.read()
        assert process.wait(timeout=10) == 0, out
    return bool(answer == {"type": "result", "id": fresh})


def test_a_server_sends_back_the_id_a_client_sends_afresh(tmp_path: Path) -> None:
    sent = "deadbeefdeadbeefdeadbeefdeadbeef"
    records = [
        *handshake(),
        ev(0.01, "client", "text", data=f'{{"type":"get","id":"{sent}"}}'),
        ev(0.02, "server", "text", data=f'{{"type":"result","id":"{sent}"}}'),
        ev(0.03, "client", "close", code=1000, reason=""),
        ev(0.04, "server", "close", code=1000, reason=""),
        end(0.05),
    ]
    transcript = write(tmp_path / "ids.jsonl", records)
    replay = ["replay", str(transcript), "--serve", "--listen", "127.0.0.1:0", "--once"]
    assert asked_with_a_fresh_id(*replay, "--loose", "--timing", "fast")
    scenario = tmp_path / "ids.server.yaml"
    command = ["convert", str(transcript), "--side", "server", "--loose", "-o", str(scenario)]
    assert main(command) == 0
    assert asked_with_a_fresh_id("serve", str(scenario), "--listen", "127.0.0.1:0", "--once")
