"""How a fake server answers an opening handshake.

Several server scenarios may share one listener, each serving its own ``path``. Given what a
client asked for (request target, headers, offered subprotocols), ``decide`` routes the
request to the scenario serving that path and applies its ``handshake`` rules: required
headers, the ``Origin`` allow-list, the subprotocol to select and the delay before the 101.
It answers with an ``Accept`` or a ``Refuse`` (the scenario's ``reject``, a 404 for a path no
scenario serves, or a 503 when the server is full). The engine carries the answer out.

``{{ name }}`` templates in the handshake rules are rendered once, before serving
(``render_handshake``); a value put into a required-header regex matches literally.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from wscenario.core.model import JSON, Handshake, Reject, ServerSpec, SourceRef
from wscenario.core.templating import render_text

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class HandshakeRequest:
    """A client's opening handshake: its request target, headers and offered subprotocols."""

    target: str
    headers: Headers = ()
    subprotocols: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        """The target's path, without query string or fragment (``/`` when empty)."""
        path = self.target.split("?", 1)[0].split("#", 1)[0]
        return path or "/"

    def header(self, name: str) -> str | None:
        """All values of header ``name`` (any case) joined by ``", "``; ``None`` if absent."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ", ".join(values) if values else None


@dataclass(frozen=True)
class Accept:
    """Answer 101 on ``path`` after ``delay`` seconds, selecting ``subprotocol`` (or none);
    ``deflate``: agree to permessage-deflate if the client offers it."""

    path: str
    subprotocol: str | None = None
    delay: float = 0.0
    deflate: bool = False


@dataclass(frozen=True)
class Refuse:
    """Answer with an HTTP error instead of 101.

    ``path`` is the scenario the request was routed to (``None``: no scenario took it);
    ``why`` says which rule failed, and ``source`` where that rule was written (the failing
    check, else the ``handshake`` section; ``None`` when unknown), for reports.
    """

    status: int
    body: str
    headers: Headers
    why: str
    path: str | None = None
    source: SourceRef | None = None


Decision = Accept | Refuse


def offered_subprotocols(headers: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The subprotocols listed in every ``Sec-WebSocket-Protocol`` header, in order."""
    offered: list[str] = []
    for name, value in headers:
        if name.lower() == "sec-websocket-protocol":
            offered.extend(token.strip() for token in value.split(",") if token.strip())
    return tuple(offered)


def render_handshake(
    spec: ServerSpec, variables: Mapping[str, JSON], env: Mapping[str, str]
) -> ServerSpec:
    """``spec`` with the templates in its handshake rules rendered.

    Values rendered into a required-header regex are escaped, so ``^Bearer {{ token }}$``
    requires exactly that token.

    Raises:
        TemplateError: a template names an unknown variable or an unset environment variable.
    """
    handshake = spec.handshake
    escaped_vars = {name: _literal(name, variables) for name in variables}
    escaped_env = {name: re.escape(value) for name, value in env.items()}
    reject = handshake.reject
    return replace(
        spec,
        handshake=replace(
            handshake,
            require_headers={
                name: render_text(pattern, escaped_vars, escaped_env)
                for name, pattern in handshake.require_headers.items()
            },
            origins=(
                None
                if handshake.origins is None
                else tuple(render_text(origin, variables, env) for origin in handshake.origins)
            ),
            protocol=(
                None
                if handshake.protocol is None
                else render_text(handshake.protocol, variables, env)
            ),
            reject=replace(
                reject,
                body=render_text(reject.body, variables, env),
                headers={
                    name: render_text(value, variables, env)
                    for name, value in reject.headers.items()
                },
            ),
        ),
    )


def _literal(name: str, variables: Mapping[str, JSON]) -> str:
    """Variable ``name`` as rendering writes it, escaped to match itself inside a regex."""
    return re.escape(render_text("{{ " + name + " }}", variables, {}))


def decide(request: HandshakeRequest, specs: Mapping[str, ServerSpec]) -> Decision:
    """Route ``request`` by path to one of ``specs`` (keyed by path) and apply its rules."""
    spec = specs.get(request.path)
    if spec is None:
        served = ", ".join(sorted(specs)) or "none"
        return plain_refusal(
            404, f"no scenario serves {request.path} (paths: {served})", "unknown path"
        )
    handshake = spec.handshake
    failure = _failed_requirement(request, handshake)
    if failure is not None:
        why, rule = failure
        source = handshake.sources.get(rule) or handshake.sources.get("handshake")
        return _refusal_from(handshake.reject, why, spec.path, source)
    protocol = handshake.protocol
    selected = protocol if protocol is not None and protocol in request.subprotocols else None
    return Accept(
        path=spec.path,
        subprotocol=selected,
        delay=handshake.delay,
        deflate=spec.permessage_deflate,
    )


def over_capacity(limit: int) -> Refuse:
    """The 503 answer given when ``limit`` connections are already open."""
    return plain_refusal(503, "server busy, try again later", f"more than {limit} connections")


def plain_refusal(status: int, body: str, why: str) -> Refuse:
    """A refusal with a plain-text ``body`` that no scenario wrote."""
    return Refuse(status=status, body=body + "\n", headers=_TEXT_PLAIN, why=why)


_TEXT_PLAIN: Headers = (("content-type", "text/plain; charset=utf-8"),)


def _failed_requirement(request: HandshakeRequest, handshake: Handshake) -> tuple[str, str] | None:
    """Which requirement the request fails (a short sentence, and the rule's key in
    ``Handshake.sources``), or ``None``."""
    for name, pattern in handshake.require_headers.items():
        value = request.header(name)
        if value is None:
            return f"missing header {name}", f"header {name}"
        if re.search(pattern, value) is None:
            return f"header {name} does not match the pattern {pattern}", f"header {name}"
    origins = handshake.origins
    if origins is not None:
        origin = request.header("origin")
        if origin is None:
            return "no Origin header", "origins"
        if origin not in origins:
            return f"origin {origin} not allowed", "origins"
    return None


def _refusal_from(reject: Reject, why: str, path: str, source: SourceRef | None) -> Refuse:
    """The scenario's ``reject`` answer, with a text content type unless it sets one."""
    headers = tuple(reject.headers.items())
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers = _TEXT_PLAIN + headers
    return Refuse(reject.status, reject.body, headers, why, path, source)
