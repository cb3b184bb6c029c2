"""``wscenario run`` end to end, against a real ``websockets`` echo server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

import wscenario.commands.run
from tests.engine.ws_peers import upgrade_response
from tests.report.sample import could_not_run, failed, passed
from wscenario.cli import main
from wscenario.commands.run import exit_code
from wscenario.core.model import Scenario
from wscenario.report.results import ScenarioResult


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
        yield f"ws://127.0.0.1:{port}/"
        server.shutdown()
        thread.join(5)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def scenario(folder: Path, name: str, steps: str, *, extra: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"wscenario: 1\nname: {name}\ntimeout: 2s\nvars: {{user: alice}}\n{extra}"
        "client:\n  url: ws://127.0.0.1:9/\nsteps:\n" + steps,
        encoding="utf-8",
    )
    return path


ECHO_STEPS = """\
  - connect: {}
  - expect: {open: {status: 101}}
  - send: "hello {{ user }}"
  - expect: {message: "hello {{ user }}"}
  - expect: dataEnd
  - close: {code: 1000, reason: bye}
  - expect: {close: {code: 1000, reason: bye}}
"""

WRONG_JSON_STEPS = """\
  - connect: {}
  - expect: {open: {status: 101}}
  - send: {json: {type: welcome, user: "{{ user }}"}}
  - expect: {message: {json: {type: welcome, user: bob}}}
  - close: {}
"""

SERVER = "wscenario: 1\nserver: {listen: '127.0.0.1:0'}\nsteps:\n  - expect: connect\n"


def test_echo_scenario_passes(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scenario(tmp_path, "echo", ECHO_STEPS)
    code = main(["run", str(path), "--url", echo_url])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"PASS send 'hello {{{{ user }}}}'  {path}:10" in out
    assert "PASSED echo" in out
    assert out.rstrip().splitlines()[-1].startswith("1 passed, 0 failed in ")
    assert "\x1b[" not in out, "no colour when stdout is not a terminal"


EXTRA_STEPS = """\
  - connect: {}
  - expect: open
  - send: hello
  - send: extra
  - expect: {message: hello}
  - sleep: 300ms
"""


def test_strict_scenario_fails_on_a_message_no_step_took(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lenient = scenario(tmp_path, "lenient", EXTRA_STEPS)
    assert main(["run", str(lenient), "--url", echo_url]) == 0, capsys.readouterr().out
    capsys.readouterr()
    path = scenario(tmp_path, "strict", EXTRA_STEPS, extra="strict: true\n")
    code = main(["run", str(path), "--url", echo_url])
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"FAIL strict: no event left over  {path}:5" in out
    assert "1 event no step took: message 'extra'" in out
    assert "received: message 'extra'" in out
    assert f"FAILED strict: failed at {path}:5 (" in out


def test_wrong_json_fails_with_a_diff(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scenario(tmp_path, "wrong", WRONG_JSON_STEPS)
    code = main(["run", str(path), "--url", echo_url])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "FAIL expect message" in out
    assert f"{path}:11" in out
    assert "diff:" in out
    assert any(line.strip().startswith("-") and "bob" in line for line in out.splitlines())
    assert any(line.strip().startswith("+") and "alice" in line for line in out.splitlines())
    assert "variables: user='alice'" in out
    assert "0 passed, 1 failed in " in out


def test_received_escape_sequences_are_printed_safely(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = """\
  - connect: {}
  - expect: open
  - send: "\\e[31mred"
  - expect: {message: plain}
"""
    path = scenario(tmp_path, "escape", steps)
    assert main(["run", str(path), "--url", echo_url]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\\x1b[31mred" in out or "\\u001b[31mred" in out or "\\e[31mred" in out


def test_var_overrides_and_reports(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good = scenario(tmp_path, "echo", ECHO_STEPS)
    bad = scenario(tmp_path, "wrong", WRONG_JSON_STEPS)
    junit = tmp_path / "out" / "junit.xml"
    junit.parent.mkdir()
    report = tmp_path / "out" / "report.json"
    argv = ["run", str(good), str(bad), "--url", echo_url, "--var", "user=bob"]
    code = main([*argv, "--junit", str(junit), "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 passed, 0 failed" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "2"
    assert suite.get("failures") == "0"
    document = json.loads(report.read_text(encoding="utf-8"))
    names = [e["name"] for e in document["scenarios"][0]["events"]]
    assert names[0] == "open"
    assert "message" in names
    assert document["scenarios"][0]["variables"]["user"] == "bob"


def test_junit_records_the_failure(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scenario(tmp_path, "wrong", WRONG_JSON_STEPS)
    junit = tmp_path / "junit.xml"
    assert main(["run", str(path), "--url", echo_url, "--junit", str(junit)]) == 1
    capsys.readouterr()
    case = ET.parse(junit).getroot().find("testsuite/testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    assert str(failure.get("message")).startswith("expect message")


def test_unwritable_junit_cannot_run(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scenario(tmp_path, "echo", ECHO_STEPS)
    target = tmp_path / "missing" / "junit.xml"
    assert main(["run", str(path), "--url", echo_url, "--junit", str(target)]) == 3
    assert "cannot write" in capsys.readouterr().err


def test_a_var_that_is_not_valid_unicode_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scenario(tmp_path, "echo", ECHO_STEPS)
    assert main(["run", str(path), "--var", "user=\udcff"]) == 2
    err = capsys.readouterr().err
    assert "--var 'user=\\udcff' is not valid UTF-8" in err
    assert "Traceback" not in err


def test_an_environment_variable_that_is_not_utf8_fails_its_step(
    tmp_path: Path,
    echo_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WSCENARIO_TEST_BAD", "a\udcffb")  # bytes b"a\xffb" in the environment
    steps = ECHO_STEPS.replace('send: "hello {{ user }}"', 'send: "{{ env.WSCENARIO_TEST_BAD }}"')
    path = scenario(tmp_path, "echo", steps)
    assert main(["run", str(path), "--url", echo_url]) == 1
    captured = capsys.readouterr()
    assert "environment variable WSCENARIO_TEST_BAD is not valid UTF-8" in captured.out
    assert "Traceback" not in captured.out + captured.err


ENV_SCENARIO = """\
wscenario: 1
timeout: 2s
vars:
  who: "{{ env.WSCENARIO_TEST_WHO }}"
  token: "{{ env.WSCENARIO_SECRET_TEST_TOKEN }}"
client:
  url: ws://127.0.0.1:9/
steps:
  - connect: {}
  - expect: {open: {status: 101}}
  - send: "{{ who }} {{ token }}"
  - expect: {message: "bob s3cret-token"}
  - close: {code: 1000}
  - expect: {close: {code: 1000}}
"""


def test_defaults_read_the_environment_and_secrets_stay_hidden(
    tmp_path: Path,
    echo_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WSCENARIO_TEST_WHO", "bob")
    monkeypatch.setenv("WSCENARIO_SECRET_TEST_TOKEN", "s3cret-token")
    path = tmp_path / "env.yaml"
    path.write_text(ENV_SCENARIO, encoding="utf-8")
    report = tmp_path / "report.json"
    code = main(["run", str(path), "--url", echo_url, "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out  # the echo server sent back what the environment gave
    document = json.loads(report.read_text(encoding="utf-8"))
    variables = document["scenarios"][0]["variables"]
    assert variables == {"who": "bob", "token": "<WSCENARIO_SECRET_TEST_TOKEN>"}
    assert "s3cret-token" not in out + report.read_text(encoding="utf-8")


def test_a_default_reading_an_unset_environment_variable_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WSCENARIO_TEST_WHO", raising=False)
    path = tmp_path / "env.yaml"
    path.write_text(ENV_SCENARIO, encoding="utf-8")
    assert main(["run", str(path), "--var", "token=given"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"{path}:4:8: error: /vars/who: environment variable 'WSCENARIO_TEST_WHO' is not set\n"
        "    hint: set it, or give --var who=...\n"
    )


BAD_URLS = [
    ("http://127.0.0.1:9/", "url must start with ws:// or wss://"),
    ("ws://127.0.0.1:99999/", "invalid url: port out of range"),
    ("ws://u:p@127.0.0.1:9/", "url must not hold user:password@"),
    ("ws://{{ host }}/", "url holds a template"),
    ("ws://127.0.0.1:9/\udcff", "url is not valid UTF-8"),
]
"""URLs a command line may not give, and what the usage error says."""


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_a_url_that_cannot_be_used_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, message: str
) -> None:
    path = scenario(tmp_path, "echo", "  - connect: {}\n")
    assert main(["run", str(path), "--url", url]) == 2
    err = capsys.readouterr().err
    assert "--url" in err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("profile", ["ohos", "raw"])
def test_unreachable_server_means_a_scenario_expecting_open_could_not_run(
    tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str], profile: str
) -> None:
    path = scenario(tmp_path, "echo", WRONG_JSON_STEPS)
    path.write_text(
        path.read_text(encoding="utf-8").replace("client:\n", f"client:\n  profile: {profile}\n"),
        encoding="utf-8",
    )
    code = main(["run", str(path), "--url", f"ws://127.0.0.1:{closed_port}/"])
    out = capsys.readouterr().out
    assert code == 3, out
    assert f"could not reach ws://127.0.0.1:{closed_port}/: connection refused" in out


def test_unreachable_server_passes_a_scenario_expecting_the_error(
    tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = "  - connect: {}\n  - expect: {error: {code: 200}}\n"
    path = scenario(tmp_path, "refused", steps)
    code = main(["run", str(path), "--url", f"ws://127.0.0.1:{closed_port}/"])
    assert code == 0, capsys.readouterr().out


def test_parallel_jobs_print_each_scenario_whole(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("one", "two", "three"):
        scenario(tmp_path, name, ECHO_STEPS)
    assert main(["run", str(tmp_path), "--url", echo_url, "--jobs", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    headers = [i for i, line in enumerate(lines) if line.endswith(".yaml") and "  " in line]
    assert len(headers) == 3
    for start in headers:
        assert lines[start + 1 : start + 8] == [
            line for line in lines[start + 1 : start + 8] if line.startswith("  PASS")
        ]


def test_server_scenario_named_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(SERVER, encoding="utf-8")
    assert main(["run", str(path)]) == 2
    assert "wscenario serve" in capsys.readouterr().err


def test_folder_mixing_sides_runs_the_clients_only(
    tmp_path: Path,
    echo_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WSCENARIO_TEST_UNSET", raising=False)
    scenario(tmp_path, "echo", ECHO_STEPS)
    reads_env = SERVER.replace("server:", "vars: {t: '{{ env.WSCENARIO_TEST_UNSET }}'}\nserver:")
    (tmp_path / "server.yaml").write_text(reads_env, encoding="utf-8")  # skipped: not read
    assert main(["run", str(tmp_path), "--url", echo_url]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 server scenario (run them with 'wscenario serve')" in out
    assert "1 passed, 0 failed" in out


def test_invalid_scenario_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("wscenario: 1\nclient: {url: ws://h/}\nsteps:\n  - sned: hi\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4:" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--var", "novalue"], "--var expects NAME=VALUE"),
        (["--timeout", "soon"], "--timeout expects a duration"),
        (["--jobs", "0"], "--jobs expects a positive number, got 0"),
    ],
)
def test_bad_options_are_usage_errors(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scenario(tmp_path, "echo", ECHO_STEPS)
    assert main(["run", str(path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_missing_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


@pytest.fixture
def silent_server() -> Iterator[tuple[str, list[int | None]]]:
    """A websockets server that reads and never answers; yields its URL and the close codes."""
    codes: list[int | None] = []

    def listen(connection: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            for _ in connection:
                pass
        codes.append(connection.close_code)

    with serve(listen, "127.0.0.1", 0, compression=None) as server:
        port = server.socket.getsockname()[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"ws://127.0.0.1:{port}/", codes
        server.shutdown()
        thread.join(5)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_cleanly(
    tmp_path: Path, silent_server: tuple[str, list[int | None]], signum: signal.Signals
) -> None:
    url, codes = silent_server
    scenario(tmp_path, "a_quick", "  - connect: {}\n  - expect: open\n")
    waits = "  - connect: {}\n  - expect: open\n  - expect: {message: never, timeout: 30s}\n"
    scenario(tmp_path, "b_waits", waits)
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    command = [sys.executable, "-m", "wscenario", "run", str(tmp_path), "--url", url]
    command += ["--junit", str(junit), "--report", str(report)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        assert run.stdout is not None
        opened = 0
        while opened < 2:
            line = run.stdout.readline()
            assert line or run.poll() is None, "the run is still waiting"
            opened += "expect open" in line
        run.send_signal(signum)
        out, err = run.communicate(timeout=10)
    assert run.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert "INTERRUPTED b_waits: 2 of 3 steps ran" in out
    assert "interrupted: 1 of 2 scenarios did not finish\n1 passed, 0 failed, 1 interrupted" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == ["a_quick", "b_waits"]
    error = cases["b_waits"].find("error")
    assert error is not None
    assert error.get("type") == "Interrupted"
    assert error.get("message") == "interrupted by Ctrl-C or SIGTERM: 2 of 3 steps ran"
    document = json.loads(report.read_text(encoding="utf-8"))
    outcomes = [(s["name"], s["outcome"], len(s["steps"])) for s in document["scenarios"]]
    assert outcomes == [("a_quick", "passed", 2), ("b_waits", "interrupted", 2)]
    assert document["summary"]["interrupted"] == 1
    assert codes == [1000, 1001]


class InterruptingServer:
    """Sends this process SIGINT once a client is connected and reads its close frame; then
    either answers it, or (``again``) sends SIGINT once more and never answers."""

    def __init__(self, *, again: bool) -> None:
        self.again = again
        self.closes: list[tuple[int, bytes]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self._listener.getsockname()[1]}/"

    def serve_one(self) -> None:
        connection, _ = self._listener.accept()
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                head += connection.recv(4096)
            connection.sendall(upgrade_response(head))
            threading.Event().wait(0.3)  # the client is waiting for a message by now
            os.kill(os.getpid(), signal.SIGINT)
            data = connection.recv(4096)  # a masked close frame, short enough for one read
            mask, payload = data[2:6], data[6 : 6 + (data[1] & 0x7F)]
            plain = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
            self.closes.append((int.from_bytes(plain[:2], "big"), plain[2:]))
            if self.again:
                os.kill(os.getpid(), signal.SIGINT)
                connection.recv(4096)  # until the client drops the connection
            else:
                connection.sendall(bytes([0x88, len(plain)]) + plain)  # then close TCP first

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        thread = threading.Thread(target=self.serve_one, daemon=True)
        thread.start()
        with self._listener:
            yield self.url
            thread.join(5)


def raw_waiting_scenarios(folder: Path) -> None:
    """Two raw-profile scenarios that wait 30s for a message, with a 30s close timeout."""
    waits = "  - connect: {}\n  - expect: open\n  - expect: {message: never, timeout: 30s}\n"
    for name in ("a_waits", "b_never_starts"):
        path = scenario(folder, name, waits, extra="limits: {closeTimeout: 30s}\n")
        path.write_text(path.read_text().replace("client:\n", "client:\n  profile: raw\n"))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("again", [False, True])
def test_ctrl_c_closes_with_1001_and_starts_nothing_more(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], again: bool
) -> None:
    """A second Ctrl-C stops at once, without waiting for the server to answer the close."""
    raw_waiting_scenarios(tmp_path)
    report = tmp_path / "report.json"
    server = InterruptingServer(again=again)
    started = time.monotonic()
    with server.running() as url:
        code = main(["run", str(tmp_path), "--url", url, "--report", str(report)])
    assert time.monotonic() - started < 10
    out = capsys.readouterr().out
    assert code == 130, out
    assert "interrupted: 2 of 2 scenarios did not finish\n0 passed, 0 failed, 2 interrupted" in out
    assert "b_never_starts" not in out  # what never started is only counted here
    scenarios = json.loads(report.read_text(encoding="utf-8"))["scenarios"]
    outcomes = [(s["name"], s["outcome"], len(s["steps"])) for s in scenarios]
    assert outcomes[1] == ("b_never_starts", "interrupted", 0)
    assert outcomes[0][:2] == ("a_waits", "interrupted")
    assert server.closes == [(1001, b"going away")]


def test_timeout_option_shortens_every_wait(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scenario(tmp_path, "waits", "  - connect: {}\n  - expect: open\n  - expect: dataEnd\n")
    assert main(["run", str(path), "--url", echo_url, "--timeout", "100ms"]) == 1
    assert "no event within 100ms" in capsys.readouterr().out


def test_folder_of_server_scenarios_only_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "server.yaml").write_text(SERVER, encoding="utf-8")
    assert main(["run", str(tmp_path)]) == 2
    assert "no client scenarios to run" in capsys.readouterr().err


def test_exit_codes() -> None:
    assert exit_code([passed()]) == 0
    assert exit_code([passed(), failed()]) == 1
    assert exit_code([failed(), could_not_run()]) == 3
    assert exit_code([passed()], interrupted=True) == 130


def test_unexpected_error_is_reported_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(scenario: Scenario, **_: object) -> ScenarioResult:
        raise RuntimeError("boom")

    monkeypatch.setattr(wscenario.commands.run, "run_client_scenario", broken)
    path = scenario(tmp_path, "echo", ECHO_STEPS)
    assert main(["run", str(path)]) == 3
    captured = capsys.readouterr()
    assert "could not run: internal error: RuntimeError: boom" in captured.out
    assert "Traceback" not in captured.out + captured.err
    with pytest.raises(ExceptionGroup) as raised:
        main(["run", str(path), "--debug"])
    assert raised.group_contains(RuntimeError, match="^boom$", depth=None)
