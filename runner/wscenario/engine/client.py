"""Run one client scenario: pick the driver for its profile, run its steps, collect results.

``profile: ohos`` drives the emulated ``@ohos.net.webSocket`` object, ``profile: raw`` the
protocol-level client. A connection still open when the steps end, whatever their outcome, is
closed politely (ohos: ``close()`` with the device's defaults; raw: 1000); one cut short by a
stop request is closed with 1001.

Like an app, an ohos scenario listens to ``open``, ``message``, ``close`` and ``error``, and to
``dataEnd`` and ``headerReceive`` only where it mentions them (in an expectation or in
``ignore``): the device delivers an event only to a listener registered for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import replace

import anyio

from wscenario.core.model import JSON, ClientSpec, EventMatcher, Expect, Scenario, Unordered
from wscenario.engine.clock import loop_clock
from wscenario.engine.ohos_driver import OhosDriver
from wscenario.engine.raw_driver import RawClientDriver
from wscenario.engine.steps import Clock, StepCallback, StepRunner
from wscenario.errors import UsageError, WScenarioError
from wscenario.report.results import ScenarioResult, SessionResult

OPTIONAL_LISTENERS = ("dataEnd", "headerReceive")
"""ohos events a scenario listens to only when it mentions them."""

GOING_AWAY = (1001, "going away")
"""The close code and reason of a connection whose run was stopped."""

UNREACHABLE = frozenset({"refused", "dns"})
"""Handshake failure kinds that mean the target could not be reached at all."""


class ScenarioInterrupted(Exception):
    """The scenario was stopped before its steps ended; its connection was closed with 1001.

    ``result`` is what it did until then (an ``interrupted`` result).
    """

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.name)
        self.result = result


def mentioned_events(scenario: Scenario) -> frozenset[str]:
    """The event names the scenario's expectations and ``ignore`` list refer to."""
    matchers: list[EventMatcher] = list(scenario.ignore)
    for step in scenario.steps:
        if isinstance(step, Expect):
            matchers.append(step.matcher)
        elif isinstance(step, Unordered):
            matchers.extend(expect.matcher for expect in step.expects)
    return frozenset(matcher.event for matcher in matchers)


def client_driver(
    client: ClientSpec,
    scenario: Scenario,
    *,
    warn: Callable[[str], object] | None = None,
    clock: Clock = anyio.current_time,
) -> OhosDriver | RawClientDriver:
    """The driver for the scenario's profile (not yet entered); ``clock`` times its events."""
    if client.profile == "raw":
        return RawClientDriver(
            scenario.limits, insecure=client.insecure, frames=client.frames, warn=warn, clock=clock
        )
    driver = OhosDriver(api=client.api, limits=scenario.limits, clock=clock)
    for name in set(OPTIONAL_LISTENERS) - mentioned_events(scenario):
        driver.websocket.off(name)
    return driver


def unreachable_outcome(
    session: SessionResult, driver: OhosDriver | RawClientDriver
) -> SessionResult:
    """``session``, as could-not-run when it failed and its target could not be reached.

    A scenario that expects the failed connection passes and stays as it is; one that fails
    after its latest connection attempt was refused (or its host not found) did not test the
    server at all, so its ``error`` says which target could not be reached.
    """
    failure = driver.handshake_failure
    if session.passed or session.error is not None or failure is None:
        return session
    url, failed = failure
    if failed.kind not in UNREACHABLE:
        return session
    return replace(session, error=f"could not reach {url}: {failed.message}")


async def run_client_scenario(
    scenario: Scenario,
    *,
    env: Mapping[str, str],
    variables: MutableMapping[str, JSON] | None = None,
    on_step: StepCallback | None = None,
    warn: Callable[[str], object] | None = None,
    stop: anyio.CancelScope | None = None,
) -> ScenarioResult:
    """Run ``scenario`` against its server and return what happened.

    ``variables`` default to the scenario's ``vars``. Problems that keep the scenario from
    running (an unreadable certificate, an unreachable server the scenario does not expect)
    come back as the result's ``error``, not raised.
    Cancelling ``stop`` (a scope not yet entered) cuts the steps short.

    Raises:
        UsageError: ``scenario`` is a server scenario.
        ScenarioInterrupted: ``stop`` was cancelled before the steps ended.
    """
    client = scenario.client
    if client is None:
        raise UsageError(f"{scenario.path} is a server scenario")
    clock = loop_clock()
    driver = client_driver(client, scenario, warn=warn, clock=clock)
    runner = StepRunner(
        scenario,
        driver,
        variables=dict(scenario.vars) if variables is None else variables,
        env=env,
        clock=clock,
        on_step=on_step,
    )
    steps = anyio.CancelScope() if stop is None else stop
    try:
        async with driver:
            with steps:
                await runner.run_steps()
            if steps.cancelled_caught:
                await driver.hang_up(*GOING_AWAY)
    except (WScenarioError, OSError) as exc:
        runner.error = runner.error or str(exc)
    result = ScenarioResult(
        name=scenario.name,
        path=str(scenario.path),
        side="client",
        session=unreachable_outcome(runner.result(total_steps=len(scenario.steps)), driver),
    )
    if steps.cancelled_caught:
        raise ScenarioInterrupted(result.stopped())
    return result
