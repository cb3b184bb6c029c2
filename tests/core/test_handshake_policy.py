"""How the fake server answers a handshake: routing, requirements, subprotocols, refusals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from wscenario.core.diagnostics import Position
from wscenario.core.handshake_policy import (
    Accept,
    HandshakeRequest,
    Refuse,
    decide,
    offered_subprotocols,
    over_capacity,
    render_handshake,
)
from wscenario.core.model import JSON, Handshake, Reject, ServerSpec
from wscenario.core.scenario_loader import load_scenario
from wscenario.core.templating import TemplateError

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
    assert decision.why == "header authorization does not match the pattern ^Bearer .+"


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


def test_render_handshake_fills_templates_and_escapes_regex_values() -> None:
    spec = ServerSpec(
        path="/t",
        handshake=Handshake(
            require_headers={"authorization": "^Bearer {{ token }}$", "x-n": "^{{ n }}$"},
            origins=("https://{{ env.HOST }}",),
            protocol="{{ proto }}",
            reject=Reject(status=401, body="need {{ token }}", headers={"x-why": "{{ n }}"}),
        ),
    )
    variables: dict[str, JSON] = {"token": "a+b.c", "n": 1.5, "proto": "chat.v1"}
    rendered = render_handshake(spec, variables, {"HOST": "app.example"})
    handshake = rendered.handshake
    assert handshake.origins == ("https://app.example",)
    assert handshake.protocol == "chat.v1"
    assert handshake.reject.body == "need a+b.c"
    assert handshake.reject.headers == {"x-why": "1.5"}
    good = HandshakeRequest(
        "/t", (("authorization", "Bearer a+b.c"), ("origin", "https://app.example"), ("x-n", "1.5"))
    )
    assert decide(good, {"/t": rendered}) == Accept(path="/t")
    loose = HandshakeRequest(
        "/t", (("authorization", "Bearer aab.c"), ("origin", "https://app.example"), ("x-n", "1.5"))
    )
    assert isinstance(decide(loose, {"/t": rendered}), Refuse)


def test_render_handshake_keeps_absent_rules_absent() -> None:
    spec = ServerSpec(path="/")
    assert render_handshake(spec, {}, {}) == spec


def test_render_handshake_refuses_unknown_names() -> None:
    spec = ServerSpec(path="/", handshake=Handshake(reject=Reject(body="{{ missing }}")))
    with pytest.raises(TemplateError):
        render_handshake(spec, {}, {})


GUARDED = """\
wscenario: 1
vars: {token: t.1}
server:
  path: /chat
  handshake:
    require:
      header:
        Authorization: "^Bearer {{ token }}$"
    origins: [https://app.example]
    reject: {status: 401}
steps: []
"""


def loaded(tmp_path: Path, text: str) -> ServerSpec:
    path = tmp_path / "guarded.yaml"
    path.write_text(text)
    scenario = load_scenario(path)
    assert scenario.server is not None
    return render_handshake(scenario.server, scenario.vars, {})


@pytest.mark.parametrize(
    ("headers", "pointer", "line", "col"),
    [
        ((), "/server/handshake/require/header/Authorization", 8, 9),
        (
            (("authorization", "Bearer tx1"),),
            "/server/handshake/require/header/Authorization",
            8,
            9,
        ),
        ((("authorization", "Bearer t.1"),), "/server/handshake/origins", 9, 5),
    ],
)
def test_a_refusal_names_where_the_failing_check_was_written(
    tmp_path: Path, headers: tuple[tuple[str, str], ...], pointer: str, line: int, col: int
) -> None:
    spec = loaded(tmp_path, GUARDED)
    decision = decide(HandshakeRequest("/chat", headers), {"/chat": spec})
    assert isinstance(decision, Refuse)
    assert decision.source is not None
    assert decision.source.pointer == pointer
    assert decision.source.position == Position(str(tmp_path / "guarded.yaml"), line, col)


def test_a_refusal_without_a_written_check_names_the_handshake_section(tmp_path: Path) -> None:
    spec = loaded(tmp_path, GUARDED.replace("    origins: [https://app.example]\n", ""))
    assert set(spec.handshake.sources) == {"handshake", "header authorization"}
    section = spec.handshake.sources["handshake"]
    assert (section.pointer, section.position.line) == ("/server/handshake", 5)
    unplaced = replace(spec.handshake, sources={"handshake": section})
    decision = decide(HandshakeRequest("/chat"), {"/chat": replace(spec, handshake=unplaced)})
    assert isinstance(decision, Refuse)
    assert decision.source == section
    bare = loaded(tmp_path, "wscenario: 1\nserver: {path: /}\nsteps: []\n")
    assert bare.handshake.sources == {}
    assert decide(HandshakeRequest("/x"), {"/": bare}).source is None  # type: ignore[union-attr]
