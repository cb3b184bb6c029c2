"""How the fake server answers a handshake: routing, requirements, subprotocols, refusals."""

from __future__ import annotations

import pytest

from wscenario.core.handshake_policy import (
    Accept,
    HandshakeRequest,
    Refuse,
    decide,
    offered_subprotocols,
    over_capacity,
)
from wscenario.core.model import Handshake, Reject, ServerSpec

TEXT = ("content-type", "text/plain; charset=utf-8")

CHAT = ServerSpec(
    path="/chat",
    handshake=Handshake(
        require_headers={"authorization": "^Bearer .+"},
        protocol="chat.v1",
        reject=Reject(status=401, body="unauthorized", headers={"WWW-Authenticate": "Bearer"}),
        delay=0.5,
    ),
)
FEED = ServerSpec(
    path="/feed",
    handshake=Handshake(origins=("https://app.example",)),
)
SPECS = {"/chat": CHAT, "/feed": FEED}
AUTH = ("Authorization", "Bearer abc")


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("/chat", "/chat"),
        ("/chat?token=1", "/chat"),
        ("/chat#x", "/chat"),
        ("", "/"),
        ("?a=b", "/"),
    ],
)
def test_path_drops_query_and_fragment(target: str, path: str) -> None:
    assert HandshakeRequest(target).path == path


def test_header_is_case_insensitive_and_joins_repeats() -> None:
    request = HandshakeRequest("/", (("X-A", "1"), ("x-a", "2"), ("B", "3")))
    assert request.header("x-A") == "1, 2"
    assert request.header("b") == "3"
    assert request.header("missing") is None


def test_offered_subprotocols_reads_every_header() -> None:
    headers = (
        ("Sec-WebSocket-Protocol", "chat.v2, chat.v1"),
        ("Host", "x"),
        ("sec-websocket-protocol", " ,feed"),
    )
    assert offered_subprotocols(headers) == ("chat.v2", "chat.v1", "feed")
    assert offered_subprotocols(()) == ()


def test_accepts_with_offered_subprotocol_and_delay() -> None:
    request = HandshakeRequest("/chat?x=1", (AUTH,), ("other", "chat.v1"))
    assert decide(request, SPECS) == Accept(path="/chat", subprotocol="chat.v1", delay=0.5)


def test_accepts_without_subprotocol_when_not_offered() -> None:
    request = HandshakeRequest("/chat", (AUTH,), ("other",))
    assert decide(request, SPECS) == Accept(path="/chat", subprotocol=None, delay=0.5)


def test_accepts_with_no_subprotocol_configured() -> None:
    spec = ServerSpec(path="/")
    assert decide(HandshakeRequest("/", (), ("chat.v1",)), {"/": spec}) == Accept(path="/")


def test_missing_required_header_gives_the_scenarios_reject() -> None:
    decision = decide(HandshakeRequest("/chat"), SPECS)
    assert decision == Refuse(
        status=401,
        body="unauthorized",
        headers=(TEXT, ("WWW-Authenticate", "Bearer")),
        why="missing header authorization",
        path="/chat",
    )


def test_header_not_matching_is_refused() -> None:
    decision = decide(HandshakeRequest("/chat", (("authorization", "Basic x"),)), SPECS)
    assert isinstance(decision, Refuse)
    assert decision.status == 401
    assert decision.why == "header authorization does not match '^Bearer .+'"


def test_reject_keeps_its_own_content_type() -> None:
    spec = ServerSpec(
        path="/",
        handshake=Handshake(
            require_headers={"x-key": "k"},
            reject=Reject(status=400, body="{}", headers={"Content-Type": "application/json"}),
        ),
    )
    decision = decide(HandshakeRequest("/"), {"/": spec})
    assert isinstance(decision, Refuse)
    assert decision.headers == (("Content-Type", "application/json"),)
    assert decision.body == "{}"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((), "no Origin header"),
        ((("Origin", "https://evil.example"),), "origin https://evil.example not allowed"),
    ],
)
def test_origin_outside_allow_list_is_refused_with_default_403(
    headers: tuple[tuple[str, str], ...], expected: str
) -> None:
    decision = decide(HandshakeRequest("/feed", headers), SPECS)
    assert isinstance(decision, Refuse)
    assert (decision.status, decision.why, decision.path) == (403, expected, "/feed")


def test_allowed_origin_is_accepted() -> None:
    request = HandshakeRequest("/feed", (("origin", "https://app.example"),))
    assert decide(request, SPECS) == Accept(path="/feed")


def test_unknown_path_is_404_naming_the_served_paths() -> None:
    decision = decide(HandshakeRequest("/nope", (AUTH,)), SPECS)
    assert isinstance(decision, Refuse)
    assert decision.status == 404
    assert decision.path is None
    assert decision.why == "unknown path"
    assert decision.body == "no scenario serves /nope (paths: /chat, /feed)\n"
    assert decision.headers == (TEXT,)


def test_no_scenarios_at_all() -> None:
    decision = decide(HandshakeRequest("/"), {})
    assert isinstance(decision, Refuse)
    assert decision.body == "no scenario serves / (paths: none)\n"


def test_over_capacity_is_503() -> None:
    decision = over_capacity(256)
    assert decision.status == 503
    assert decision.why == "more than 256 connections"
    assert decision.body.endswith("\n")
