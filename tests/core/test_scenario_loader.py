"""Loading scenario files end to end: errors, warnings, --var overrides, unsafe files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wscenario.core.scenario_loader import (
    check_scenario,
    find_scenario_files,
    inspect_scenario,
    load_scenario,
)
from wscenario.errors import ScenarioLoadError, UsageError

VALID = Path(__file__).resolve().parents[2] / "fixtures" / "valid"
HEAD = 'wscenario: 1\nclient: {url: "ws://h/"}\n'


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_files_load() -> None:
    assert load_scenario(VALID / "client_full.yaml").side == "client"
    assert check_scenario(VALID / "server_full.yaml") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wscenario: [\n", "invalid YAML"),
        ("wscenario: 1\nsteps: 1\n", "expected a list, got an integer"),
        ("wscenario: 1\nsteps: []\n", "missing 'client' or 'server'"),
        (HEAD + "steps:\n  - send: {binary: {hex: '0'}}\n", "invalid hex"),
        (HEAD + 'timeout: "5s\\n"\nsteps: []\n', "invalid value"),
        (HEAD + 'vars: {"user\\n": 1}\nsteps: []\n', "invalid name"),
    ],
)
def test_invalid_files_raise_with_every_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioLoadError) as caught:
        load_scenario(path)
    assert message in caught.value.diagnostics[0].message
    assert caught.value.exit_code == 2


def test_warnings_do_not_stop_loading(tmp_path: Path) -> None:
    path = write(tmp_path, "wscenario: 1\nserver: {listen: '0.0.0.0:1'}\nsteps: []\n")
    diagnostics, scenario = inspect_scenario(path)
    assert [d.severity for d in diagnostics] == ["warning"]
    assert scenario is not None
    assert load_scenario(path).server is not None


def test_overrides_are_typed_like_their_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "vars: {n: 1, f: 1.5, s: x, z: null, b: true}\nsteps: []\n")
    loaded = load_scenario(path, overrides={"n": "7", "f": "2", "s": "12", "z": "q", "b": "false"})
    assert loaded.vars == {"n": 7, "f": 2, "s": "12", "z": "q", "b": False}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"usr": "x"}, "declares no variable 'usr'; did you mean 'user'?"),
        ({"zzz": "x"}, "declares no variable 'zzz'"),
        ({"n": "seven"}, "--var n: expected int, got 'seven'"),
        ({"n": "true"}, "--var n: expected int, got 'true'"),
    ],
)
def test_bad_overrides(tmp_path: Path, overrides: dict[str, str], message: str) -> None:
    path = write(tmp_path, HEAD + "vars: {user: a, n: 1}\nsteps: []\n")
    with pytest.raises(UsageError, match=message.replace("?", r"\?")):
        load_scenario(path, overrides=overrides)


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "f.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ScenarioLoadError, match="not a regular file"):
        load_scenario(fifo)


def test_a_device_and_a_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioLoadError, match="not a regular file"):
        load_scenario(Path("/dev/zero"))
    with pytest.raises(ScenarioLoadError, match="not a regular file"):
        load_scenario(tmp_path)


def test_an_oversize_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "steps: []\n" + "#" * (5 * 1024 * 1024) + "\n")
    with pytest.raises(ScenarioLoadError, match="file is too large"):
        load_scenario(path)


def test_a_missing_file(tmp_path: Path) -> None:
    assert [d.message for d in check_scenario(tmp_path / "nope.yaml")] == [
        f"file not found: {tmp_path / 'nope.yaml'}"
    ]


def test_find_scenario_files(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("b/z.yml", "a.yaml", "b/c.yaml", "notes.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / "dir.yaml").mkdir()
    given = tmp_path / "given.txt"
    assert find_scenario_files([tmp_path, given]) == [
        tmp_path / "a.yaml",
        tmp_path / "b" / "c.yaml",
        tmp_path / "b" / "z.yml",
        given,
    ]


BAD_REGEX = "  - expect: {message: {regex: '(a+)+$'}}\n"


def test_schema_errors_in_steps_do_not_hide_the_other_steps_problems(tmp_path: Path) -> None:
    text = HEAD + "steps:\n  - connect: {}\n  - expect: {open: {}, extra: 1}\n" + BAD_REGEX
    diagnostics = check_scenario(write(tmp_path, text))
    assert [(d.pointer, d.message.split(":")[0]) for d in diagnostics] == [
        ("/steps/1/expect/extra", "unknown key 'extra'"),
        ("/steps/2/expect/message/regex", "regex can backtrack catastrophically"),
    ]
    assert diagnostics[1].position.line == 6


def test_a_broken_step_may_be_the_one_that_takes_a_fake_servers_connect(tmp_path: Path) -> None:
    text = "wscenario: 1\nserver: {}\nsteps:\n  - expect: {connect: {}, extra: 1}\n"
    diagnostics = check_scenario(write(tmp_path, text + "  - expect: messageReceive\n"))
    assert [d.pointer for d in diagnostics] == ["/steps/0/expect/extra"]


@pytest.mark.parametrize(
    "text",
    [
        # an error outside the steps: the checks need that part whole
        'wscenario: 1\nclient: {url: "ws://h/", extra: 1}\nsteps:\n' + BAD_REGEX,
        "wscenario: 1\nsteps: 1\n",
        # a broken step saves a variable: later uses would look undefined
        HEAD + "steps:\n  - expect: {message: {json: {a: 1}, save: {x: /a}}, extra: 1}\n"
        "  - send: '{{ x }}'\n" + BAD_REGEX,
        HEAD
        + "steps:\n  - {unordered: [{expect: {message: {save: {x: /a}}}}], extra: 1}\n"
        + BAD_REGEX,
    ],
)
def test_the_checks_are_skipped_when_the_rest_cannot_be_trusted(tmp_path: Path, text: str) -> None:
    diagnostics = check_scenario(write(tmp_path, text))
    assert diagnostics
    assert not any("regex" in d.message or "undefined" in d.message for d in diagnostics)


ENV_VARS = (
    "vars:\n  who: '{{ env.WHO }}'\n  n: 3\n"
    "  auth: {token: '{{env.TOKEN}}', ids: ['{{ env.WHO }}', 'Bearer {{ env.TOKEN }}']}\n"
)


def test_defaults_read_the_environment_when_loaded_to_run(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + ENV_VARS + "steps: []\n")
    loaded = load_scenario(path, env={"WHO": "7", "TOKEN": "t0k", "OTHER": "x"})
    assert loaded.vars == {
        "who": "7",  # a value from the environment stays a string
        "n": 3,
        "auth": {"token": "t0k", "ids": ["7", "Bearer {{ env.TOKEN }}"]},  # only whole strings
    }


def test_a_default_takes_every_other_brace_as_written(tmp_path: Path) -> None:
    text = "vars: {v: '{{ n }} {{{ env.WHO }}} {{ not a template }} {{env.WHO}}{{'}\nsteps: []\n"
    path = write(tmp_path, HEAD + text)
    assert load_scenario(path, env={}).vars == {
        "v": "{{ n }} {{{ env.WHO }}} {{ not a template }} {{env.WHO}}{{"
    }


def test_an_override_is_taken_as_written_and_needs_no_environment(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + ENV_VARS + "steps: []\n")
    overrides = {"who": "{{ env.WHO }}", "auth": '{"token": "given"}'}
    loaded = load_scenario(path, overrides=overrides, env={})
    assert loaded.vars == {"who": "{{ env.WHO }}", "n": 3, "auth": {"token": "given"}}


NOT_SET = "environment variable 'WHO' is not set"
NOT_UTF8 = "environment variable TOKEN is not valid UTF-8"


def test_an_unset_environment_variable_is_an_error_where_a_default_reads_it(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, HEAD + ENV_VARS + "steps:\n  - send: {binary: {hex: '0'}}\n")
    with pytest.raises(ScenarioLoadError) as caught:
        load_scenario(path, env={"TOKEN": "a\udcffb"})  # bytes b"a\xffb" in the environment
    assert caught.value.exit_code == 2
    *unread, built = caught.value.diagnostics
    assert unread[0].render() == (
        f"{path}:4:8: error: /vars/who: environment variable 'WHO' is not set\n"
        "    hint: set it, or give --var who=..."
    )
    assert [(str(d.position), d.pointer, d.message, d.hint) for d in unread[1:]] == [
        (f"{path}:6:17", "/vars/auth/token", NOT_UTF8, "set it, or give --var auth=..."),
        (f"{path}:6:40", "/vars/auth/ids/0", NOT_SET, "set it, or give --var auth=..."),
    ]
    assert "invalid hex" in built.message, "build errors come along"


def test_a_scenario_of_the_other_side_reads_no_environment(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + ENV_VARS + "steps: []\n")
    assert load_scenario(path, env={}, side="server").vars["who"] == "{{ env.WHO }}"
    with pytest.raises(ScenarioLoadError):
        load_scenario(path, env={}, side="client")


def test_validating_needs_no_environment(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + ENV_VARS + "steps: []\n")
    diagnostics, scenario = inspect_scenario(path)
    assert [(d.severity, d.pointer) for d in diagnostics] == [("warning", "/vars/auth/ids/1")]
    assert scenario is not None
    assert scenario.vars["who"] == "{{ env.WHO }}"
    assert load_scenario(path).vars == scenario.vars
