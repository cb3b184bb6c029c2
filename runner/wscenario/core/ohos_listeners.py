"""The listener registry behind ``on``/``off``: one listener per event name.

Registering replaces the previous listener of that name; ``off(name, fn)`` removes it only if
``fn`` is that very object; unknown names are ignored. Bad arguments raise synchronously, as
ArkTS throws, with the *string* code ``"401"``.
"""

from __future__ import annotations

from collections.abc import Callable

Listener = Callable[..., object]

_SINCE: dict[str, int] = {
    "open": 6,
    "message": 6,
    "close": 6,
    "error": 6,
    "dataEnd": 11,
    "headerReceive": 12,
    "openInfo": 26,
}
"""Each event name ``on`` accepts, and the API level that added it."""


class ListenerArgumentError(Exception):
    """``on``/``off`` called with arguments that fit no overload (thrown synchronously)."""

    code = "401"
    message = "Parameter error"

    def __init__(self) -> None:
        super().__init__(self.message)


def event_names(api: int | None) -> tuple[str, ...]:
    """The event names an app at ``api`` (``None``: newest) can subscribe to."""
    return tuple(name for name, since in _SINCE.items() if api is None or api >= since)


class ListenerRegistry:
    """The listeners of one WebSocket object."""

    def __init__(self, api: int | None = None) -> None:
        self._known = frozenset(event_names(api))
        self._listeners: dict[str, Listener] = {}

    def on(self, *args: object) -> None:
        """``on(type, callback)``: the callback becomes the only listener of ``type``."""
        if len(args) != 2 or not isinstance(args[0], str) or not callable(args[1]):
            raise ListenerArgumentError
        if args[0] in self._known:
            self._listeners[args[0]] = args[1]

    def off(self, *args: object) -> None:
        """``off(type[, callback])``: drop the listener (only if it is ``callback``, if given)."""
        if not 1 <= len(args) <= 2 or not isinstance(args[0], str):
            raise ListenerArgumentError
        if len(args) == 2 and not callable(args[1]):
            raise ListenerArgumentError
        name = args[0]
        if len(args) == 1 or self._listeners.get(name) is args[1]:
            self._listeners.pop(name, None)

    def get(self, name: str) -> Listener | None:
        """The listener of ``name`` now, if any."""
        return self._listeners.get(name)

    def has(self, name: str) -> bool:
        """Whether ``name`` has a listener now (checked when an event happens)."""
        return name in self._listeners
