"""What a scenario observes at run time: events and call outcomes.

The client drivers (ohos emulation, raw protocol) and the fake server all report what happens
as ``Event`` values, in the order an app would see them; steps consume and match them.
"""

from __future__ import annotations

from dataclasses import dataclass

from wscenario.core.model import JSON

EventValue = JSON | bytes
"""An event's value: a dict for most events, ``str``/``bytes`` for messages, ``None`` for
``dataEnd``."""


@dataclass(frozen=True)
class Event:
    """One observed event: its name (``open``, ``message``, ``close``...), value and time.

    ``t`` is seconds since the session started, from the engine's clock.
    """

    name: str
    value: EventValue
    t: float = 0.0


@dataclass(frozen=True)
class CallError:
    """A call's documented failure, as the device reports it: ``{code, message}``."""

    code: int
    message: str
