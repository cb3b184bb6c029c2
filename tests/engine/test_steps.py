"""The step runner, driven against a scripted driver: every step kind, order, rules, saves."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from websockets.asyncio.server import ServerConnection

from tests.engine.fake_driver import ScriptedDriver, echo
from tests.engine.ws_peers import LIMITS, websockets_server
from wscenario.core.diagnostics import Position
from wscenario.core.events import CallError, Event
from wscenario.core.model import (
    JSON,
    AnyMatcher,
    ClientSpec,
    Close,
    Connect,
    ConnectOptions,
    Drop,
    EchoPayload,
    EventMatcher,
    Expect,
    ExpectedError,
    ExpectNothing,
    Frames,
    JsonMatcher,
    JsonPayload,
    Ping,
    RawFrame,
    RegexMatcher,
    Rule,
    Scenario,
    Send,
    Sleep,
    SourceRef,
    Step,
    StopReading,
    TextMatcher,
    TextPayload,
    Unordered,
)
from wscenario.engine.raw_driver import RawClientDriver
from wscenario.engine.steps import StepRunner
from wscenario.errors import CannotRun
from wscenario.report.results import SessionResult, StepResult

FILE = "t.yaml"


def at(line: int) -> dict[str, Any]:
    """The position and pointer of a step written at ``line``."""
    return {"position": Position(FILE, line, 3), "pointer": f"/steps/{line}"}


def scenario(*steps: Step, **fields: Any) -> Scenario:
    fields.setdefault("client", ClientSpec(url="ws://example.test/{{ room }}"))
    return Scenario(path=Path(FILE), name="t", steps=steps, **fields)


def expect_text(line: int, text: str, **kw: Any) -> Expect:
    return Expect(matcher=EventMatcher("message", TextMatcher(text)), **at(line), **kw)


def send(line: int, text: str, **kw: Any) -> Send:
    return Send(payload=TextPayload(text), **at(line), **kw)


async def run(
    sc: Scenario,
    driver: ScriptedDriver,
    variables: dict[str, JSON] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[SessionResult, list[StepResult]]:
    seen: list[StepResult] = []
    runner = StepRunner(
        sc,
        driver,
        variables=variables if variables is not None else {},
        env=env or {},
        on_step=seen.append,
    )
    return await runner.run_steps(), seen


@pytest.mark.anyio
async def test_calls_and_expects_pass_in_order() -> None:
    driver = ScriptedDriver(on_send=echo)
    sc = scenario(
        Connect(**at(1)),
        send(2, "hello {{ user }}"),
        expect_text(3, "hello alice"),
        Close(code=1000, reason="bye {{ user }}", **at(4)),
        client=ClientSpec(
            url="ws://example.test/{{ room }}",
            options=ConnectOptions(header={"authorization": "Bearer {{ env.TOKEN }}"}),
        ),
    )
    result, seen = await run(sc, driver, {"user": "alice", "room": "r1"}, {"TOKEN": "s3"})
    assert result.passed
    assert [s.kind for s in seen] == ["connect", "send", "expect", "close"]
    assert [s.position.line for s in result.steps] == [1, 2, 3, 4]
    assert driver.calls[0] == (
        "connect",
        ("ws://example.test/r1", ConnectOptions(header={"authorization": "Bearer s3"})),
    )
    assert driver.sent() == ["hello alice"]
    assert driver.calls[-1] == ("close", (1000, "bye alice", False))
    assert [(e.name, e.value, e.disposition, e.by) for e in result.events] == [
        ("message", "hello alice", "step", "/steps/3")
    ]


@pytest.mark.anyio
async def test_secrets_are_hidden_from_the_labels_of_passed_and_failed_steps() -> None:
    driver = ScriptedDriver(on_send=echo)
    sc = scenario(
        Connect(**at(1)),
        send(2, "tok sekrit"),
        expect_text(3, "tok sekrit"),
        expect_text(4, "again sekrit", timeout=0.01),
    )
    env = {"WSCENARIO_SECRET_T": "sekrit"}
    result, seen = await run(sc, driver, {"room": "r1"}, env)
    assert not result.passed
    labels = [step.label for step in seen]
    assert labels[1:] == [
        "send 'tok <WSCENARIO_SECRET_T>'",
        "expect message 'tok <WSCENARIO_SECRET_T>'",
        "expect message 'again <WSCENARIO_SECRET_T>'",
    ]
    _, plain = await run(sc, ScriptedDriver(on_send=echo), {"room": "r1"})
    assert plain[1].label == "send 'tok sekrit'"  # described from the step when read


@pytest.mark.anyio
async def test_call_failing_where_success_was_expected() -> None:
    driver = ScriptedDriver()
    driver.answer("connect", CallError(2302003, "Websocket connection already exist"))
    result, _ = await run(scenario(Connect(**at(1)), send(2, "x")), driver, {"room": "r"})
    assert not result.passed
    assert len(result.steps) == 1, "the first failure stops the steps"
    failure = result.steps[0].failure
    assert failure is not None
    assert failure.message == (
        "expected success, got error 2302003 'Websocket connection already exist'"
    )
    assert driver.sent() == []


@pytest.mark.anyio
async def test_call_succeeding_where_an_error_was_expected() -> None:
    driver = ScriptedDriver()
    step = send(1, "late", result=ExpectedError(-1))
    result, _ = await run(scenario(step), driver)
    failure = result.steps[0].failure
    assert failure is not None
    assert failure.message == "expected error -1, the call succeeded"


@pytest.mark.anyio
async def test_call_failing_with_another_error() -> None:
    driver = ScriptedDriver()
    driver.answer("send", CallError(-1, "Websocket Unknown Other Error"))
    driver.answer("send", CallError(-1, "Websocket Unknown Other Error"))
    steps = (
        send(1, "a", result=ExpectedError(-1)),
        send(2, "b", result=ExpectedError(-1, "Websocket connect failed")),
    )
    result, _ = await run(scenario(*steps), driver)
    assert result.steps[0].failure is None
    failure = result.steps[1].failure
    assert failure is not None
    assert failure.message == (
        "expected error -1 'Websocket connect failed', got error -1 'Websocket Unknown Other Error'"
    )


@pytest.mark.anyio
async def test_expect_times_out() -> None:
    driver = ScriptedDriver()
    result, _ = await run(scenario(expect_text(1, "hi", timeout=0.05)), driver)
    failure = result.steps[0].failure
    assert failure is not None
    assert failure.message == "no event within 50ms"
    assert failure.expected == "message 'hi'"
    assert failure.received is None
    assert 0.04 <= result.steps[0].duration < 1


@pytest.mark.anyio
async def test_mismatch_shows_expected_received_diff_and_variables() -> None:
    driver = ScriptedDriver()
    driver.push("message", json.dumps({"type": "welcome", "user": "bob"}))
    step = Expect(
        matcher=EventMatcher("message", JsonMatcher({"type": "welcome", "user": "{{ user }}"})),
        **at(1),
    )
    result, _ = await run(scenario(step), driver, {"user": "alice"})
    failure = result.steps[0].failure
    assert failure is not None
    assert failure.message == "/user: expected 'alice', got 'bob'"
    assert failure.expected == "message {type: 'welcome', user: '{{ user }}'}"
    assert failure.received == 'message \'{"type": "welcome", "user": "bob"}\''
    assert failure.diff[:2] == ("--- expected", "+++ actual")
    assert any("alice" in line for line in failure.diff)
    assert any("bob" in line for line in failure.diff)
    assert failure.variables == {"user": "alice"}


@pytest.mark.anyio
async def test_ignored_events_are_skipped_and_kept() -> None:
    driver = ScriptedDriver()
    driver.push("message", "heartbeat")
    driver.push("message", "real")
    driver.push("message", "heartbeat")
    sc = scenario(
        expect_text(1, "real"),
        ExpectNothing(duration=0.03, **at(2)),
        ignore=(EventMatcher("message", TextMatcher("heartbeat")),),
    )
    result, _ = await run(sc, driver)
    assert result.passed
    assert [(e.value, e.disposition) for e in result.events] == [
        ("heartbeat", "ignored"),
        ("real", "step"),
        ("heartbeat", "ignored"),
    ]


def unordered(line: int, *texts: str, timeout: float | None = 0.2) -> Unordered:
    expects = tuple(expect_text(line * 10 + i, text) for i, text in enumerate(texts))
    return Unordered(expects=expects, timeout=timeout, **at(line))


@pytest.mark.anyio
@pytest.mark.parametrize("order", [["a", "b", "c"], ["c", "a", "b"], ["b", "c", "a"]])
async def test_unordered_accepts_any_order(order: list[str]) -> None:
    driver = ScriptedDriver()
    for text in order:
        driver.push("message", text)
    steps = (unordered(1, "a", "b", "c"), expect_text(2, "d", timeout=0.02))
    result, _ = await run(scenario(*steps), driver)
    assert result.steps[0].failure is None
    assert result.steps[1].failure is not None, "nothing is left for the next expect"
    assert [e.by for e in result.events] == [f"/steps/{10 + 'abc'.index(t)}" for t in order]


@pytest.mark.anyio
async def test_unordered_rejects_an_extra_event() -> None:
    driver = ScriptedDriver()
    for text in ["b", "x", "a"]:
        driver.push("message", text)
    result, _ = await run(scenario(unordered(1, "a", "b")), driver)
    failure = result.steps[0].failure
    assert failure is not None
    assert failure.message == "the event matches none of the expectations left"
    assert failure.received == "message 'x'"
    assert failure.expected == "message 'a'"


@pytest.mark.anyio
async def test_unordered_times_out_with_what_is_missing() -> None:
    driver = ScriptedDriver()
    driver.push("message", "b")
    result, _ = await run(scenario(unordered(1, "a", "b", "c", timeout=0.05)), driver)
    failure = result.steps[0].failure
    assert failure is not None
    assert failure.message == "no event within 50ms; 2 of 3 expectations unmet"
    assert failure.expected == "message 'a' | message 'c'"


@pytest.mark.anyio
async def test_unordered_uses_the_longest_own_timeout() -> None:
    driver = ScriptedDriver()
    step = Unordered(
        expects=(expect_text(10, "a", timeout=0.02), expect_text(11, "b", timeout=0.3)),
        **at(1),
    )
    async with anyio.create_task_group() as group:
        group.start_soon(driver.push_later, 0.01, "message", "b")
        group.start_soon(driver.push_later, 0.1, "message", "a")
        result, _ = await run(scenario(step), driver)
    assert result.passed


@pytest.mark.anyio
async def test_expect_nothing() -> None:
    driver = ScriptedDriver()
    quiet, _ = await run(scenario(ExpectNothing(duration=0.03, **at(1))), driver)
    assert quiet.passed
    driver.push("close", {"code": 1000, "reason": ""})
    noisy, _ = await run(scenario(ExpectNothing(duration=0.3, **at(1))), driver)
    failure = noisy.steps[0].failure
    assert failure is not None
    assert failure.message == "expected no event for 300ms, one arrived"
    assert str(failure.received).startswith("close")
    assert noisy.steps[0].duration < 0.2, "fails as soon as the event arrives"


class Silent(ScriptedDriver):
    """A driver with nothing more to say, ever (its connection ended or stopped reading)."""

    async def next_event(self, within: float) -> Event | None:
        await anyio.lowlevel.checkpoint()
        return None


@pytest.mark.anyio
async def test_waits_last_as_written_when_nothing_more_can_arrive() -> None:
    steps = (ExpectNothing(duration=0.1, **at(1)), Sleep(duration=0.1, **at(2)))
    with_rules = server(*steps, rules=(rule(3, "^never$", send(4, "x")),))
    for written in (scenario(*steps), with_rules):
        result, _ = await run(written, Silent())
        assert result.passed
        assert [step.duration >= 0.09 for step in result.steps] == [True, True], written.rules


@pytest.mark.anyio
async def test_saves_and_regex_groups_feed_later_steps() -> None:
    driver = ScriptedDriver()
    driver.push("message", json.dumps({"session": {"id": "s-42"}}))
    driver.push("message", "ok 7")
    steps = (
        Expect(
            matcher=EventMatcher("message", JsonMatcher({}, mode="subset")),
            save={"sid": "/session/id"},
            **at(1),
        ),
        Expect(matcher=EventMatcher("message", RegexMatcher(r"^ok (?P<n>\d+)$")), **at(2)),
        Send(payload=JsonPayload({"sid": "{{ sid }}", "n": "{{ n }}"}), **at(3)),
        send(4, "{{ sid }}/{{ n }}"),
    )
    variables: dict[str, JSON] = {}
    result, _ = await run(scenario(*steps), driver, variables)
    assert result.passed, result.steps
    assert variables == {"sid": "s-42", "n": "7"}
    assert json.loads(str(driver.sent()[0])) == {"sid": "s-42", "n": "7"}
    assert driver.sent()[1] == "s-42/7"
    assert result.variables == {"sid": "s-42", "n": "7"}


@pytest.mark.anyio
async def test_unresolvable_save_fails_the_step() -> None:
    driver = ScriptedDriver()
    driver.push("message", json.dumps({"a": 1}))
    step = Expect(matcher=EventMatcher("message"), save={"sid": "/session/id"}, **at(1))
    result, _ = await run(scenario(step), driver)
    failure = result.steps[0].failure
    assert failure is not None
    assert failure.message.startswith("cannot save 'sid' from '/session/id'")


@pytest.mark.anyio
async def test_event_fields_mismatch_has_a_diff() -> None:
    driver = ScriptedDriver()
    driver.push("close", {"code": 1006, "reason": ""})
    step = Expect(matcher=EventMatcher("close", fields={"code": 1000}), **at(1))
    result, _ = await run(scenario(step), driver)
    failure = result.steps[0].failure
    assert failure is not None
    assert failure.received == "close {code: 1006, reason: ''}"
    assert failure.diff == (
        "--- expected",
        "+++ actual",
        "@@ -1,3 +1,3 @@",
        " {",
        '-  "code": 1000',
        '+  "code": 1006',
        " }",
    ), "the reason the scenario did not mention is left out"


@pytest.mark.anyio
async def test_wrong_event_has_no_diff() -> None:
    driver = ScriptedDriver()
    driver.push("error", {"code": 200, "data": "0"})
    result, _ = await run(scenario(Expect(matcher=EventMatcher("open"), **at(1))), driver)
    failure = result.steps[0].failure
    assert failure is not None
    assert failure.message == "expected a 'open' event, got 'error'"
    assert failure.received == "error {code: 200, data: '0'}"
    assert failure.diff == ()


@pytest.mark.anyio
async def test_undefined_variable_fails_the_step_without_raising() -> None:
    driver = ScriptedDriver()
    result, _ = await run(scenario(send(1, "{{ nope }}")), driver)
    failure = result.steps[0].failure
    assert failure is not None
    assert "nope" in failure.message
    assert driver.sent() == []


@pytest.mark.anyio
async def test_sleep_waits() -> None:
    driver = ScriptedDriver()
    result, _ = await run(scenario(Sleep(duration=0.05, **at(1))), driver)
    assert result.passed
    assert result.steps[0].duration >= 0.04


@pytest.mark.anyio
async def test_what_the_driver_holds_back_is_flushed_before_a_sleep() -> None:
    driver = ScriptedDriver()
    await run(scenario(send(1, "a"), Sleep(duration=0.01, **at(2))), driver)
    assert [call for call, _ in driver.calls] == ["send", "flush"]


@pytest.mark.anyio
async def test_what_the_driver_holds_back_is_flushed_before_a_rule_sleeps() -> None:
    driver = ScriptedDriver()
    driver.push("messageReceive", "hi")
    slow = rule(1, "^hi$", send(90, "one"), Sleep(duration=0.01, **at(91)), send(92, "two"))
    await run(server(Sleep(duration=0.05, **at(1)), rules=(slow,)), driver)
    assert [call for call, _ in driver.calls][:3] == ["send", "flush", "send"]


@pytest.mark.anyio
async def test_server_steps_call_the_driver() -> None:
    driver = ScriptedDriver()
    frames = (RawFrame(opcode=1, data=b"x", fin=False),)
    steps = (
        Ping(data=b"hb", **at(1)),
        Frames(frames=frames, **at(2)),
        StopReading(**at(3)),
        Drop(mode="rst", **at(4)),
    )
    result, _ = await run(scenario(*steps, client=None), driver)
    assert result.passed
    assert driver.calls == [
        ("ping", b"hb"),
        ("frames", frames),
        ("stopReading", None),
        ("drop", True),
    ]


@pytest.mark.anyio
async def test_driver_that_cannot_run_marks_the_session() -> None:
    class Unreachable(ScriptedDriver):
        async def connect(self, url: str, options: ConnectOptions) -> CallError | None:
            raise CannotRun("certificate file unreadable")

    result, _ = await run(scenario(Connect(**at(1))), Unreachable(), {"room": "r"})
    assert result.error == "certificate file unreadable"
    assert not result.passed


def rule(line: int, on: str, *actions: Any, once: bool = False, **kw: Any) -> Rule:
    return Rule(
        position=Position(FILE, line, 3),
        pointer=f"/rules/{line}",
        on=EventMatcher("messageReceive", RegexMatcher(on)),
        actions=actions,
        once=once,
        **kw,
    )


def server(*steps: Step, rules: tuple[Rule, ...], **fields: Any) -> Scenario:
    return scenario(*steps, client=None, rules=rules, **fields)


def receive(line: int, text: str) -> Expect:
    return Expect(matcher=EventMatcher("messageReceive", TextMatcher(text)), **at(line))


@pytest.mark.anyio
async def test_a_failed_rule_is_labelled_without_secrets() -> None:
    driver = ScriptedDriver()
    driver.push("messageReceive", "sekrit")
    sc = server(
        ExpectNothing(duration=0.03, **at(1)),
        rules=(rule(1, "^sekrit$", send(90, "{{ missing }}")),),
    )
    result, _ = await run(sc, driver, env={"WSCENARIO_SECRET_T": "sekrit"})
    failed = result.steps[0]
    assert failed.kind == "rule"
    assert failed.failure is not None
    assert failed.label == "rule on messageReceive regex /^<WSCENARIO_SECRET_T>$/"


@pytest.mark.anyio
async def test_rules_answer_every_time_and_hide_events_from_steps() -> None:
    driver = ScriptedDriver()
    for text in ["ping 1", "hello", "ping 2"]:
        driver.push("messageReceive", text)
    sc = server(
        receive(1, "hello"),
        ExpectNothing(duration=0.03, **at(2)),
        rules=(rule(1, r"^ping (?P<n>\d+)$", send(90, "pong {{ n }}")),),
    )
    result, _ = await run(sc, driver)
    assert result.passed, result.steps
    assert driver.sent() == ["pong 1", "pong 2"]
    assert [(e.value, e.disposition, e.by) for e in result.events] == [
        ("ping 1", "rule", "/rules/1"),
        ("hello", "step", "/steps/1"),
        ("ping 2", "rule", "/rules/1"),
    ]


@pytest.mark.anyio
async def test_once_rule_fires_once_then_steps_see_the_event() -> None:
    driver = ScriptedDriver()
    driver.push("messageReceive", "hi")
    driver.push("messageReceive", "hi")
    sc = server(
        receive(1, "hi"),
        rules=(rule(1, "^hi$", send(90, "welcome"), once=True),),
    )
    result, _ = await run(sc, driver)
    assert result.passed
    assert driver.sent() == ["welcome"]
    assert [e.disposition for e in result.events] == ["rule", "step"]


@pytest.mark.anyio
async def test_echo_sends_back_the_message_that_fired_the_rule_unchanged() -> None:
    driver = ScriptedDriver()
    messages: list[str | bytes] = ["héllo {{ x }}", b"\x00\xff\x81", ""]
    for message in messages:
        driver.push("messageReceive", message)
    echo_rule = Rule(
        position=Position(FILE, 1, 3),
        pointer="/rules/0",
        on=EventMatcher("messageReceive", AnyMatcher()),
        actions=(Send(payload=EchoPayload(), **at(90)),),
    )
    result, _ = await run(server(Sleep(duration=0.05, **at(1)), rules=(echo_rule,)), driver)
    assert result.passed, result.steps
    assert driver.sent() == messages
    assert [type(data) for data in driver.sent()] == [str, bytes, str]


@pytest.mark.anyio
async def test_echo_in_a_step_has_nothing_to_send_back() -> None:
    driver = ScriptedDriver()
    result, _ = await run(server(Send(payload=EchoPayload(), **at(1)), rules=()), driver)
    assert result.steps[0].failure is not None
    assert result.steps[0].failure.message == "echo: no received message to send back"
    assert result.steps[0].label == "send the received message back"
    assert driver.sent() == []


@pytest.mark.anyio
async def test_rule_saves_feed_its_actions() -> None:
    driver = ScriptedDriver()
    driver.push("messageReceive", json.dumps({"name": "zoe"}))
    on = Rule(
        position=Position(FILE, 1, 3),
        pointer="/rules/0",
        on=EventMatcher("messageReceive", JsonMatcher({}, mode="subset")),
        actions=(Send(payload=JsonPayload({"hello": "{{ name }}"}), **at(90)),),
        save={"name": "/name"},
    )
    result, _ = await run(server(Sleep(duration=0.05, **at(1)), rules=(on,)), driver)
    assert result.passed
    assert [json.loads(str(d)) for d in driver.sent()] == [{"hello": "zoe"}]


@pytest.mark.anyio
async def test_rules_work_during_sleep_and_queue_the_rest() -> None:
    driver = ScriptedDriver()
    driver.push("messageReceive", "ping 1")
    driver.push("messageReceive", "later")
    sc = server(
        Sleep(duration=0.05, **at(1)),
        receive(2, "later"),
        rules=(rule(1, r"^ping (?P<n>\d+)$", send(90, "pong")),),
    )
    seen: list[str] = []

    def record(step: StepResult) -> None:
        seen.append(f"{step.kind} {len(driver.sent())}")

    result = await StepRunner(sc, driver, variables={}, env={}, on_step=record).run_steps()
    assert result.passed
    assert seen == ["sleep 1", "expect 1"], "the rule answered during the sleep"


@pytest.mark.anyio
async def test_failing_rule_action_is_reported() -> None:
    driver = ScriptedDriver()
    driver.push("messageReceive", "ping")
    sc = server(Sleep(duration=0.03, **at(1)), rules=(rule(1, "ping", send(90, "{{ nope }}")),))
    result, seen = await run(sc, driver)
    assert not result.passed
    assert [s.kind for s in seen] == ["rule", "sleep"]
    assert seen[0].failure is not None
    assert "nope" in seen[0].failure.message


@pytest.mark.anyio
async def test_serve_rules_after_the_steps_until_close() -> None:
    driver = ScriptedDriver()
    sc = server(rules=(rule(1, "^ping$", send(90, "pong")),))
    runner = StepRunner(sc, driver, variables={}, env={})
    steps = await runner.run_steps()
    assert steps.passed
    driver.push("messageReceive", "ping")
    driver.push("messageReceive", "ping")
    driver.push("close", {"code": 1000, "reason": ""})
    with anyio.fail_after(2):
        await runner.serve_rules(poll=0.05)
    assert driver.sent() == ["pong", "pong"]
    assert [e.name for e in runner.result().events] == ["messageReceive"] * 2 + ["close"]


@pytest.mark.anyio
async def test_serving_rules_keeps_only_the_latest_events_when_told() -> None:
    driver = ScriptedDriver()
    sc = server(rules=(rule(1, "^ping", send(90, "pong")),))
    runner = StepRunner(sc, driver, variables={}, env={}, keep_events=3)
    for n in range(10):
        driver.push("messageReceive", f"ping {n}")
    driver.push("close", {"code": 1000, "reason": ""})
    with anyio.fail_after(2):
        await runner.serve_rules(poll=0.05)
    assert driver.sent() == ["pong"] * 10
    events = runner.result().events
    assert [e.value for e in events[:2]] == ["ping 8", "ping 9"]
    assert [e.name for e in events] == ["messageReceive", "messageReceive", "close"]


@pytest.mark.anyio
async def test_serving_rules_stops_when_the_driver_has_nothing_more() -> None:
    class Finished(ScriptedDriver):
        async def next_event(self, within: float) -> Event | None:
            await anyio.lowlevel.checkpoint()
            return None

    runner = StepRunner(server(rules=()), Finished(), variables={}, env={})
    with anyio.fail_after(1):
        await runner.serve_rules(poll=5)
    assert runner.ended


@pytest.mark.anyio
async def test_drop_ends_serving_rules() -> None:
    driver = ScriptedDriver()
    runner = StepRunner(server(Drop(**at(1)), rules=()), driver, variables={}, env={})
    await runner.run_steps()
    with anyio.fail_after(1):
        await runner.serve_rules(poll=0.05)
    assert runner.ended


@pytest.mark.anyio
async def test_rule_actions_sleep_and_failing_calls_are_reported() -> None:
    driver = ScriptedDriver()
    driver.answer("send", CallError(-1, "Websocket Unknown Other Error"))
    driver.push("messageReceive", "ping")
    sc = server(
        Sleep(duration=0.05, **at(1)),
        rules=(rule(1, "ping", Sleep(duration=0.01, **at(90)), send(91, "pong")),),
    )
    result, seen = await run(sc, driver)
    assert [s.kind for s in seen] == ["rule", "sleep"]
    failure = seen[0].failure
    assert failure is not None
    assert failure.message == ("expected success, got error -1 'Websocket Unknown Other Error'")
    assert seen[0].label == "rule on messageReceive regex /ping/"
    assert not result.passed


@pytest.mark.anyio
@pytest.mark.parametrize("received", ["not json", b"\x00"])
async def test_json_expected_but_not_json_received_has_no_diff(received: str | bytes) -> None:
    driver = ScriptedDriver()
    driver.push("message", received)
    step = Expect(matcher=EventMatcher("message", JsonMatcher({"a": 1})), **at(1))
    result, _ = await run(scenario(step), driver)
    failure = result.steps[0].failure
    assert failure is not None
    assert failure.diff == ()


@pytest.mark.anyio
async def test_json_nested_too_deeply_to_read_is_a_clear_failure() -> None:
    deep = "[" * 100_000 + "]" * 100_000

    async def send_deep(ws: ServerConnection) -> None:
        await ws.send(deep)
        await ws.wait_closed()

    sc = scenario(
        Connect(**at(1)),
        Expect(matcher=EventMatcher("open"), **at(2)),
        Expect(matcher=EventMatcher("message", JsonMatcher({"a": 1})), **at(3)),
    )
    async with websockets_server(send_deep) as port, RawClientDriver(LIMITS) as driver:
        sc = replace(sc, client=ClientSpec(url=f"ws://127.0.0.1:{port}/"))
        result = await StepRunner(sc, driver, variables={}, env={}).run_steps()
    failure = result.steps[-1].failure
    assert failure is not None
    assert failure.message.startswith("expected JSON, got JSON that cannot be read")
    assert "recursion" in failure.message
    assert failure.diff == ()


@pytest.mark.anyio
async def test_fields_expected_but_a_message_received_has_no_diff() -> None:
    driver = ScriptedDriver()
    driver.push("close", "odd")
    step = Expect(matcher=EventMatcher("close", fields={"code": 1000}), **at(1))
    result, _ = await run(scenario(step), driver)
    failure = result.steps[0].failure
    assert failure is not None
    assert failure.diff == ()


@pytest.mark.anyio
async def test_streaming_runner_keeps_failures_and_the_latest_events_only() -> None:
    driver = ScriptedDriver(on_send=echo)
    runner = StepRunner(scenario(), driver, variables={}, env={}, streaming=True)
    for line in range(1, 151):
        result = await runner.run_step(send(line, f"m{line}"))
        assert result.index == 2 * (line - 1)
        assert result.failure is None
        assert (await runner.run_step(expect_text(line, f"m{line}"))).failure is None
    failed = await runner.run_step(expect_text(999, "never", timeout=0.01))
    summary = runner.result()
    assert failed.failure is not None
    assert failed.index == 300
    assert summary.steps == (failed,)
    assert len(summary.events) == 100
    assert summary.events[-1].value == "m150"


STRICT = SourceRef("/strict", Position(FILE, 2, 1))


@pytest.mark.anyio
async def test_strict_fails_on_an_event_no_step_took() -> None:
    steps = (send(3, "hello"), expect_text(4, "hello"))
    lenient = ScriptedDriver(on_send=lambda data: [*echo(data), *echo("extra")])
    assert (await run(scenario(*steps), lenient))[0].passed
    driver = ScriptedDriver(on_send=lambda data: [*echo(data), *echo("extra")])
    result, seen = await run(scenario(*steps, strict=STRICT), driver)
    assert not result.passed
    assert result.steps_run == 2
    assert result.failed_step is seen[-1]
    assert (seen[-1].kind, seen[-1].label) == ("strict", "strict: no event left over")
    assert (seen[-1].position, seen[-1].pointer) == (STRICT.position, "/strict")
    assert seen[-1].failure is not None
    assert seen[-1].failure.message == "1 event no step took: message 'extra'"
    assert seen[-1].failure.expected == "no event left over"
    assert seen[-1].failure.received == "message 'extra'"
    assert [(e.value, e.disposition) for e in result.events] == [
        ("hello", "step"),
        ("extra", "unconsumed"),
    ]


class AnsweringClose(ScriptedDriver):
    """The peer answers a ``close`` call at once: its ``close`` event is queued."""

    async def close(
        self, code: int | None, reason: str | None, *, no_payload: bool = False
    ) -> CallError | None:
        self.push("close", {"code": 1000, "reason": "CLOSE_NORMAL"})
        return await super().close(code, reason, no_payload=no_payload)


def message_then_noise(data: str | bytes) -> list[Event]:
    """An echo followed by its ``dataEnd`` and a heartbeat."""
    return [*echo(data), Event("dataEnd", None), Event("message", '{"type": "heartbeat"}')]


@pytest.mark.anyio
async def test_strict_leaves_out_ignored_events_data_ends_and_the_answer_to_its_close() -> None:
    heartbeat = EventMatcher("message", JsonMatcher({"type": "heartbeat"}, mode="subset"))
    steps = (send(3, "hello"), expect_text(4, "hello"), Close(**at(5)))
    noisy = await run(scenario(*steps, strict=STRICT), AnsweringClose(message_then_noise))
    assert noisy[0].steps[-1].failure is not None
    assert noisy[0].steps[-1].failure.message == (
        """1 event no step took: message '{"type": "heartbeat"}'"""
    )
    sc = scenario(*steps, strict=STRICT, ignore=(heartbeat,))
    result, _ = await run(sc, AnsweringClose(message_then_noise))
    assert result.passed, result.failed_step
    assert [(e.name, e.disposition) for e in result.events] == [
        ("message", "step"),
        ("dataEnd", "unconsumed"),
        ("message", "ignored"),
        ("close", "unconsumed"),
    ]


@pytest.mark.anyio
async def test_strict_counts_a_close_the_script_did_not_ask_for() -> None:
    driver = ScriptedDriver()
    driver.push("close", {"code": 1001, "reason": "bye"})
    failed = await run(scenario(Sleep(duration=0, **at(3)), strict=STRICT), driver)
    assert failed[0].steps[-1].failure is not None
    assert failed[0].steps[-1].failure.message == (
        "1 event no step took: close {code: 1001, reason: 'bye'}"
    )
    dropped = ScriptedDriver()
    after_drop = server(Drop(**at(3)), Sleep(duration=0.05, **at(4)), rules=(), strict=STRICT)
    async with anyio.create_task_group() as group:
        cut: dict[str, JSON] = {"code": 1006, "reason": ""}
        group.start_soon(dropped.push_later, 0.01, "close", cut)
        assert (await run(after_drop, dropped))[0].passed  # the drop's own close
    first = ScriptedDriver()  # the peer closed first; the script's close came after it
    first.push("close", {"code": 4000, "reason": ""})
    closes = server(Sleep(duration=0.01, **at(3)), Close(**at(4)), rules=(), strict=STRICT)
    result, _ = await run(closes, first)
    assert result.steps[-1].failure is not None
    assert result.steps[-1].failure.message == (
        "1 event no step took: close {code: 4000, reason: ''}"
    )


@pytest.mark.anyio
async def test_a_sleep_of_no_time_still_writes_what_is_held_back() -> None:
    driver = ScriptedDriver()
    result, _ = await run(scenario(Sleep(duration=0, **at(1))), driver)
    assert result.passed
    assert driver.calls == [("flush", None)]


@pytest.mark.anyio
async def test_strict_leaves_a_server_of_rules_alone() -> None:
    driver = ScriptedDriver()
    driver.push("connect", {"path": "/"})  # no step takes it: rules go on serving
    result, _ = await run(
        server(rules=(rule(1, "^ping$", send(90, "pong")),), strict=STRICT), driver
    )
    assert result.passed
    assert result.steps == ()


@pytest.mark.anyio
async def test_strict_on_a_server_counts_what_neither_steps_nor_rules_took() -> None:
    driver = ScriptedDriver()
    for text in ["connect", "ping", "a", "ping", "b", "c", "d"]:
        driver.push("messageReceive", text)
    sc = server(
        receive(3, "connect"),
        Sleep(duration=0.03, **at(4)),
        rules=(rule(1, "^ping$", send(90, "pong")),),
        strict=STRICT,
    )
    result, _ = await run(sc, driver)
    assert driver.sent() == ["pong", "pong"]
    failure = result.steps[-1].failure
    assert failure is not None
    assert failure.message == (
        "4 events no step took: messageReceive 'a', messageReceive 'b', messageReceive 'c'"
        " and 1 more"
    )


@pytest.mark.anyio
async def test_strict_adds_nothing_to_a_failed_script() -> None:
    driver = ScriptedDriver()
    driver.push("message", "no")
    driver.push("message", "extra")
    result, seen = await run(scenario(expect_text(3, "yes"), strict=STRICT), driver)
    assert [s.kind for s in seen] == ["expect"]
    assert result.failed_step is seen[0]
