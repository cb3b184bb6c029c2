"""What a run produced: step outcomes, the events seen, per session and per scenario.

These records are role-neutral: a client run (``wscenario run``) and each connection of the
fake server (``wscenario serve``) produce the same shapes, and every report reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from wscenario.core.diagnostics import Position
from wscenario.core.events import EventValue
from wscenario.core.model import JSON, Step
from wscenario.report.labels import describe_step

Outcome = Literal["passed", "failed"]
ScenarioOutcome = Literal["passed", "failed", "error", "interrupted"]


@dataclass(frozen=True)
class Failure:
    """Why a step failed.

    ``message`` says why, one line per difference (``no event within 5s``,
    ``/user: expected 'alice', got 'bob'``); ``expected`` and ``received`` are
    printable descriptions; ``diff`` holds unified-diff lines when both sides are JSON;
    ``variables`` are the variables in play when the step failed.
    """

    message: str
    expected: str | None = None
    received: str | None = None
    diff: tuple[str, ...] = ()
    variables: Mapping[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True)
class StepResult:
    """One step's outcome.

    ``kind`` is the step's key (``send``, ``expect``, ``rule``...); ``what`` the step that
    ran, or a short description of what ran (a rule, a handshake, or a step whose
    description had secrets to hide);
    ``started`` is seconds since the session started, ``duration`` in seconds.
    """

    index: int
    kind: str
    what: Step | str
    position: Position
    pointer: str
    started: float
    duration: float
    failure: Failure | None = None

    @property
    def outcome(self) -> Outcome:
        """``passed`` or ``failed``."""
        return "failed" if self.failure else "passed"

    @property
    def label(self) -> str:
        """A short description of the step, described from it when read (a run that reports
        only failures, or nothing, describes no passed step)."""
        return self.what if isinstance(self.what, str) else describe_step(self.what)


Disposition = Literal["step", "rule", "ignored", "unconsumed"]


@dataclass(frozen=True)
class SeenEvent:
    """One event observed during a session, and what took it.

    ``by`` is the JSON Pointer of the step or rule that consumed it (empty when ignored or
    never consumed).
    """

    t: float
    name: str
    value: EventValue
    disposition: Disposition = "unconsumed"
    by: str = ""


@dataclass(frozen=True)
class SessionResult:
    """The outcome of running a script of steps over one connection.

    ``error`` is set when the session could not run at all (not a mismatch: an I/O error or
    a missing file), which commands report with exit code 3. ``interrupted`` is set when
    Ctrl-C or SIGTERM stopped it before its steps ended (exit code 130). ``ran`` counts the
    steps that ran when ``steps`` keeps only some (a streaming replay keeps the failed one).
    """

    steps: tuple[StepResult, ...]
    events: tuple[SeenEvent, ...]
    variables: Mapping[str, JSON]
    duration: float
    total_steps: int
    error: str | None = None
    interrupted: bool = False
    ran: int | None = None

    @property
    def failed_step(self) -> StepResult | None:
        """The first failing step, if any."""
        return next((s for s in self.steps if s.failure), None)

    @property
    def steps_run(self) -> int:
        """How many of the script's steps ran (a rule's actions and the ``strict`` check are
        not steps): ``ran``, or counted from ``steps`` when it holds them all."""
        if self.ran is not None:
            return self.ran
        return sum(1 for s in self.steps if s.kind not in ("rule", "strict"))

    @property
    def progress(self) -> str:
        """``2 of 3 steps ran``, or ``5 steps ran`` when the total is not known to be more."""
        ran = self.steps_run
        plural = "s" if ran != 1 else ""
        if self.total_steps > ran:
            return f"{ran} of {self.total_steps} steps ran"
        return f"{ran} step{plural} ran"

    @property
    def passed(self) -> bool:
        """No step failed, every step ran, and nothing prevented the session from running."""
        return (
            self.error is None
            and not self.interrupted
            and self.failed_step is None
            and self.steps_run >= self.total_steps
        )


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario (or one fake-server connection) and its session.

    ``name`` is what reports show (for a server connection it may name the peer too).
    """

    name: str
    path: str
    side: Literal["client", "server"]
    session: SessionResult

    @property
    def outcome(self) -> ScenarioOutcome:
        """``interrupted`` when a signal stopped it, ``error`` when it could not run, else
        ``passed`` or ``failed``."""
        if self.session.interrupted:
            return "interrupted"
        if self.session.error is not None:
            return "error"
        return "passed" if self.session.passed else "failed"

    def stopped(self) -> ScenarioResult:
        """This result, marked as stopped by Ctrl-C or SIGTERM before its steps ended."""
        return replace(self, session=replace(self.session, interrupted=True))


def not_started(name: str, path: str, total_steps: int) -> ScenarioResult:
    """The result of a client scenario that Ctrl-C or SIGTERM stopped before it started."""
    session = SessionResult(
        steps=(), events=(), variables={}, duration=0.0, total_steps=total_steps, interrupted=True
    )
    return ScenarioResult(name=name, path=path, side="client", session=session)


def not_run(
    name: str, path: str, side: Literal["client", "server"], error: str, total_steps: int
) -> ScenarioResult:
    """The result of a scenario that could not run at all, and why."""
    session = SessionResult(
        steps=(), events=(), variables={}, duration=0.0, total_steps=total_steps, error=error
    )
    return ScenarioResult(name=name, path=path, side=side, session=session)
