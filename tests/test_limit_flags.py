"""``--limit NAME=VALUE`` on ``run``, ``serve``, ``replay`` and ``record``, against real peers."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests import test_run_cli
from tests.engine.test_replay import end, ev, handshake, write
from tests.engine.ws_peers import echo, websockets_server
from tests.test_record_cli import line_with, recording
from tests.test_serve_cli import client, finish, serving
from wscenario.cli import main
from wscenario.commands.limit_options import parse_limits, with_limits
from wscenario.commands.scenario_selection import select_scenarios
from wscenario.core.model import Limits
from wscenario.core.scenario_loader import load_scenario
from wscenario.core.schema import scenario_schema
from wscenario.errors import ScenarioLoadError, UsageError

echo_url = test_run_cli.echo_url
"""A websockets echo server on a free loopback port (the fixture ``run``'s tests use)."""

BIG = "x" * 2048
"""A message over 1KiB and under 4KiB."""


CLIENT = f"""\
client: {{url: 'ws://127.0.0.1:9/', profile: raw}}
steps:
  - connect: {{}}
  - expect: {{open: {{status: 101}}}}
  - send: {BIG}
  - expect: {{message: {{regex: "^x{{2048}}$"}}}}
  - close: {{code: 1000}}
  - expect: close
"""
"""A raw-profile client that sends ``BIG`` and expects it back."""

SERVER = """\
server: {path: /up}
steps:
  - expect: connect
  - expect: {messageReceive: {regex: "^x+$"}}
  - send: got it
  - expect: close
"""
"""A fake server that expects a message of x's from its client and answers ``got it``."""


def scenario_file(folder: Path, body: str, *, limits: str = "") -> Path:
    """A scenario named ``big`` with ``body`` (its side and steps) and ``limits`` (YAML)."""
    path = folder / "big.yaml"
    path.write_text(f"wscenario: 1\nname: big\ntimeout: 2s\n{limits}{body}", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- run


@pytest.mark.parametrize(
    ("limits", "flags", "exit_code"),
    [
        ("", [], 0),
        ("", ["--limit", "maxMessageSize=1KiB"], 1),
        ("limits: {maxMessageSize: 1KiB}\n", [], 1),
        ("limits: {maxMessageSize: 1KiB}\n", ["--limit", "maxMessageSize=4KiB"], 0),
    ],
)
def test_run_limit_takes_the_place_of_the_scenarios_message_size(
    tmp_path: Path,
    echo_url: str,
    capsys: pytest.CaptureFixture[str],
    limits: str,
    flags: list[str],
    exit_code: int,
) -> None:
    path = scenario_file(tmp_path, CLIENT, limits=limits)
    code = main(["run", str(path), "--url", echo_url, "--no-color", *flags])
    out = capsys.readouterr().out
    assert code == exit_code, out
    assert ("message over 1024 bytes" in out) == (exit_code == 1), out


@pytest.mark.parametrize(("flags", "exit_code"), [([], 2), (["--limit", "maxMessageSize=4KiB"], 0)])
def test_run_limit_also_lets_a_larger_payload_file_load(
    tmp_path: Path,
    echo_url: str,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    exit_code: int,
) -> None:
    (tmp_path / "big.txt").write_text(BIG)
    body = CLIENT.replace(f"send: {BIG}", "send: {binary: {file: big.txt}}").replace(
        'regex: "^x{2048}$"', "any: binary"
    )
    path = scenario_file(tmp_path, body, limits="limits: {maxMessageSize: 1KiB}\n")
    code = main(["run", str(path), "--url", echo_url, "--no-color", *flags])
    captured = capsys.readouterr()
    assert code == exit_code, captured
    assert ("file is too large" in captured.err) == (exit_code == 2), captured


# ---------------------------------------------------------------------------- serve


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("flags", "answer", "exit_code"),
    [([], "got it", 0), (["--limit", "maxMessageSize=1KiB"], 1009, 1)],
)
async def test_serve_limit_closes_an_oversized_client_message_with_1009(
    tmp_path: Path, flags: list[str], answer: str | int, exit_code: int
) -> None:
    path = scenario_file(tmp_path, SERVER, limits="limits: {maxMessageSize: 1MiB}\n")
    async with serving(str(path), "--once", *flags) as served:
        async with client(served.url + "/up") as ws:
            await ws.send(BIG)
            try:
                got: str | bytes | int = await ws.recv()
            except ConnectionClosed as closed:
                got = closed.rcvd.code if closed.rcvd is not None else "no close frame"
        code, out, err = await finish(served)
    assert got == answer
    assert code == exit_code, out + err


# ---------------------------------------------------------------------------- replay


def test_replay_limit_applies_to_the_replayed_client(
    tmp_path: Path, echo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [*handshake(), ev(0.01, "client", "text", data=BIG),
               ev(0.02, "server", "text", data=BIG), end(0.03)]  # fmt: skip
    path = write(tmp_path / "big.jsonl", records)
    command = ["replay", str(path), "--against", echo_url, "--timing", "fast", "--no-color"]
    assert main(command) == 0, capsys.readouterr().out
    assert main([*command, "--limit", "maxMessageSize=1KiB"]) == 1
    out = capsys.readouterr().out
    assert "message over 1024 bytes" in out, out


# ---------------------------------------------------------------------------- record


@pytest.mark.anyio
async def test_record_limit_reaches_the_proxy(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    limit = ("--limit", "maxMessageSize=1KiB")
    async with (
        websockets_server(echo) as port,
        recording("--upstream", f"ws://127.0.0.1:{port}/", "--out", str(out), *limit) as proxy,
    ):
        async with connect(proxy.url + "/", proxy=None, compression=None) as ws:
            await ws.send("x" * 1024)
            assert await ws.recv() == "x" * 1024
            await ws.send("x" * 1025)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        await line_with(proxy, "transcript")
        proxy.process.send_signal(signal.SIGTERM)
        code, printed, err = await finish(proxy)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    assert code == 0, printed + err


# ---------------------------------------------------------------------------- bad flags


def command_line(tmp_path: Path, command: str) -> list[str]:
    """A command line of ``command`` that is fine but for the ``--limit`` added to it."""
    if command == "run":
        return ["run", str(scenario_file(tmp_path, CLIENT))]
    if command == "serve":
        return ["serve", str(scenario_file(tmp_path, SERVER)), "--listen", "127.0.0.1:0", "--once"]
    if command == "replay":
        transcript = write(tmp_path / "t.jsonl", [*handshake(), end(0.01)])
        return ["replay", str(transcript), "--against", "ws://127.0.0.1:9/"]
    return ["record", "--listen", "127.0.0.1:0", "--upstream", "ws://127.0.0.1:9/"]


@pytest.mark.parametrize("command", ["run", "serve", "replay", "record"])
@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("maxMesageSize=4MiB", ("--limit maxMesageSize=4MiB: there is no limit 'maxMesageSize'; "
         "did you mean 'maxMessageSize'? allowed: closeTimeout, handshakeTimeout, "
         "maxConnections, maxFragments, maxHeadSize, maxHeaders, maxMessageSize")),
        ("maxMessageSize=4MB", '--limit maxMessageSize=4MB: invalid value "4MB" (a size: '),
        ("handshakeTimeout=0s", "--limit handshakeTimeout=0s: must be longer than 0"),
        ("maxHeaders", "--limit maxHeaders needs a value: maxHeaders=VALUE"),
        ("4MiB", "--limit expects NAME=VALUE (maxMessageSize=4MiB), got '4MiB'; allowed: "),
    ],
)  # fmt: skip
def test_a_bad_limit_is_one_line_naming_the_flag_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, flag: str, message: str
) -> None:
    code = main([*command_line(tmp_path, command), "--limit", flag])
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    assert captured.err.startswith(f"wscenario: error: {message}")
    assert captured.err.count("\n") == 1, captured.err


def test_record_takes_its_connections_from_one_flag_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    both = ["--max-connections", "2", "--limit", "maxConnections=3"]
    assert main([*command_line(Path(), "record"), *both]) == 2
    assert "--max-connections and --limit maxConnections=N" in capsys.readouterr().err


# ---------------------------------------------------------------------------- as in limits:

SAMPLES = {
    "handshakeTimeout": "3s",
    "maxHeadSize": "8KiB",
    "maxHeaders": "64",
    "maxMessageSize": "4MiB",
    "maxFragments": "16",
    "closeTimeout": "1.5",
    "maxConnections": "5",
}
"""A value for every limit, none of them its default."""


def limits_file(folder: Path, limits: dict[str, str]) -> Path:
    section = "".join(f"  {name}: {value}\n" for name, value in limits.items())
    return scenario_file(folder, SERVER, limits=f"limits:\n{section}")


def test_every_limit_is_read_as_the_scenario_file_reads_it(tmp_path: Path) -> None:
    assert set(SAMPLES) == set(scenario_schema()["$defs"]["limits"]["properties"])
    from_file = load_scenario(limits_file(tmp_path, SAMPLES)).limits
    from_flags = with_limits(Limits(), parse_limits([f"{k}={v}" for k, v in SAMPLES.items()]))
    assert from_flags == from_file
    assert from_flags.max_message_size == 4 * 1024 * 1024
    assert from_flags.close_timeout == 1.5
    defaults = Limits()
    assert all(getattr(from_flags, name) != getattr(defaults, name) for name in vars(defaults))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("maxMessageSize", "4MB"),
        ("maxMessageSize", "-1"),
        ("maxHeaders", "0"),
        ("maxHeaders", "4KiB"),
        ("maxConnections", "yes"),
        ("handshakeTimeout", "0s"),
        ("closeTimeout", "3x"),
    ],
)
def test_a_value_the_file_refuses_the_flag_refuses(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ScenarioLoadError):
        load_scenario(limits_file(tmp_path, {name: value}))
    with pytest.raises(UsageError, match="^" + re.escape(f"--limit {name}={value}: ")):
        parse_limits([f"{name}={value}"])


def test_a_flag_replaces_only_the_limit_it_names_and_the_last_one_wins(tmp_path: Path) -> None:
    path = limits_file(tmp_path, {"maxHeaders": "10", "maxFragments": "20"})
    flags = parse_limits(["maxHeaders=30", "closeTimeout=2s", "maxHeaders=40"])
    (scenario,) = select_scenarios([str(path)], {}, "server", limits=flags, env={}).scenarios
    assert (scenario.limits.max_headers, scenario.limits.max_fragments) == (40, 20)
    assert scenario.limits.close_timeout == 2.0
    assert scenario.limits.max_message_size == Limits().max_message_size
