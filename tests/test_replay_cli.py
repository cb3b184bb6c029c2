"""``wscenario replay`` end to end: real ``websockets`` servers and clients, exit codes, reports."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import trustme
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection, serve

from tests import test_run_cli
from tests.engine.test_replay import MESSAGES, echo_transcript, end, ev, handshake, write
from tests.tls_files import tls_files, trusting
from wscenario.cli import main
from wscenario.commands.replay import parse_timing
from wscenario.core.transcript import End, Header, TranscriptEvent
from wscenario.engine.replay import Timing
from wscenario.engine.transcript_io import open_transcript
from wscenario.errors import UsageError

echo_url = test_run_cli.echo_url
"""A websockets echo server on a free loopback port (the fixture ``run``'s tests use)."""


def test_a_faithful_server_passes(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    junit = tmp_path / "junit.xml"
    report = tmp_path / "report.json"
    code = main(["replay", str(path), "--against", echo_url, "--timing", "x4",
                 "--junit", str(junit), "--report", str(report)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "14 steps replayed" in out
    assert "1 passed, 0 failed" in out
    assert ET.parse(junit).getroot().get("failures") in ("0", None)
    assert json.loads(report.read_text())


def test_a_changed_server_fails_with_the_run_diff(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [*handshake(), ev(0.01, "client", "text", data="SHOUT"),
               ev(0.02, "server", "text", data="shout"), end(0.03)]  # fmt: skip
    path = write(tmp_path / "shout.jsonl", records)
    code = main(["replay", str(path), "--against", echo_url, "--timing", "fast", "--no-color"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"FAIL expect message 'shout'  {path}:5" in out
    assert "received: message 'SHOUT'" in out
    assert f"failed at {path}:5" in out


closed_port = test_run_cli.closed_port
"""A loopback port nothing listens on."""


def test_an_unreachable_server_could_not_be_replayed_against(
    tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    code = main(["replay", str(path), "--against", f"ws://127.0.0.1:{closed_port}"])
    out = capsys.readouterr().out
    assert code == 3, out
    assert f"could not reach ws://127.0.0.1:{closed_port}/chat?room=1: connection refused" in out


def one_exchange(path: Path, sent: str, answer: str) -> Path:
    """A transcript where the client sent ``sent`` and the server answered ``answer``."""
    records = [*handshake(), ev(0.01, "client", "text", data=sent),
               ev(0.02, "server", "text", data=answer), end(0.03)]  # fmt: skip
    return write(path, records)


def test_json_messages_compare_ignoring_pointers(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = one_exchange(tmp_path / "ts.jsonl", '{"ts":1,"v":"a"}', '{"ts":2,"v":"a"}')
    assert main(["replay", str(path), "--against", echo_url, "--timing", "fast"]) == 1
    assert "--- expected" in capsys.readouterr().out
    code = main(["replay", str(path), "--against", echo_url, "--timing", "fast", "--ignore", "/ts"])
    assert code == 0


def test_json_values_compare_by_the_rules_given_with_match(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = '{"ts":1,"id":"b7c4","v":"a","n":[7]}'
    path = one_exchange(tmp_path / "rules.jsonl", sent, '{"ts":2,"id":"a1f0","v":"a","n":[8]}')
    base = ["replay", str(path), "--against", echo_url, "--timing", "fast"]
    rules = ["--match", "/ts=any:number", "--match", "/id=regex:^[0-9a-f]{4}$"]
    assert main([*base, *rules]) == 1  # /n/0 still differs
    loose = ["--match", "/n/0=any:integer", "--match", "/gone=any:true", "--match", "/n/²=any:true"]
    capsys.readouterr()
    assert main([*base, *rules, *loose, "--ignore", "/v", "--ignore", "/w"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "never applies" in line]
    says = "no JSON message the server sent in {} has a value at {}; it never applies"
    assert warned == [  # rules that lead nowhere in what the server sent are pointed out
        f"wscenario: warning: --match /gone=...: {says.format(path, '/gone')}",
        f"wscenario: warning: --match /n/²=...: {says.format(path, '/n/²')}",
        f"wscenario: warning: --ignore /w: {says.format(path, '/w')}",
    ]
    assert main([*base, *rules, "--match", "/n/0=any:string"]) == 1  # a rule can fail too
    capsys.readouterr()


def test_loose_replay_lets_volatile_looking_values_differ(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = '{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","at":"2026-11-26T00:30:00Z","v":1}'
    recorded = '{"id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","at":"2025-01-01T10:00:00Z","v":1}'
    path = one_exchange(tmp_path / "loose.jsonl", sent, recorded)
    base = ["replay", str(path), "--against", echo_url, "--timing", "fast"]
    assert main(base) == 1
    assert main([*base, "--loose"]) == 0
    capsys.readouterr()


def test_a_pointer_given_to_ignore_and_match_is_named_with_both(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = one_exchange(tmp_path / "both.jsonl", '{"v":1}', '{"v":1}')
    base = ["replay", str(path), "--against", echo_url, "--timing", "fast"]
    assert main([*base, "--ignore", "/gone", "--match", "/gone=any:true"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "never applies" in line]
    assert len(warned) == 1
    assert warned[0].startswith("wscenario: warning: --ignore /gone and --match /gone=...: ")


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--ignore", "ts"], "--ignore ts: 'ts' is not a JSON Pointer"),
        (["--ignore", "/a~2"], "--ignore /a~2: '/a~2' is not a JSON Pointer"),
        (["--ignore", ""], "'' is not a JSON Pointer"),
        (["--match", "ts=any:number"], "write POINTER=any:TYPE or POINTER=regex:PATTERN"),
        (["--match", "/ts=anything"], "write POINTER=any:TYPE or POINTER=regex:PATTERN"),
        (["--match", "/ts=any:numbr"], "unknown type 'numbr'"),
        (["--match", "/ts=regex:(a"], "--match /ts=regex:(a:"),
        (["--match", "/ts=glob:*"], "write POINTER=any:TYPE"),
        (["--match", "/a~2b=any:number"], "'/a~2b' is not a JSON Pointer"),
    ],
)
def test_a_bad_ignore_or_match_is_exit_2_in_one_line(
    flags: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    assert main(["replay", str(path), "--against", "ws://127.0.0.1:9/", *flags]) == 2
    err = capsys.readouterr().err
    assert says in err
    assert len(err.strip().splitlines()) == 1


def test_a_hostile_transcript_is_exit_2_with_its_line(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    lines = path.read_text().splitlines()
    lines[5] = lines[5][:-3]
    path.write_text("\n".join(lines) + "\n")
    assert main(["replay", str(path), "--against", echo_url]) == 2
    assert f"{path}:6:1: error: not valid JSON" in capsys.readouterr().err


def test_text_with_a_lone_surrogate_is_exit_2_with_its_line_before_connecting(
    tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    lone = ev(0.01, "client", "text", data="ok")
    path = write(tmp_path / "lone.jsonl", [*handshake(), lone, end(0.02)])
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace('"ok"', '"a\\ud800b"')
    path.write_text("\n".join(lines) + "\n")
    assert main(["replay", str(path), "--against", f"ws://127.0.0.1:{closed_port}"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4:1: error: holds text that is not valid Unicode" in err


@pytest.mark.parametrize("timing", ["slow", "x0", "x-1", "xinf", "xabc", "x"])
def test_bad_timing_is_a_usage_error(timing: str) -> None:
    with pytest.raises(UsageError, match="--timing expects"):
        parse_timing(timing)


def test_timings() -> None:
    assert parse_timing("recorded") == Timing(1.0)
    assert parse_timing("fast") == Timing(None)
    assert parse_timing("x0.5") == Timing(0.5)


def test_bad_timeout_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    assert main(["replay", str(path), "--against", "ws://127.0.0.1:9", "--timeout", "soon"]) == 2
    assert "--timeout expects a duration" in capsys.readouterr().err


@pytest.mark.parametrize(("url", "message"), test_run_cli.BAD_URLS)
def test_an_against_url_that_cannot_be_used_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, message: str
) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    assert main(["replay", str(path), "--against", url]) == 2
    err = capsys.readouterr().err
    assert "--against" in err
    assert message in err
    assert "Traceback" not in err


def test_serve_on_an_address_others_reach_needs_allow_remote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    assert main(["replay", str(path), "--serve", "--listen", "0.0.0.0:0", "--once"]) == 2
    assert "add --allow-remote" in capsys.readouterr().err


def test_a_short_timeout_fails_a_silent_server(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [*handshake(), ev(0.01, "server", "text", data="never sent"), end(0.03)]
    path = write(tmp_path / "silent.jsonl", records)
    code = main(["replay", str(path), "--against", echo_url, "--timeout", "0.2"])
    assert code == 1
    assert "no event within 200ms" in capsys.readouterr().out


def serve_to_one_client(path: Path, *options: str, **client: Any) -> tuple[str, list[Any], str]:
    """``replay PATH --serve --once OPTIONS`` with one websockets client sending ``MESSAGES``.

    Returns the URL it printed, the answers, and the rest of its output.
    """
    command = [sys.executable, "-m", "wscenario", "replay", str(path), "--serve",
               "--listen", "127.0.0.1:0", "--once", "--timing", "fast", *options]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.split(" on ", 1)[1].strip()
        answers = []
        with connect(url, compression=None, **client) as ws:
            for message in MESSAGES:
                ws.send(message)
                answers.append(ws.recv(timeout=5))
            ws.close(4001, "bye")
        rest = process.stdout.read()
        assert process.wait(timeout=10) == 0, rest
    return url, answers, rest


def test_serve_plays_the_server_side_to_a_websockets_client(tmp_path: Path) -> None:
    url, answers, rest = serve_to_one_client(echo_transcript(tmp_path / "echo.jsonl"))
    assert url.startswith("ws://127.0.0.1:")
    assert url.endswith("/chat")
    assert answers == MESSAGES
    assert "1 passed, 0 failed" in rest


MESSAGE_TYPES = ("text", "binary")


def test_serve_over_wss_with_client_certificates_records_each_connection(
    tmp_path: Path, trustme_ca: trustme.CA
) -> None:
    files = tls_files(tmp_path, trustme_ca)
    folder = tmp_path / "recs"
    options = [*files.options(client_ca=True), "--record", str(folder)]
    device = trusting(trustme_ca, identity="device@example")
    path = echo_transcript(tmp_path / "echo.jsonl")
    url, answers, rest = serve_to_one_client(path, *options, ssl=device)
    assert url.startswith("wss://127.0.0.1:")
    assert answers == MESSAGES
    assert "1 passed, 0 failed" in rest
    (transcript,) = folder.iterdir()
    header, *events, last = open_transcript(transcript)
    assert isinstance(header, Header)
    assert header.side == "server"
    assert header.url.startswith("wss://127.0.0.1:")
    assert isinstance(last, End)
    assert last.status == "complete"
    messages = [e for e in events if isinstance(e, TranscriptEvent) and e.type in MESSAGE_TYPES]
    sent = [e.fields["data"] for e in messages if e.from_ == "server"]
    assert sent == MESSAGES


def test_serve_stopped_by_a_signal_ends_its_transcripts_as_interrupted(tmp_path: Path) -> None:
    folder = tmp_path / "recs"
    path = echo_transcript(tmp_path / "echo.jsonl")
    command = [sys.executable, "-m", "wscenario", "replay", str(path), "--serve",
               "--listen", "127.0.0.1:0", "--timing", "fast", "--record", str(folder)]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        url = process.stdout.readline().split(" on ", 1)[1].strip()
        with connect(url, compression=None) as ws:
            ws.send(MESSAGES[0])
            assert ws.recv(timeout=5) == MESSAGES[0]
            process.send_signal(signal.SIGINT)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
        process.communicate(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    (transcript,) = folder.iterdir()
    *_, last = open_transcript(transcript)
    assert isinstance(last, End)
    assert last.status == "interrupted"


def test_against_records_its_own_connection(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "recs"
    path = echo_transcript(tmp_path / "echo.jsonl")
    code = main(["replay", str(path), "--against", echo_url, "--timing", "fast",
                 "--record", str(folder)])  # fmt: skip
    assert code == 0, capsys.readouterr().out
    (transcript,) = folder.iterdir()
    assert "-replay-" in transcript.name
    records = list(open_transcript(transcript))
    assert isinstance(records[0], Header)
    assert records[0].side == "client"
    assert isinstance(records[-1], End)
    assert records[-1].counts["client"]["text"] == 4
    assert records[-1].counts["server"]["binary"] == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--against", "ws://127.0.0.1:9", "--tls-cert", "c", "--tls-key", "k"], "only apply"),
        (["--serve", "--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["--serve", "--client-ca", "ca.pem"], "--client-ca needs --tls-cert"),
    ],
)
def test_tls_options_that_do_not_fit_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    assert main(["replay", str(path), *options]) == 2
    assert message in capsys.readouterr().err


def test_serve_with_an_unreadable_certificate_is_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    missing = str(tmp_path / "missing.pem")
    options = ["--serve", "--once", "--tls-cert", missing, "--tls-key", missing]
    assert main(["replay", str(path), *options]) == 3
    assert "cannot read" in capsys.readouterr().err


def test_against_and_serve_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay", "t.jsonl", "--against", "ws://h", "--serve"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_transcript_recorded_by_run_replays_against_the_same_server(
    tmp_path: Path,
    echo_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario = tmp_path / "talk.yaml"
    scenario.write_text(
        "wscenario: 1\nclient:\n"
        f"  url: {echo_url}talk?token=abc\n"
        "  profile: raw\n  options: {header: {authorization: Bearer xyz}}\n"
        "steps:\n  - connect: {}\n  - expect: {open: {status: 101}}\n"
        "  - send: {json: {a: 1}}\n  - expect: {message: {json: {a: 1}}}\n"
        "  - send: {binary: {hex: 00ff}}\n  - expect: {message: {binary: {hex: 00ff}}}\n"
        "  - close: {code: 4000, reason: done}\n  - expect: {close: {code: 4000}}\n",
        encoding="utf-8",
    )
    assert main(["run", str(scenario), "--record", str(tmp_path / "recs")]) == 0
    (transcript,) = (tmp_path / "recs").iterdir()
    assert "Bearer xyz" not in transcript.read_text()
    capsys.readouterr()
    monkeypatch.setenv("WSCENARIO_SECRET_TOKEN", "abc")
    monkeypatch.setenv("WSCENARIO_SECRET_AUTHORIZATION", "Bearer xyz")
    code = main(["replay", str(transcript), "--against", echo_url, "--timing", "fast"])
    captured = capsys.readouterr()
    assert code == 0, captured.out
    assert "8 steps replayed" in captured.out
    assert "WSCENARIO_SECRET" not in captured.err


def test_serve_on_a_port_in_use_is_exit_3(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    taken = echo_url.removeprefix("ws://").rstrip("/")
    assert main(["replay", str(path), "--serve", "--listen", taken, "--once"]) == 3
    assert f"cannot listen on {taken}: address already in use" in capsys.readouterr().err


def test_sigint_stops_the_replay_and_closes_with_1001(tmp_path: Path) -> None:
    closes: list[int | None] = []
    arrived = threading.Event()

    def silent(connection: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            for _ in connection:
                arrived.set()
        closes.append(
            connection.protocol.close_rcvd.code if connection.protocol.close_rcvd else None
        )

    records = [*handshake(), ev(0.01, "client", "text", data="hi"),
               ev(0.02, "server", "text", data="never"), end(0.03)]  # fmt: skip
    path = write(tmp_path / "silent.jsonl", records)
    later = write(tmp_path / "later.jsonl", records)
    with serve(silent, "127.0.0.1", 0, compression=None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
        command = [sys.executable, "-m", "wscenario", "replay", str(path), str(later),
                   "--against", url, "--timing", "fast", "--timeout", "30s",
                   "--report", str(report), "--junit", str(junit)]  # fmt: skip
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
            assert arrived.wait(10)
            process.send_signal(signal.SIGINT)
            out, _ = process.communicate(timeout=10)
        server.shutdown()
        thread.join(5)
    assert process.returncode == 130, out
    assert "interrupted: the replay did not finish" in out
    assert "INTERRUPTED silent.jsonl: 3 of 4 steps ran (" in out  # the 4th was cut short
    assert "PASSED" not in out
    assert "later.jsonl" not in out  # never started: only in the counts and the reports
    assert "0 passed, 0 failed, 2 interrupted" in out
    scenarios = json.loads(report.read_text())["scenarios"]
    assert [(s["name"], s["outcome"]) for s in scenarios] == [
        ("silent.jsonl", "interrupted"), ("later.jsonl", "interrupted")]  # fmt: skip
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("errors") == "2"
    assert closes == [1001]


def test_several_transcripts_are_replayed_against_one_after_another(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = echo_transcript(tmp_path / "first.jsonl")
    records = [*handshake(), ev(0.01, "client", "text", data="SHOUT"),
               ev(0.02, "server", "text", data="shout"), end(0.03)]  # fmt: skip
    second = write(tmp_path / "second.jsonl", records)
    third = echo_transcript(tmp_path / "third.jsonl")
    paths = [str(first), str(second), str(third)]
    code = main(["replay", *paths, "--against", echo_url, "--timing", "fast", "--no-color"])
    out = capsys.readouterr().out
    assert code == 1
    assert "2 passed, 1 failed" in out
    assert f"failed at {second}:5" in out


def test_several_transcripts_are_all_checked_before_any_is_played(
    tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    good = echo_transcript(tmp_path / "good.jsonl")
    bad = tmp_path / "bad.jsonl"
    lines = good.read_text().splitlines(keepends=True)
    bad.write_text("".join([lines[0], "{not json\n", *lines[1:]]))
    code = main(["replay", str(good), str(bad), "--against", f"ws://127.0.0.1:{closed_port}/"])
    assert code == 2  # not 3: nothing was contacted
    assert "bad.jsonl:" in capsys.readouterr().err


def test_serve_plays_one_transcript(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = echo_transcript(tmp_path / "echo.jsonl")
    assert main(["replay", str(path), str(path), "--serve"]) == 2
    assert "--serve plays one transcript" in capsys.readouterr().err


def test_a_secret_put_back_from_the_environment_never_shows_in_what_replay_reports(
    tmp_path: Path,
    echo_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "Bearer real-token-4711"
    monkeypatch.setenv("WSCENARIO_SECRET_AUTHORIZATION", secret)
    placeholder = "<redacted:authorization:0123abcd>"
    path = one_exchange(tmp_path / "s.jsonl", f"auth {placeholder}", f"AUTH {placeholder}")
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    code = main(["replay", str(path), "--against", echo_url, "--timing", "fast", "--no-color",
                 "--junit", str(junit), "--report", str(report)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1  # the echo sent the real token back in lower case: a mismatch
    for shown in (out, junit.read_text(), report.read_text()):
        assert "real-token-4711" not in shown
        assert "WSCENARIO_SECRET_AUTHORIZATION>" in shown.replace("&gt;", ">")
