"""The ``on``/``off`` registry: one listener per name, strict identity, synchronous 401."""

from __future__ import annotations

import pytest

from wscenario.core.ohos_listeners import ListenerArgumentError, ListenerRegistry, event_names


def first(*_: object) -> None:
    """A listener."""


def second(*_: object) -> None:
    """Another listener."""


def test_on_replaces_the_previous_listener() -> None:
    registry = ListenerRegistry()
    registry.on("message", first)
    registry.on("message", second)
    assert registry.get("message") is second


def test_off_with_name_removes_the_listener() -> None:
    registry = ListenerRegistry()
    registry.on("open", first)
    registry.off("open")
    assert not registry.has("open")
    registry.off("open")  # nothing left: still fine
    assert registry.get("open") is None


def test_off_with_callback_removes_only_that_callback() -> None:
    registry = ListenerRegistry()
    registry.on("close", first)
    registry.off("close", second)
    assert registry.get("close") is first
    registry.off("close", first)
    assert not registry.has("close")


def test_unknown_names_are_ignored() -> None:
    registry = ListenerRegistry()
    registry.on("ping", first)
    registry.off("ping", first)
    assert not registry.has("ping")


@pytest.mark.parametrize(
    ("api", "names"),
    [
        (6, ("open", "message", "close", "error")),
        (11, ("open", "message", "close", "error", "dataEnd")),
        (20, ("open", "message", "close", "error", "dataEnd", "headerReceive")),
        (None, ("open", "message", "close", "error", "dataEnd", "headerReceive", "openInfo")),
    ],
)
def test_event_names_follow_the_api_level(api: int | None, names: tuple[str, ...]) -> None:
    assert event_names(api) == names
    registry = ListenerRegistry(api)
    registry.on("headerReceive", first)
    assert registry.has("headerReceive") == ("headerReceive" in names)


@pytest.mark.parametrize(
    "args",
    [(), ("open",), ("open", first, first), (1, first), ("open", "not a function")],
)
def test_bad_on_arguments_throw_401(args: tuple[object, ...]) -> None:
    with pytest.raises(ListenerArgumentError) as raised:
        ListenerRegistry().on(*args)
    assert raised.value.code == "401"
    assert raised.value.message == "Parameter error"
    assert str(raised.value) == "Parameter error"


@pytest.mark.parametrize("args", [(), (None,), ("open", None), ("open", first, first)])
def test_bad_off_arguments_throw_401(args: tuple[object, ...]) -> None:
    registry = ListenerRegistry()
    registry.on("open", first)
    with pytest.raises(ListenerArgumentError):
        registry.off(*args)
    assert registry.get("open") is first
