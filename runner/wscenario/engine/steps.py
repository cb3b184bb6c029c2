"""The step runner: one script of steps over one connection, for either side.

``StepRunner.run_steps`` drives a ``Driver`` (the ohos emulation, the raw client, or one
connection of the fake server) through a scenario's steps: calls are rendered and made, their
outcome compared with the step's expected ``result``; expectations consume events in order. Rules
(fake server) see every event first and answer it on their own, while the steps wait and,
through ``StepRunner.serve_rules``, after they end. Everything observed is kept for reports.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from collections.abc import Callable, Collection, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace

import anyio

from wscenario.core.diff import json_diff
from wscenario.core.events import CallError, Event
from wscenario.core.matchers import (
    MatchResult,
    SaveError,
    encode_payload,
    event_label,
    match_event,
    save_values,
)
from wscenario.core.model import (
    JSON,
    Action,
    CallStep,
    Close,
    Connect,
    ConnectOptions,
    Drop,
    EchoPayload,
    EventMatcher,
    Expect,
    ExpectNothing,
    Frames,
    JsonMatcher,
    Ping,
    Rule,
    Scenario,
    Send,
    SendPayload,
    Sleep,
    SourceRef,
    Step,
    StopReading,
    Unordered,
)
from wscenario.core.redaction import hide, secrets_in
from wscenario.core.templating import TemplateError, render_text, render_value
from wscenario.engine.clock import loop_clock
from wscenario.engine.driver import Driver
from wscenario.errors import WScenarioError
from wscenario.report.diff_view import aligned_for_diff
from wscenario.report.labels import describe_matcher, describe_step, format_duration, step_kind
from wscenario.report.results import (
    Disposition,
    Failure,
    SeenEvent,
    SessionResult,
    StepResult,
)

StepCallback = Callable[[StepResult], None]
Clock = Callable[[], float]

ENDING_EVENT = "close"
"""The event after which a connection carries nothing more."""

TRAILING_EVENT = "dataEnd"
"""The ohos event that ends the message before it: left over only with its message."""

SHOWN_LEFTOVERS = 3
"""Events a ``strict`` failure names in its message (it counts them all)."""

RECENT_EVENTS = 100
"""Events a streaming runner keeps for its report (the latest ones)."""


class StepFailed(Exception):
    """Raised inside the runner to end a step with a ``Failure``."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(slots=True)
class _Seen:
    """A mutable record of one observed event while the session runs."""

    event: Event
    disposition: Disposition = "unconsumed"
    by: str = ""
    after_hang_up: bool = False  # a close taken once this side had closed or dropped


class StepRunner:
    """Runs one script of steps (and the scenario's rules) over one driver.

    Args:
        scenario: supplies the ignore list, ignored pointers, default timeout and client spec.
        driver: the connection to drive.
        variables: the variables in play; saved values are written into it.
        env: the environment ``{{ env.NAME }}`` reads.
        clock: seconds from a monotonic clock (the event loop's by default).
        on_step: called with each step's result as soon as it is known.
        rules: the rules to apply to every event (default: the scenario's).
        streaming: keep only failed steps and the latest ``RECENT_EVENTS`` events, so memory
            stays flat however many steps ``run_step`` runs.
        keep_events: keep only this many latest events (``None``: all, unless streaming), so
            a long-lived connection answered by rules does not grow with every message.
    """

    def __init__(
        self,
        scenario: Scenario,
        driver: Driver,
        *,
        variables: MutableMapping[str, JSON],
        env: Mapping[str, str],
        clock: Clock | None = None,
        on_step: StepCallback | None = None,
        rules: Sequence[Rule] | None = None,
        streaming: bool = False,
        keep_events: int | None = None,
    ) -> None:
        self.scenario = scenario
        self.driver = driver
        self.variables = variables
        self.env = env
        self._secrets = secrets_in(env)  # never shown in what the run reports
        self.clock = clock or loop_clock()
        self.on_step = on_step
        self.rules = tuple(scenario.rules if rules is None else rules)
        self.started = self.clock()
        self.ended = False
        self.error: str | None = None
        self.streaming = streaming
        self._seen: deque[_Seen] = deque(maxlen=RECENT_EVENTS if streaming else keep_events)
        self._pending: deque[_Seen] = deque()
        self._fired: set[int] = set()
        self._results: list[StepResult] = []
        self._steps_run = 0
        self._steps_done = 0  # of those run, the steps that ended (not cut short by a cancel)
        self._hung_up = False  # a step or rule closed or dropped: the close event is its own

    # ------------------------------------------------------------------ public interface

    async def run_steps(self, steps: Sequence[Step] | None = None) -> SessionResult:
        """Run ``steps`` (default: the scenario's) until the first failure.

        A ``strict`` scenario whose steps all passed then fails on the events already received
        that nothing took (a failed ``strict`` result at the key's line).
        """
        script = self.scenario.steps if steps is None else tuple(steps)
        for index, step in enumerate(script):
            result = await self._run_step(index, step)
            if result.failure is not None:
                break
        else:
            if self.scenario.strict is not None and script:  # rules alone: nothing ends
                await self._check_leftovers(len(script), self.scenario.strict)
        return self.result(total_steps=len(script))

    async def run_step(self, step: Step) -> StepResult:
        """Run one more step; its index is the number of steps run before it."""
        return await self._run_step(self._steps_run, step)

    async def serve_rules(self, *, poll: float = 1.0) -> None:
        """Keep offering events to the rules until the connection ends.

        The connection ends with a ``close`` event, a ``drop``, or when the driver has no more
        events to give. The caller may cancel this at any time; ``result()`` stays available.
        """
        while not self.ended:
            deadline = self.clock() + poll
            if await self._receive(deadline) is None and self.clock() < deadline:
                self.ended = True

    def result(self, *, total_steps: int | None = None) -> SessionResult:
        """A snapshot of the session so far."""
        secrets = self._secrets
        return SessionResult(
            steps=tuple(self._results),
            events=tuple(
                SeenEvent(
                    s.event.t, s.event.name, hide(s.event.value, secrets), s.disposition, s.by
                )
                for s in self._seen
            ),
            variables=hide(dict(self.variables), secrets),
            duration=self.clock() - self.started,
            total_steps=self._steps_run if total_steps is None else total_steps,
            error=self.error,
            ran=self._steps_done,
        )

    # ------------------------------------------------------------------ steps

    async def _run_step(self, index: int, step: Step) -> StepResult:
        self._steps_run += 1
        begin = self.clock()
        failure: Failure | None = None
        try:
            await self._perform(step)
        except StepFailed as exc:
            failure = exc.failure
        except (TemplateError, SaveError) as exc:
            failure = self._failure(str(exc))
        except WScenarioError as exc:
            self.error = str(exc)
            failure = self._failure(str(exc))
        result = StepResult(
            index=index,
            kind=step_kind(step),
            # described when shown, unless a secret must be hidden from the description
            what=hide(describe_step(step), self._secrets) if self._secrets else step,
            position=step.position,
            pointer=step.pointer,
            started=begin - self.started,
            duration=self.clock() - begin,
            failure=failure,
        )
        self._steps_done += 1
        self._report(result)
        return result

    def _report(self, result: StepResult) -> None:
        if result.failure is not None or not self.streaming:
            self._results.append(result)
        if self.on_step is not None:
            self.on_step(result)

    async def _perform(self, step: Step | Action, trigger: Event | None = None) -> None:
        """Run one step or action; ``trigger`` is the event that fired the rule, if any."""
        if isinstance(step, Send):  # the most frequent, a rule's answer above all
            error = await self._send(step, trigger)
            if error is not None or step.result is not None:
                self._check_call(step, error)
        elif isinstance(step, Expect):
            await self._expect(step)
        elif isinstance(step, Unordered):
            await self._unordered(step)
        elif isinstance(step, ExpectNothing):
            await self._nothing(step)
        elif isinstance(step, Sleep):
            await self._sleep(step.duration)
        elif isinstance(step, Connect | Close):
            if isinstance(step, Close) and trigger is None:
                await self._before_hanging_up()
            self._check_call(step, await self._call(step))
        elif isinstance(step, Ping):
            await self.driver.ping(step.data)
        elif isinstance(step, Drop):
            if trigger is None:
                await self._before_hanging_up()
            await self.driver.drop(rst=step.mode == "rst")
            self.ended = self._hung_up = True
        elif isinstance(step, Frames):
            await self.driver.write_frames(step.frames)
        else:
            assert isinstance(step, StopReading)
            await self.driver.stop_reading()

    async def _send(self, step: Send, trigger: Event | None) -> CallError | None:
        return await self.driver.send(
            self._send_data(step.payload, trigger),
            fragments=step.fragments,
            fragment_delay=step.fragment_delay,
            ping_between=step.ping_between,
        )

    async def _call(self, step: Connect | Close) -> CallError | None:
        if isinstance(step, Close):
            reason = None if step.reason is None else self._render(step.reason)
            error = await self.driver.close(step.code, reason, no_payload=step.no_payload)
            self._hung_up = self._hung_up or error is None
            return error
        client = self.scenario.client
        url = step.url or (client.url if client else "")
        options = step.options or (client.options if client else ConnectOptions())
        return await self.driver.connect(self._render(url), self._render_options(options))

    def _send_data(self, payload: SendPayload, trigger: Event | None) -> str | bytes:
        """What a ``send`` puts on the wire; an echo sends ``trigger``'s message unchanged."""
        if not isinstance(payload, EchoPayload):
            return encode_payload(payload, self.variables, self.env)
        if trigger is None or not isinstance(trigger.value, str | bytes):
            raise StepFailed(self._failure("echo: no received message to send back"))
        return trigger.value

    def _render(self, text: str) -> str:
        return render_text(text, self.variables, self.env)

    def _render_options(self, options: ConnectOptions) -> ConnectOptions:
        cert = options.client_cert
        return replace(
            options,
            header={name: self._render(value) for name, value in options.header.items()},
            protocol=None if options.protocol is None else self._render(options.protocol),
            client_cert=(
                None
                if cert is None
                else replace(cert, key_password=self._render(cert.key_password))
            ),
        )

    def _check_call(self, step: CallStep, error: CallError | None) -> None:
        expected = step.result
        if expected is None:
            if error is not None:
                raise StepFailed(
                    self._failure(
                        f"expected success, got error {error.code} {_quote(error.message)}",
                        expected="success",
                        received=f"error {error.code} {_quote(error.message)}",
                    )
                )
            return
        want = f"error {expected.code}" + (
            f" {_quote(expected.message)}" if expected.message is not None else ""
        )
        if error is None:
            raise StepFailed(
                self._failure(
                    f"expected {want}, the call succeeded", expected=want, received="success"
                )
            )
        if error.code != expected.code or (
            expected.message is not None and error.message != expected.message
        ):
            got = f"error {error.code} {_quote(error.message)}"
            raise StepFailed(self._failure(f"expected {want}, got {got}", want, got))

    # ------------------------------------------------------------------ expectations

    async def _expect(self, step: Expect) -> None:
        timeout = self.scenario.timeout if step.timeout is None else step.timeout
        seen = await self._next_relevant(self.clock() + timeout)
        if seen is None:
            raise StepFailed(
                self._failure(
                    f"no event within {format_duration(timeout)}",
                    expected=describe_matcher(step.matcher),
                )
            )
        self._consume(seen, "step", step.pointer)
        outcome = match_event(
            step.matcher,
            seen.event,
            self.variables,
            self.env,
            ignore_pointers=self.scenario.ignore_pointers,
        )
        if not outcome.ok:
            raise StepFailed(self._mismatch(step.matcher, seen.event, outcome))
        self._save(step.save, seen.event, outcome.captures)

    async def _unordered(self, step: Unordered) -> None:
        waits = [self.scenario.timeout if e.timeout is None else e.timeout for e in step.expects]
        timeout = step.timeout if step.timeout is not None else max(waits, default=0.0)
        deadline = self.clock() + timeout
        remaining = list(step.expects)
        while remaining:
            seen = await self._next_relevant(deadline)
            if seen is None:
                raise StepFailed(
                    self._failure(
                        f"no event within {format_duration(timeout)}; "
                        f"{len(remaining)} of {len(step.expects)} expectations unmet",
                        expected=_alternatives(remaining),
                    )
                )
            self._consume(seen, "step", step.pointer)
            for expect in remaining:
                outcome = match_event(
                    expect.matcher,
                    seen.event,
                    self.variables,
                    self.env,
                    ignore_pointers=self.scenario.ignore_pointers,
                )
                if outcome.ok:
                    seen.by = expect.pointer
                    self._save(expect.save, seen.event, outcome.captures)
                    remaining.remove(expect)
                    break
            else:
                raise StepFailed(
                    self._failure(
                        "the event matches none of the expectations left",
                        expected=_alternatives(remaining),
                        received=event_label(seen.event),
                    )
                )

    async def _nothing(self, step: ExpectNothing) -> None:
        deadline = self.clock() + step.duration
        seen = await self._next_relevant(deadline)
        if seen is None:
            await self._wait_until(deadline)  # nothing more can come (reading stopped, say)
            return
        self._consume(seen, "step", step.pointer)
        raise StepFailed(
            self._failure(
                f"expected no event for {format_duration(step.duration)}, one arrived",
                expected="no event",
                received=event_label(seen.event),
            )
        )

    async def _sleep(self, duration: float) -> None:
        deadline = self.clock() + duration
        while self.rules and await self._receive(deadline, keep=True) is not None:
            pass
        await self._wait_until(deadline)

    async def _wait_until(self, deadline: float) -> None:
        """Let the time left until ``deadline`` pass: a step's wait lasts as long as written,
        also when the driver has nothing more to say before it. What is held back goes out
        first, even with no time left (``sleep: 0`` flushes and lets other tasks run)."""
        await self.driver.flush()
        await anyio.sleep(max(deadline - self.clock(), 0.0))

    def _save(self, save: Mapping[str, str], event: Event, captures: Mapping[str, JSON]) -> None:
        self.variables.update(captures)
        if save:
            self.variables.update(save_values(save, event))

    # ------------------------------------------------------------------ the event stream

    async def _next_relevant(self, deadline: float) -> _Seen | None:
        """The next event not consumed by a rule and not on the ignore list."""
        while (seen := await self._receive(deadline)) is not None:
            if not self._ignored(seen.event):
                return seen
            self._consume(seen, "ignored", "")
        return None

    async def _receive(self, deadline: float, *, keep: bool = False) -> _Seen | None:
        """The next event no rule took, from the queue or the driver, before ``deadline``.

        With ``keep`` the event stays queued for later steps (rules still see it first).
        """
        if self._pending and not keep:
            return self._pending.popleft()
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return None
            event = await self.driver.next_event(within=remaining)
            if event is None:
                return None
            seen = self._record(event)
            if not (self.rules and await self._offer_to_rules(seen)):
                if keep:
                    self._pending.append(seen)
                return seen

    def _record(self, event: Event) -> _Seen:
        """Keep an event from the driver for the report (and note the connection's end)."""
        seen = _Seen(event)
        self._seen.append(seen)
        if event.name == ENDING_EVENT:
            self.ended = True
            seen.after_hang_up = self._hung_up
        return seen

    def _ignored(self, event: Event) -> bool:
        return any(
            matcher.event == event.name
            and match_event(
                matcher,
                event,
                self.variables,
                self.env,
                ignore_pointers=self.scenario.ignore_pointers,
            ).ok
            for matcher in self.scenario.ignore
        )

    @staticmethod
    def _consume(seen: _Seen, disposition: Disposition, by: str) -> None:
        seen.disposition = disposition
        seen.by = by

    # ------------------------------------------------------------------ strict

    async def _check_leftovers(self, index: int, strict: SourceRef) -> None:
        """Report as failed the events already received that nothing took (``strict``)."""
        begin = self.clock()
        await self._take_arrived()
        left = [seen.event for seen in self._pending if self._left_over(seen)]
        self._pending.clear()
        if not left:
            return
        count = f"{len(left)} event{'s' if len(left) != 1 else ''}"
        named = ", ".join(event_label(event) for event in left[:SHOWN_LEFTOVERS])
        more = f" and {len(left) - SHOWN_LEFTOVERS} more" if len(left) > SHOWN_LEFTOVERS else ""
        failure = self._failure(
            f"{count} no step took: {named}{more}",
            expected="no event left over",
            received=event_label(left[0]),
        )
        self._report(
            StepResult(
                index=index,
                kind="strict",
                what="strict: no event left over",
                position=strict.position,
                pointer=strict.pointer,
                started=begin - self.started,
                duration=self.clock() - begin,
                failure=failure,
            )
        )

    async def _before_hanging_up(self) -> None:
        """Before a step closes or drops a ``strict`` connection, take what already arrived:
        a ``close`` among it was the peer's own, not the answer to this side's."""
        if self.scenario.strict is not None:
            await self._take_arrived()

    async def _take_arrived(self) -> None:
        """Queue for the steps the events the driver already holds (rules see them first)."""
        while (event := await self.driver.next_event(within=0)) is not None:
            seen = self._record(event)
            if not (self.rules and await self._offer_to_rules(seen)):
                self._pending.append(seen)

    def _left_over(self, seen: _Seen) -> bool:
        """Whether an event no step or rule took counts against ``strict``.

        Ignored events do not, nor a ``dataEnd`` (its message does), nor a ``close`` that
        arrived after the script's own ``close`` or ``drop`` (its answer).
        """
        event = seen.event
        if self._ignored(event):
            self._consume(seen, "ignored", "")
            return False
        answer = seen.after_hang_up and event.name == ENDING_EVENT
        return event.name != TRAILING_EVENT and not answer

    # ------------------------------------------------------------------ rules

    async def _offer_to_rules(self, seen: _Seen) -> bool:
        """Give the event to the first matching rule; ``True`` if one took it."""
        event = seen.event
        for index, rule in enumerate(self.rules):
            if rule.on.event != event.name or (rule.once and index in self._fired):
                continue
            outcome = match_event(
                rule.on,
                event,
                self.variables,
                self.env,
                ignore_pointers=self.scenario.ignore_pointers,
            )
            if not outcome.ok:
                continue
            self._fired.add(index)
            seen.disposition = "rule"
            seen.by = rule.pointer
            await self._fire(index, rule, event, outcome.captures)
            return True
        return False

    async def _fire(
        self, index: int, rule: Rule, event: Event, captures: Mapping[str, JSON]
    ) -> None:
        """Run a rule's actions; a failing action is reported as a failed ``rule`` step."""
        begin = self.clock()
        try:
            if captures or rule.save:
                self._save(rule.save, event, captures)
            for action in rule.actions:
                if isinstance(action, Sleep):
                    await self.driver.flush()
                    await anyio.sleep(action.duration)
                else:
                    await self._perform(action, event)
        except StepFailed as exc:
            failure: Failure = exc.failure
        except (TemplateError, SaveError) as exc:
            failure = self._failure(str(exc))
        else:
            return
        self._report(
            StepResult(
                index=index,
                kind="rule",
                what=hide(f"rule on {describe_matcher(rule.on)}", self._secrets),
                position=rule.position,
                pointer=rule.pointer,
                started=begin - self.started,
                duration=self.clock() - begin,
                failure=failure,
            )
        )

    # ------------------------------------------------------------------ failures

    def _failure(
        self,
        message: str,
        expected: str | None = None,
        received: str | None = None,
        diff: Sequence[str] = (),
    ) -> Failure:
        failure = Failure(
            message=message,
            expected=expected,
            received=received,
            diff=tuple(diff),
            variables=dict(self.variables),
        )
        return self._hidden(failure) if self._secrets else failure

    def _hidden(self, failure: Failure) -> Failure:
        """``failure`` without the values of ``WSCENARIO_SECRET_*`` variables."""
        secrets = self._secrets
        return Failure(
            message=hide(failure.message, secrets),
            expected=hide(failure.expected, secrets),
            received=hide(failure.received, secrets),
            diff=hide(failure.diff, secrets),
            variables=hide(dict(failure.variables), secrets),
        )

    def _mismatch(self, matcher: EventMatcher, event: Event, outcome: MatchResult) -> Failure:
        return self._failure(
            outcome.explanation,
            expected=describe_matcher(matcher),
            received=event_label(event),
            diff=self._json_diff(matcher, event, {m.pointer for m in outcome.mismatches}),
        )

    def _json_diff(
        self, matcher: EventMatcher, event: Event, mismatched: Collection[str]
    ) -> Sequence[str]:
        """A diff of the expected and received JSON, when both sides are JSON."""
        if matcher.event != event.name:
            return ()
        subset = True
        if isinstance(matcher.payload, JsonMatcher):
            subset = matcher.payload.mode == "subset"
            expected: JSON = matcher.payload.value
            if not isinstance(event.value, str):
                return ()
            try:
                received: JSON = json.loads(event.value)
            except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
                return ()
        elif matcher.payload is None and isinstance(matcher.fields, dict):
            expected = matcher.fields
            if not isinstance(event.value, dict):
                return ()
            received = event.value
        else:
            return ()
        with contextlib.suppress(TemplateError):
            expected = render_value(expected, self.variables, self.env)
        shown = aligned_for_diff(expected, received, subset=subset, mismatched=mismatched)
        return json_diff(*shown)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace('"', "'") if text else "''"


def _alternatives(expects: Sequence[Expect]) -> str:
    return " | ".join(describe_matcher(e.matcher) for e in expects)
