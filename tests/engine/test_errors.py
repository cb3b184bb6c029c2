"""How transport and connect exceptions map to wire events (table-driven)."""

from __future__ import annotations

import errno
import socket
import ssl

import anyio
import pytest

from wscenario.core.wire import ConnectionLost, HandshakeFailed
from wscenario.engine.errors import (
    ConnectionClosed,
    HandshakeError,
    TlsSetupError,
    connect_failure_from,
    lost_from,
)
from wscenario.errors import CannotRun


def caused(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (anyio.EndOfStream(), ("eof", "connection closed without a close frame")),
        (
            caused(anyio.BrokenResourceError(), ssl.SSLEOFError(8, "EOF occurred")),
            ("eof", "connection closed without a close frame"),
        ),
        (
            caused(anyio.BrokenResourceError(), ssl.SSLError(1, "bad record mac")),
            ("tls", "SSLError: bad record mac"),
        ),
        (
            caused(anyio.BrokenResourceError(), ConnectionResetError(errno.ECONNRESET, "reset")),
            ("reset", "ConnectionResetError: [Errno 104] reset"),
        ),
        (anyio.ClosedResourceError(), ("reset", "connection ended while in use")),
        (TimeoutError(), ("timeout", "timed out")),
        (anyio.BrokenResourceError(), ("reset", "BrokenResourceError")),
    ],
)
def test_transport_errors_become_lost_connections(
    exc: BaseException, expected: tuple[str, str]
) -> None:
    lost = lost_from(exc)
    assert (lost.kind, lost.message) == expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            socket.gaierror(-2, "Name or service not known"),
            ("dns", "cannot resolve host: Name or service not known"),
        ),
        (
            caused(OSError("All connection attempts failed"), ConnectionRefusedError(111, "no")),
            ("refused", "connection refused"),
        ),
        (
            caused(
                OSError("All connection attempts failed"),
                OSError(errno.EHOSTUNREACH, "No route to host"),
            ),
            ("refused", "cannot connect: OSError: [Errno 113] No route to host"),
        ),
        (TimeoutError(), ("timeout", "timed out")),
        (
            TlsSetupError("wrong password for the private key 'k.pem'"),
            ("tls", "wrong password for the private key 'k.pem'"),
        ),
        (
            ssl.SSLError(1, "handshake failure"),
            ("tls", "TLS handshake failed: SSLError: handshake failure"),
        ),
        (anyio.EndOfStream(), ("tls", "connection closed during the TLS handshake")),
        (
            ValueError("server_hostname cannot be an empty string"),
            ("tls", "cannot start TLS: ValueError: server_hostname cannot be an empty string"),
        ),
    ],
)
def test_connect_errors_become_handshake_failures(
    exc: BaseException, expected: tuple[str, str]
) -> None:
    failed = connect_failure_from(exc)
    assert (failed.kind, failed.message) == expected


def test_engine_errors_carry_their_outcome_and_exit_code_3() -> None:
    failed = HandshakeFailed("status", "server answered 404 Not Found", 404)
    error = HandshakeError(failed)
    lost = ConnectionLost("reset", "gone")
    closed = ConnectionClosed("the connection is closed", lost)
    assert error.failed is failed
    assert str(error) == "handshake failed (status): server answered 404 Not Found"
    assert closed.lost is lost
    assert isinstance(error, CannotRun)
    assert error.exit_code == closed.exit_code == 3
