"""The ``headerReceive`` value: lower-case names, joined known headers, first custom wins."""

from __future__ import annotations

from wscenario.core.ohos_headers import header_receive_value


def test_names_are_lower_case_and_values_strings() -> None:
    value = header_receive_value([("Upgrade", "websocket"), ("Sec-WebSocket-Accept", "abc=")])
    assert value == {"upgrade": "websocket", "sec-websocket-accept": "abc="}


def test_repeated_known_headers_are_joined() -> None:
    value = header_receive_value(
        [("Vary", "a"), ("vary", "b"), ("Set-Cookie", "x=1"), ("Set-Cookie", "y=2")]
    )
    assert value == {"vary": "a,b", "set-cookie": "x=1;y=2"}


def test_repeated_custom_headers_keep_the_first() -> None:
    assert header_receive_value([("X-Id", "1"), ("x-id", "2")]) == {"x-id": "1"}


def test_values_of_1024_bytes_or_more_come_through_empty() -> None:
    value = header_receive_value(
        [("X-Long", "a" * 1024), ("X-Fits", "a" * 1023), ("Server", "é" * 512)]
    )
    assert value == {"x-long": "", "x-fits": "a" * 1023, "server": ""}
