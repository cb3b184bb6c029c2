"""The pytest plugin: scenario files run as pytest tests against a real websockets server, and
the ``wscenario_server`` fixture's fake server talking to websockets clients in a test.

Each test runs pytest on files written to a temporary folder (``pytester``); the plugin is
loaded the way users get it, through the ``pytest11`` entry point.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection, serve

# The plugin's lazily imported modules are imported here, so that pytester's in-process runs
# (which unload what each run imported) never load libyaml's bindings a second time.
import wscenario.commands.given_url
import wscenario.commands.limit_options
import wscenario.core.scenario_loader
import wscenario.engine.client
import wscenario.pytest_server
import wscenario.report.console  # noqa: F401
from wscenario.pytest_plugin import DEFAULT_FILES, headline
from wscenario.report.results import not_run

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent


def echo(connection: ServerConnection) -> None:
    """Send every message back."""
    for message in connection:
        connection.send(message)


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    """A websockets echo server on 127.0.0.1, served from a thread: its ``ws://`` URL."""
    with serve(echo, "127.0.0.1", 0, compression=None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/echo"
        finally:
            server.shutdown()
            thread.join(timeout=5)


def client(url: str, *, expect: str = "hello", name: str = "echo it") -> str:
    """A client scenario that sends ``hello`` and expects ``expect`` back."""
    return f"""\
wscenario: 1
name: {name}
timeout: 2s
vars:
  word: hello
client:
  url: {url}
  profile: raw
steps:
  - connect: {{}}
  - expect: open
  - send: "{{{{ word }}}}"
  - expect: {{message: {expect}}}
  - close: {{code: 1000}}
  - expect: {{close: {{code: 1000}}}}
"""


SERVER = """\
wscenario: 1
name: a fake server
server:
  path: /
steps:
  - expect: connect
"""


def test_a_passing_client_scenario_is_one_passing_test(
    pytester: pytest.Pytester, echo_url: str
) -> None:
    pytester.makefile(".wscenario.yaml", echo=client(echo_url))
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*echo.wscenario.yaml::echo it PASSED*"])


def test_a_failure_is_the_scenarios_own_report_with_file_and_line(
    pytester: pytest.Pytester, echo_url: str
) -> None:
    pytester.makefile(".wscenario.yaml", echo=client(echo_url, expect="goodbye"))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ scenario: echo it _*",
            "echo.wscenario.yaml:13: expected text 'goodbye', got 'hello'",
            "echo it  *echo.wscenario.yaml",
            "*PASS send '{{ word }}'*echo.wscenario.yaml:12*",
            "*FAIL expect message 'goodbye'*echo.wscenario.yaml:13*",
            "*expected: message 'goodbye'",
            "*received: message 'hello'",
            "FAILED echo it: failed at *echo.wscenario.yaml:13, 2 steps not run*",
            "*short test summary info*",
            "FAILED echo.wscenario.yaml::echo it - echo.wscenario.yaml:13: expected*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "def runtest" not in result.stdout.str()


def test_junit_xml_names_the_scenario_and_points_at_the_failing_step(
    pytester: pytest.Pytester, echo_url: str
) -> None:
    pytester.makefile(".wscenario.yaml", good=client(echo_url, name="good one"))
    pytester.makefile(".wscenario.yaml", bad=client(echo_url, expect="nope", name="bad one"))
    result = pytester.runpytest("--junitxml=out.xml", "-o", "junit_family=xunit1")
    result.assert_outcomes(passed=1, failed=1)
    cases = ET.parse(pytester.path / "out.xml").getroot().iter("testcase")
    by_name = {case.get("name"): case for case in cases}
    assert set(by_name) == {"good one", "bad one"}
    assert by_name["good one"].find("failure") is None
    failure = by_name["bad one"].find("failure")
    assert failure is not None
    assert "expected: message 'nope'" in (failure.text or "")
    assert failure.get("message", "").startswith("bad.wscenario.yaml:13: expected text 'nope'")
    assert (by_name["bad one"].get("file"), by_name["bad one"].get("line")) == (
        "bad.wscenario.yaml",
        "12",  # 0-based, as pytest writes every line: the failing step's
    )


def test_a_server_scenario_is_skipped_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makefile(".wscenario.yaml", fake=SERVER)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*server scenario: play it with 'wscenario serve *fake*"])


def test_only_files_matching_wscenario_files_are_collected(
    pytester: pytest.Pytester, echo_url: str
) -> None:
    pytester.makefile(".yaml", plain=client(echo_url))
    pytester.makefile(".client.yaml", named=client(echo_url))
    assert pytester.runpytest().ret == pytest.ExitCode.NO_TESTS_COLLECTED
    pytester.makeini("[pytest]\nwscenario_files = *.client.yaml\n")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*named.client.yaml::echo it PASSED*"])


def test_an_invalid_file_is_a_collection_error_with_its_diagnostics(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".wscenario.yaml", broken="wscenario: 1\nname: broken\nsteps: []\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*broken.wscenario.yaml:*"])
    assert "Traceback" not in result.stdout.str()


def test_wscenario_var_sets_the_variable_in_scenarios_that_declare_it(
    pytester: pytest.Pytester, echo_url: str
) -> None:
    pytester.makefile(".wscenario.yaml", echo=client(echo_url, expect="bonjour"))
    pytester.makefile(".wscenario.yaml", fake=SERVER)  # declares no variable: left alone
    result = pytester.runpytest("--wscenario-var", "word=bonjour")
    result.assert_outcomes(passed=1, skipped=1)


def test_a_default_reads_the_environment(
    pytester: pytest.Pytester, echo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = client(echo_url, expect="bonjour").replace(
        "word: hello", "word: '{{ env.WSCENARIO_TEST_WORD }}'"
    )
    pytester.makefile(".wscenario.yaml", echo=text)
    monkeypatch.delenv("WSCENARIO_TEST_WORD", raising=False)
    unset = pytester.runpytest()
    unset.assert_outcomes(errors=1)
    unset.stdout.fnmatch_lines(
        ["*echo.wscenario.yaml:5:9: error: /vars/word: environment variable * is not set"]
    )
    monkeypatch.setenv("WSCENARIO_TEST_WORD", "bonjour")
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("var", "wrod=bonjour", "*--wscenario-var wrod: no collected scenario declares it*"),
        ("var", "word", "*--wscenario-var: --var expects NAME=VALUE, got 'word'*"),
        ("url", "http://127.0.0.1:1/", "*--wscenario-url*must start with ws:// or wss://*"),
        ("url", "ws://127.0.0.1:99999/", "*--wscenario-url*invalid url: port out of range*"),
        ("url", "ws://u:p@127.0.0.1:1/", "*--wscenario-url*must not hold user:password@*"),
        ("url", "ws://{{ host }}/", "*--wscenario-url*url holds a template*"),
        ("limit", "maxMesageSize=1", "*--wscenario-limit: *maxMesageSize=1: there is no limit*"),
        ("limit", "closeTimeout=0s", "*--wscenario-limit: *closeTimeout=0s: must be longer than 0"),
    ],
)
def test_a_wscenario_option_that_cannot_apply_is_a_usage_error(
    pytester: pytest.Pytester, echo_url: str, option: str, value: str, message: str
) -> None:
    pytester.makefile(".wscenario.yaml", echo=client(echo_url))
    result = pytester.runpytest(f"--wscenario-{option}", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_wscenario_limit_sets_a_limit_over_the_scenarios_own(
    pytester: pytest.Pytester, echo_url: str
) -> None:
    pytester.makefile(".wscenario.yaml", echo=client(echo_url))
    result = pytester.runpytest("--wscenario-limit", "maxMessageSize=4")  # 'hello' is 5 bytes
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*received: error {kind: 'protocol'*message over 4 bytes'}"])
    pytester.runpytest("--wscenario-limit", "maxMessageSize=5").assert_outcomes(passed=1)


def test_wscenario_url_points_client_scenarios_at_another_server(
    pytester: pytest.Pytester, echo_url: str
) -> None:
    pytester.makefile(".wscenario.yaml", echo=client("ws://127.0.0.1:9/nowhere"))
    result = pytester.runpytest("--wscenario-url", echo_url)
    result.assert_outcomes(passed=1)


def test_an_unreachable_server_fails_with_the_event_that_came_instead(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".wscenario.yaml", echo=client("ws://127.0.0.1:9/nowhere"))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["echo.wscenario.yaml:11: expected a 'open' event, got 'error'"])
    assert "Traceback" not in result.stdout.str()


def test_the_headline_of_a_scenario_that_could_not_run_says_why() -> None:
    result = not_run("echo it", "echo.wscenario.yaml", "client", "cannot read key.pem", 3)
    line = headline(result, "echo.wscenario.yaml")
    assert line.startswith("ERROR echo it: could not run: cannot read key.pem")


def test_loading_the_plugin_imports_no_scenario_machinery() -> None:
    code = (
        "import sys, wscenario.pytest_plugin\n"
        "heavy = {'anyio', 'yaml', 'jsonschema', 'wsproto', 'h11'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy"
        " or m.startswith('wscenario.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout.strip() == "['wscenario._version', 'wscenario.pytest_plugin']"


def test_no_file_in_this_repository_matches_the_default_globs() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    assert any(name.endswith(".yaml") for name in tracked)
    matching = [
        name for name in tracked if any(fnmatch(Path(name).name, glob) for glob in DEFAULT_FILES)
    ]
    assert matching == []


def test_a_skipped_server_scenario_reads_no_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WSCENARIO_TEST_UNSET", raising=False)
    reads_env = SERVER.replace("server:", "vars: {t: '{{ env.WSCENARIO_TEST_UNSET }}'}\nserver:")
    pytester.makefile(".wscenario.yaml", fake=reads_env)
    pytester.runpytest().assert_outcomes(skipped=1)


def test_a_wscenario_var_of_the_wrong_type_is_a_collection_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".wscenario.yaml", fake=SERVER.replace("server:", "vars: {n: 3}\nserver:"))
    result = pytester.runpytest("--wscenario-var", "n=three")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fake.wscenario.yaml: *n*three*"])
    assert "Traceback" not in result.stdout.str()


# ---------------------------------------------------------------- the wscenario_server fixture

GREETER = """\
wscenario: 1
name: greeter
timeout: 2s
vars:
  greeting: hello
server:
  listen: 127.0.0.1:8765
  path: /chat
steps:
  - expect: connect
  - expect: {messageReceive: hi}
  - send: "{{ greeting }} back"
  - expect: close
"""

CLIENTS = """\
from websockets.sync.client import connect


def talk(url, say="hi"):
    \"\"\"Send ``say`` and return the answer; close.\"\"\"
    with connect(url) as ws:
        ws.send(say)
        return ws.recv()
"""


def served(pytester: pytest.Pytester, tests: str) -> None:
    """The greeter scenario in ``ws/``, a ``clients`` module and ``tests`` as a test file."""
    (pytester.path / "ws").mkdir()
    (pytester.path / "ws" / "greeter.server.yaml").write_text(GREETER, encoding="utf-8")
    pytester.makepyfile(clients=CLIENTS, test_app=tests)


def test_a_client_that_follows_the_script_passes_against_the_fixtures_server(
    pytester: pytest.Pytester,
) -> None:
    served(
        pytester,
        """
        from clients import talk

        def test_greeting(wscenario_server, monkeypatch):
            monkeypatch.chdir("/")  # the path is the rootdir's, not the working folder's
            server = wscenario_server("ws/greeter.server.yaml", vars={"greeting": "bonjour"})
            assert server.url == f"ws://127.0.0.1:{server.port}/chat"
            assert server.port != 8765  # the scenario's listen: gives way to a free port
            assert talk(server.url) == "bonjour back"
            results = server.wait(timeout=5)
            assert [(r.side, r.outcome) for r in results] == [("server", "passed")]
            assert server.results == results
        """,
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_client_that_strays_from_the_script_fails_the_test_with_the_report(
    pytester: pytest.Pytester,
) -> None:
    served(
        pytester,
        """
        from websockets.sync.client import connect

        def test_greeting(wscenario_server):
            server = wscenario_server("ws/greeter.server.yaml")
            with connect(server.url) as ws:
                ws.send("bye")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_greeting _*",
            "ws/greeter.server.yaml:11: expected text 'hi', got 'bye'",
            "greeter #1 127.0.0.1:* *greeter.server.yaml",
            "*PASS expect connect*greeter.server.yaml:10*",
            "*FAIL expect messageReceive 'hi'*greeter.server.yaml:11*",
            "*expected: messageReceive 'hi'",
            "*received: messageReceive 'bye'",
            "FAILED greeter #1 *: failed at *greeter.server.yaml:11, 2 steps not run*",
            "*short test summary info*",
            "FAILED test_app.py::test_greeting - Failed: ws/greeter.server.yaml:11: *",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_no_connection_fails_the_test_saying_none_arrived(pytester: pytest.Pytester) -> None:
    served(
        pytester,
        """
        def test_greeting(wscenario_server):
            wscenario_server("ws/greeter.server.yaml", timeout=0.2)
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["ws/greeter.server.yaml: expected at least 1 connection to ws://*:*/chat, none arrived"]
    )


def test_connections_sets_how_many_clients_must_come(pytester: pytest.Pytester) -> None:
    served(
        pytester,
        """
        from clients import talk

        def test_two(wscenario_server):
            server = wscenario_server("ws/greeter.server.yaml", connections=2)
            assert talk(server.url) == talk(server.url) == "hello back"
            assert [r.outcome for r in server.wait()] == ["passed", "passed"]

        def test_one_of_two(wscenario_server):
            server = wscenario_server("ws/greeter.server.yaml", connections=2, timeout=0.2)
            talk(server.url)

        def test_waiting_for_two(wscenario_server):
            server = wscenario_server("ws/greeter.server.yaml", connections=2)
            talk(server.url)
            server.wait(timeout=0.2)
        """,
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*::test_two PASSED*",
            "*_ test_one_of_two _*",
            "ws/greeter.server.yaml: expected at least 2 connections to ws://*/chat, 1 arrived",
            "*_ test_waiting_for_two _*",
            "ws/greeter.server.yaml: 1 of 2 connections to ws://*/chat ended within 0.2s (0 *",
        ]
    )


def test_a_request_for_a_path_the_scenario_does_not_serve_fails_the_test(
    pytester: pytest.Pytester,
) -> None:
    served(
        pytester,
        """
        import pytest
        from websockets.exceptions import InvalidStatus
        from clients import talk

        def test_other_path(wscenario_server):
            server = wscenario_server("ws/greeter.server.yaml", connections=0)
            with pytest.raises(InvalidStatus):
                talk(server.url + "/other")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["unserved request #1 127.0.0.1:*: handshake refused with 404: unknown path"]
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GREETER.replace("- send:", "- sned:"),
            [
                "*greeter.server.yaml:12:5: error: /steps/2/sned: unknown key 'sned'",
                "    hint: did you mean 'send'?*",
            ],
        ),
        (client("ws://127.0.0.1:9/"), ["ws/greeter.server.yaml is a client scenario*"]),
    ],
    ids=["invalid", "client"],
)
def test_a_file_the_fixture_cannot_serve_fails_the_test_at_the_call(
    pytester: pytest.Pytester, text: str, message: list[str]
) -> None:
    served(
        pytester,
        """
        def test_greeting(wscenario_server):
            wscenario_server("ws/greeter.server.yaml")
            raise AssertionError("not reached")
        """,
    )
    (pytester.path / "ws" / "greeter.server.yaml").write_text(text, encoding="utf-8")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*_ test_greeting _*", *message])
    assert "not reached" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str()
    assert "During handling" not in result.stdout.str()


def test_a_var_json_cannot_hold_fails_the_test_naming_it(pytester: pytest.Pytester) -> None:
    served(
        pytester,
        """
        def test_greeting(wscenario_server):
            wscenario_server("ws/greeter.server.yaml", vars={"greeting": {1, 2}})
            raise AssertionError("not reached")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*wscenario_server(vars=...): greeting={1, 2} is not a JSON value*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_an_async_test_talks_to_the_fixtures_server_while_it_waits(
    pytester: pytest.Pytester,
) -> None:
    served(
        pytester,
        """
        import anyio
        import pytest
        from websockets.asyncio.client import connect

        @pytest.mark.anyio
        async def test_greeting(wscenario_server):
            server = wscenario_server("ws/greeter.server.yaml")
            with anyio.fail_after(5):
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(server.wait_async)  # the client runs on meanwhile
                    async with connect(server.url) as ws:
                        await ws.send("hi")
                        assert await ws.recv() == "hello back"
            assert [r.outcome for r in server.results] == ["passed"]
        """,
    )
    pytester.runpytest("-p", "anyio").assert_outcomes(passed=1)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="lists sockets in /proc/self/fd")
def test_the_fixtures_servers_leave_no_thread_or_socket_behind(
    pytester: pytest.Pytester,
) -> None:
    served(
        pytester,
        """
        import os
        import socket
        import threading

        from clients import talk
        from websockets.sync.client import connect

        def sockets():
            found = set()
            for fd in os.listdir("/proc/self/fd"):
                try:
                    link = os.readlink(f"/proc/self/fd/{fd}")
                except FileNotFoundError:  # the listing's own descriptor, closed by now
                    continue
                if link.startswith("socket:"):
                    found.add(link)
            return found

        BEFORE = set(threading.enumerate()), sockets()
        PORTS = []

        def test_client_fails(wscenario_server):
            server = wscenario_server("ws/greeter.server.yaml")
            PORTS.append(server.port)
            assert talk(server.url) == "nope"

        def test_client_left_open(wscenario_server):
            server = wscenario_server("ws/greeter.server.yaml", timeout=0.2)
            PORTS.append(server.port)
            ws = connect(server.url).__enter__()  # never closed by the test
            ws.send("hi")

        def test_no_client(wscenario_server):
            PORTS.append(wscenario_server("ws/greeter.server.yaml", timeout=0.2).port)

        def test_nothing_left():
            assert (set(threading.enumerate()), sockets()) == BEFORE
            for port in PORTS:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except ConnectionRefusedError:
                    continue
                raise AssertionError(f"port {port} still listens")
        """,
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*::test_client_fails FAILED*",
            "*::test_client_left_open PASSED*",
            "*::test_no_client FAILED*",
            "*::test_nothing_left PASSED*",
            "*_ test_client_fails _*",
            "E       AssertionError: assert 'hello back' == 'nope'",
            "*- Captured wscenario server call -*",
            "listening on ws://127.0.0.1:*",
            "*#1] PASSED greeter #1 *",
        ]
    )


def test_wscenario_options_apply_to_the_fixtures_scenarios(pytester: pytest.Pytester) -> None:
    served(
        pytester,
        """
        from clients import talk

        def test_option(wscenario_server):
            assert talk(wscenario_server("ws/greeter.server.yaml").url) == "hola back"

        def test_own_vars_win(wscenario_server):
            server = wscenario_server("ws/greeter.server.yaml", vars={"greeting": "hey"})
            assert talk(server.url) == "hey back"
        """,
    )
    result = pytester.runpytest("--wscenario-var", "greeting=hola", "--wscenario-var", "x=1")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["warning: --wscenario-var x: no scenario declared it"])
    result = pytester.runpytest("--wscenario-limit", "maxMessageSize=1", "-k", "own")  # 'hi': 2
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*message over 1 bytes*"])


def test_stopping_the_fixture_stops_every_server_even_when_one_fails(tmp_path: Path) -> None:
    from wscenario.pytest_server import ServerFixture

    stopped: list[str] = []

    class Server:
        def __init__(self, name: str, *, fails: bool) -> None:
            self.name, self.fails = name, fails

        def stop(self) -> None:
            stopped.append(self.name)
            if self.fails:
                raise RuntimeError(f"{self.name} did not stop")

    servers = ServerFixture(tmp_path, lambda path, own: pytest.fail("not loaded"))
    servers.servers = [Server("a", fails=False), Server("b", fails=True), Server("c", fails=False)]  # type: ignore[list-item]
    with pytest.raises(RuntimeError, match="b did not stop"):
        servers.stop()
    assert sorted(stopped) == ["a", "b", "c"]
