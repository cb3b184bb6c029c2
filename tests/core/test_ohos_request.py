"""The connect request a device sends: URL rules, headers, TLS policy, heartbeat clamping."""

from __future__ import annotations

import pytest

from wscenario.core.ohos_request import (
    Heartbeat,
    Target,
    connect_request,
    heartbeat,
    missing_certificate,
    parse_url,
    url_limit,
)
from wscenario.core.wire import ConnectRequest, TlsPolicy


def request_for(
    url: str, options: dict[str, object] | None = None, api: int | None = None
) -> ConnectRequest:
    target = parse_url(url, api)
    assert target is not None
    return connect_request(target, options or {}, api)


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("ws://example.com", Target("ws", "example.com", 80, "/")),
        ("wss://example.com?x=1", Target("wss", "example.com", 443, "/?x=1")),
        ("ws://example.com:8080/a/b?c", Target("ws", "example.com", 8080, "/a/b?c")),
        ("ws://[::1]:9000/", Target("ws", "::1", 9000, "/")),
    ],
)
def test_urls_are_parsed_as_the_device_does(url: str, target: Target) -> None:
    assert parse_url(url, None) == target


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "WS://example.com",
        "example.com",
        "ws://",
        "ws://example.com:99999/",
        "ws://example.com:x/",
        "ws://[::1/",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    assert parse_url(url, None) is None


@pytest.mark.parametrize(("api", "limit"), [(10, 1024), (15, 2048), (25, 2048), (26, 8196)])
def test_url_length_limit_follows_the_api(api: int, limit: int) -> None:
    assert url_limit(api) == limit
    base = "ws://h/"
    assert parse_url(base + "a" * (limit - 1 - len(base)), api) is not None
    assert parse_url(base + "a" * (limit - len(base)), api) is None


def test_normalised_url_keeps_only_a_non_default_port() -> None:
    assert request_for("ws://h?x").url == "ws://h/?x"
    assert request_for("wss://h:443").url == "wss://h/"
    assert request_for("ws://[::1]:81").url == "ws://[::1]:81/"


def test_request_headers_in_device_order() -> None:
    options: dict[str, object] = {
        "header": {"X-Token": "abc", "Empty": "", "Number": 5, "Host": "dup"},
        "protocol": "chat",
    }
    request = request_for("ws://h:8080/p", options)
    assert request.headers == (
        ("Pragma", "no-cache"),
        ("Cache-Control", "no-cache"),
        ("Host", "h:8080"),
        ("Origin", "http://h"),
        ("x-token", "abc"),
        ("host", "dup"),
    )
    assert request.subprotocols == ("chat",)
    assert (request.connect_timeout, request.handshake_timeout) == (20.0, 15.0)
    assert request.timeout_per_stage  # TLS and the upgrade get 15 s each


def test_wrong_typed_header_option_is_ignored() -> None:
    assert len(request_for("ws://h", {"header": "x: y", "protocol": ""}).headers) == 4
    assert request_for("ws://h", {"protocol": ""}).subprotocols == ()


@pytest.mark.parametrize(
    ("url", "api", "host"),
    [
        ("ws://h:8080", 18, "h"),
        ("ws://h:8080", 20, "h:8080"),
        ("ws://h:80", None, "h"),
        ("wss://h:443", None, "h"),
        ("wss://h:80", None, "h:80"),
    ],
)
def test_host_carries_a_non_default_port_from_api_20(url: str, api: int | None, host: str) -> None:
    assert dict(request_for(url, api=api).headers)["Host"] == host


@pytest.mark.parametrize(
    ("url", "options", "api", "origin"),
    [
        ("wss://h:8443", {}, None, "https://h"),
        ("wss://h:8443", {"supportOriginPort": True}, None, "https://h:8443"),
        ("wss://h:8443", {"supportOriginPort": True}, 25, "https://h"),
        ("ws://h", {"supportOriginPort": True}, None, "http://h"),
    ],
)
def test_origin_has_no_port_unless_asked(
    url: str, options: dict[str, object], api: int | None, origin: str
) -> None:
    assert dict(request_for(url, options, api).headers)["Origin"] == origin


def test_tls_policy_defaults_to_the_device_rules() -> None:
    assert request_for("wss://h").tls == TlsPolicy(mode="device")


def test_tls_policy_carries_ca_and_client_certificate() -> None:
    options: dict[str, object] = {
        "caPath": "/ca.pem",
        "clientCert": {"certPath": "/c.pem", "keyPath": "/k.pem", "keyPassword": "pw"},
    }
    assert request_for("wss://h", options).tls == TlsPolicy(
        mode="device", cafile="/ca.pem", certfile="/c.pem", keyfile="/k.pem", password="pw"
    )
    no_password: dict[str, object] = {"clientCert": {"certPath": "/c.pem", "keyPath": "/k.pem"}}
    assert request_for("wss://h", no_password).tls.password == ""
    ignored: dict[str, object] = {"clientCert": {"certPath": ""}, "caPath": 3}
    assert request_for("wss://h", ignored).tls == TlsPolicy(mode="device")


@pytest.mark.parametrize(("api", "mode"), [(19, "device"), (20, "none"), (None, "none")])
def test_skip_server_cert_verification_from_api_20(api: int | None, mode: str) -> None:
    tls = request_for("wss://h", {"skipServerCertVerification": True}, api).tls
    assert (tls.mode, tls.allow_expired) == (mode, mode == "none")
    assert request_for("wss://h", {"skipServerCertVerification": 1}).tls.mode == "device"


def test_missing_certificates() -> None:
    present = {"/ca.pem", "/c.pem", "/k.pem"}.__contains__
    assert missing_certificate({}, present) is None
    assert missing_certificate({"caPath": "/ca.pem"}, present) is None
    assert missing_certificate({"caPath": 5}, present) is None
    missing = missing_certificate({"caPath": "/other.pem"}, present)
    assert missing is not None
    assert (missing.code, missing.message) == (
        2302002,
        "Websocket certificate file does not exist",
    )
    good = {"certPath": "/c.pem", "keyPath": "/k.pem"}
    assert missing_certificate({"clientCert": good}, present) is None
    assert missing_certificate({"clientCert": {"certPath": "/c.pem"}}, present) == missing
    assert missing_certificate({"clientCert": {**good, "keyPath": "/x"}}, present) == missing
    assert missing_certificate({"clientCert": {**good, "certPath": "/x"}}, present) == missing
    assert missing_certificate({"clientCert": {"keyPath": "/x"}}, present) is None
    assert missing_certificate({"clientCert": "c.pem"}, present) is None


@pytest.mark.parametrize(
    ("options", "api", "expected"),
    [
        ({"pingInterval": 5}, 10, Heartbeat(0, 0)),
        ({"pingInterval": 5}, 11, Heartbeat(0, 0)),
        ({"pingInterval": 5}, 12, Heartbeat(30, 30)),
        ({"pingInterval": 5}, 20, Heartbeat(30, 30)),
        ({}, None, Heartbeat(30, 30)),
        ({"pingInterval": 5}, 21, Heartbeat(5, 30)),
        ({"pingInterval": 5, "pongTimeout": 10}, None, Heartbeat(5, 5)),
        ({"pingInterval": 5, "pongTimeout": 3}, None, Heartbeat(5, 3)),
        ({"pingInterval": 1, "pongTimeout": 1}, None, Heartbeat(1, 1)),
        ({"pingInterval": 0, "pongTimeout": 10}, None, Heartbeat(0, 0)),
        ({"pingInterval": 30001}, None, Heartbeat(30, 30)),
        ({"pingInterval": -1}, None, Heartbeat(30, 30)),
        ({"pingInterval": 30000, "pongTimeout": 40000}, None, Heartbeat(30000, 30000)),
        ({"pingInterval": 2.5, "pongTimeout": -4}, None, Heartbeat(2, 30)),
        ({"pingInterval": True, "pongTimeout": "5"}, None, Heartbeat(30, 30)),
        ({"pingInterval": 10, "pongTimeout": 0}, None, Heartbeat(10, 0)),
    ],
)
def test_heartbeat_clamping(
    options: dict[str, object], api: int | None, expected: Heartbeat
) -> None:
    assert heartbeat(options, api) == expected
