"""Argument parsing of connect/send/close: the ArkTS overloads and their 401s."""

from __future__ import annotations

import pytest

from wscenario.core.events import CallError
from wscenario.core.ohos_args import (
    MAX_SEND_BYTES,
    ConnectArgs,
    parse_close,
    parse_connect,
    parse_send,
)

P401 = CallError(401, "Parameter error")


def cb(*_: object) -> None:
    """A callback."""


def test_connect_overloads() -> None:
    assert parse_connect(("ws://h",)).params == ConnectArgs("ws://h", {})
    assert parse_connect(("ws://h",)).callback is None
    parsed = parse_connect(("ws://h", cb))
    assert (parsed.params, parsed.callback) == (ConnectArgs("ws://h", {}), cb)
    options = {"protocol": "chat", "proxy": "no-proxy"}
    parsed = parse_connect(("ws://h", options))
    assert (parsed.params, parsed.callback) == (ConnectArgs("ws://h", options), None)
    parsed = parse_connect(("ws://h", options, cb))
    assert (parsed.params, parsed.callback) == (ConnectArgs("ws://h", options), cb)


@pytest.mark.parametrize(
    ("args", "gets_callback"),
    [
        ((), False),
        (("ws://h", {}, cb, cb), True),
        ((42,), False),
        ((42, cb), True),
        (("ws://h", None), False),
        (("ws://h", "options"), False),
        (("ws://h", {}, "not a callback"), False),
        (("ws://h", None, cb), True),
        (("ws://h", {"protocol": 5}, cb), True),
        (("ws://h", {"proxy": "direct"}), False),
        (("ws://h", {"proxy": {"host": "p", "port": 70000}}), False),
        (("ws://h", {"proxy": {"host": "p", "port": -1}}), False),
    ],
)
def test_connect_401(args: tuple[object, ...], gets_callback: bool) -> None:
    parsed = parse_connect(args)
    assert parsed.params == P401
    assert parsed.callback is (cb if gets_callback else None)


@pytest.mark.parametrize(
    "options",
    [
        {"proxy": "system"},
        {"proxy": {"host": "p", "port": 8080}},
        {"proxy": {"host": "p", "port": "x"}},
        {"header": 5, "caPath": 1, "pingInterval": "x", "skipServerCertVerification": "yes"},
    ],
)
def test_connect_ignores_wrong_typed_options_that_are_not_checked(
    options: dict[str, object],
) -> None:
    assert parse_connect(("ws://h", options)).params == ConnectArgs("ws://h", options)


def test_send_overloads() -> None:
    assert parse_send(("hi",)).params == "hi"
    parsed = parse_send((bytearray(b"\x00\x01"), cb))
    assert (parsed.params, parsed.callback) == (b"\x00\x01", cb)
    assert parse_send(("é" * (MAX_SEND_BYTES // 2),)).params == "é" * (MAX_SEND_BYTES // 2)
    assert parse_send((b"x" * MAX_SEND_BYTES,)).params == b"x" * MAX_SEND_BYTES
    assert parse_send(("x" * MAX_SEND_BYTES,)).params == "x" * MAX_SEND_BYTES


@pytest.mark.parametrize(
    ("args", "gets_callback"),
    [
        ((), False),
        (("a", cb, cb), True),
        ((5,), False),
        ((memoryview(b"ab"), cb), True),
        (("a", "b"), False),
        ((b"x" * (MAX_SEND_BYTES + 1), cb), True),
        (("é" * (MAX_SEND_BYTES // 2 + 1),), False),
        (("x" * (MAX_SEND_BYTES + 1),), False),
        (("x" * (MAX_SEND_BYTES - 1) + "é",), False),  # one more byte than characters
    ],
)
def test_send_401(args: tuple[object, ...], gets_callback: bool) -> None:
    parsed = parse_send(args)
    assert parsed.params == P401
    assert parsed.callback is (cb if gets_callback else None)


def test_close_overloads() -> None:
    assert parse_close(()).params == {}
    options = {"code": 4000, "reason": 7}
    assert parse_close((options,)).params == options
    parsed = parse_close((cb,))
    assert (parsed.params, parsed.callback) == ({}, cb)
    parsed = parse_close((options, cb))
    assert (parsed.params, parsed.callback) == (options, cb)


@pytest.mark.parametrize(
    ("args", "gets_callback"),
    [
        (({}, cb, cb), True),
        ((None,), False),
        (("bye",), False),
        (({}, "x"), False),
        ((None, cb), True),
        ((cb, cb), True),
    ],
)
def test_close_401(args: tuple[object, ...], gets_callback: bool) -> None:
    parsed = parse_close(args)
    assert parsed.params == P401
    assert parsed.callback is (cb if gets_callback else None)
