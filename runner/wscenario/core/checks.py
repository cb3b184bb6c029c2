"""Semantic checks: what the schema cannot say about a scenario.

These run on data the schema has accepted: exactly one side, one kind per step, ``result``
on calls only, URLs, header names and values, safe regexes, variables used before they are
defined, wildcards, file references that stay inside the scenario's folder, positive
timeouts, the fake server's listen address (a warning when it is not loopback), and that
a fake server's script takes the ``connect`` event each connection starts with.
"""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wscenario.core.diagnostics import Diagnostic, Severity
from wscenario.core.files import FileReferenceError, check_reference_path, resolve_reference
from wscenario.core.model import (
    CLIENT_EVENTS_OHOS,
    CLIENT_EVENTS_RAW,
    CLIENT_EVENTS_RAW_FRAMES,
    JSON,
    RAW_CLIENT_ONLY_STEPS,
    SERVER_EVENTS,
    client_events,
)
from wscenario.core.regexes import UnsafePattern, compile_pattern
from wscenario.core.schema import pointer_of
from wscenario.core.source import Document, SourceMap
from wscenario.core.templating import (
    ENV_PREFIX,
    TemplateError,
    env_key,
    strings_in,
    suggest,
    template_names,
    written_names,
)
from wscenario.core.units import parse_duration
from wscenario.core.urls import url_problem

CALL_KINDS = ("connect", "send", "close")
"""Step kinds that are calls, and so may say what ``result`` they expect."""

CLIENT_KINDS: tuple[str, ...] = ("connect", "send", "close", "expect", "unordered", "sleep")
RAW_CLIENT_KINDS: tuple[str, ...] = (*CLIENT_KINDS, *RAW_CLIENT_ONLY_STEPS)
"""A raw-profile client may also ping, drop TCP and write raw frames; an ohos app cannot."""
SERVER_KINDS: tuple[str, ...] = (
    *("send", "close", "expect", "unordered", "sleep"),
    *("ping", "drop", "frames", "stopReading"),
)
ACTION_KINDS: tuple[str, ...] = ("send", "close", "sleep", "ping", "drop", "frames")
"""What a rule may do, inline or in ``do:``."""

PAYLOAD_FORMS = ("text", "binary", "json")
SERVER_PAYLOAD_FORMS = (*PAYLOAD_FORMS, "echo")
MATCHER_FORMS = ("text", "regex", "json", "schema", "binary", "any")
BYTES_FORMS = ("hex", "base64", "file")
FRAME_DATA_FORMS = ("data", "hex", "base64")
WILDCARD_TYPES = ("true", "string", "integer", "number", "boolean", "object", "array", "null")
WILDCARDS = ("$any", "$regex")
ALL_EVENTS = tuple(
    dict.fromkeys(
        (*CLIENT_EVENTS_OHOS, *CLIENT_EVENTS_RAW_FRAMES, *CLIENT_EVENTS_RAW, *SERVER_EVENTS)
    )
)
PAYLOAD_EVENTS = frozenset({"message", "messageReceive", "ping", "pong"})

UNCHECKED_STEP: JSON = {"sleep": "0s"}
"""What stands in for a step the schema rejected while the other steps are checked: a harmless
``sleep``, of which nothing is assumed about what the step it replaces waits for."""

_WILDCARD_CUTOFF = 0.75  # '$regx' is a typo of '$regex'; '$ref' is a key of its own
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
POSITIVE_LIMITS = frozenset({"handshakeTimeout", "closeTimeout"})
"""``limits:`` keys whose duration must be longer than 0."""


def limit_problem(name: str, value: Any) -> str | None:
    """What is wrong with the schema-valid value of the ``limits:`` key ``name``, if anything
    (the ``--limit`` flag checks its values with it too)."""
    if name in POSITIVE_LIMITS and parse_duration(value) <= 0:
        return "must be longer than 0"
    return None


def check_data(doc: Document, *, base_dir: Path) -> list[Diagnostic]:
    """Every semantic problem of schema-valid scenario data (errors and warnings)."""
    checker = _Checker(doc.source_map, base_dir)
    checker.check(_mapping(doc.data))
    return checker.diagnostics


def _mapping(value: JSON) -> Mapping[str, Any]:
    assert isinstance(value, dict)
    return value


def _join(pointer: str, *parts: str | int) -> str:
    return pointer + pointer_of(parts)


@dataclass
class _Checker:
    source_map: SourceMap
    base_dir: Path
    diagnostics: list[Diagnostic] = field(default_factory=list)
    events: tuple[str, ...] = ()
    event_note: str = ""

    # -- reporting -------------------------------------------------------------------------

    def report(
        self,
        pointer: str,
        message: str,
        hint: str | None = None,
        *,
        at_key: bool = False,
        severity: Severity = "error",
    ) -> None:
        where = self.source_map.key_position if at_key else self.source_map.value_position
        self.diagnostics.append(Diagnostic(where(pointer), message, pointer, hint, severity))

    def report_file(self, error: FileReferenceError) -> None:
        self.diagnostics.append(error.to_diagnostic(self.source_map))

    # -- the scenario ----------------------------------------------------------------------

    def check(self, data: Mapping[str, Any]) -> None:
        if "client" in data and "server" in data:
            self.report(
                "/server", "'client' and 'server' cannot both be given", _SIDE_HINT, at_key=True
            )
            return
        if "client" not in data and "server" not in data:
            self.report("", "missing 'client' or 'server'", _SIDE_HINT)
            return
        variables = set(data.get("vars", {}))
        self.check_defaults(data.get("vars", {}))
        if "timeout" in data and parse_duration(data["timeout"]) <= 0:
            self.report("/timeout", "must be longer than 0")
        for name, value in data.get("limits", {}).items():
            if (problem := limit_problem(name, value)) is not None:
                self.report(f"/limits/{name}", problem)
        if "client" in data:
            client = data["client"]
            raw = client.get("profile") == "raw"
            frames = raw and client.get("frames") is True
            self.events = client_events(client)
            self.event_note = "the ohos profile"
            if raw:
                self.event_note = (
                    "the raw profile with 'frames: true'" if frames else "the raw profile"
                )
            if not raw and client.get("frames") is True:
                self.report("/client/frames", "an ohos app sees whole messages", _FRAMES_HINT)
            self.check_client(client, variables)
            kinds = RAW_CLIENT_KINDS if raw else CLIENT_KINDS
            if "rules" in data:
                self.report("/rules", "rules are for a fake server only", _RULES_HINT, at_key=True)
        else:
            self.events = SERVER_EVENTS
            self.event_note = "a fake server"
            self.check_server(data["server"])
            kinds = SERVER_KINDS
        for index, matcher in enumerate(data.get("ignore", [])):
            pointer = f"/ignore/{index}"
            self.check_event_matcher(matcher, pointer, expect=False)
            self.check_templates(matcher, pointer, variables)
        defined = set(variables)
        for index, step in enumerate(data["steps"]):
            self.check_step(step, f"/steps/{index}", kinds, defined)
        for index, rule in enumerate(data.get("rules", [])):
            self.check_rule(rule, f"/rules/{index}", variables)
        if "server" in data:
            self.check_connect_taken(data)

    # -- sides -----------------------------------------------------------------------------

    def check_client(self, client: Mapping[str, Any], variables: set[str]) -> None:
        self.check_url(client["url"], "/client/url")
        self.check_templates(client["url"], "/client/url", variables)
        if "options" in client:
            self.check_options(client["options"], "/client/options", variables)

    def check_url(self, url: str, pointer: str) -> None:
        if "{{" in url:
            return
        problem = url_problem(url)
        if problem is not None:
            self.report(pointer, problem.message, problem.hint)

    def check_options(self, options: Mapping[str, Any], pointer: str, names: set[str]) -> None:
        self.check_templates(options, pointer, names)
        if "header" in options:
            self.check_headers(options["header"], _join(pointer, "header"))
        if "caPath" in options:
            self.check_path(options["caPath"], _join(pointer, "caPath"))
        cert = options.get("clientCert", {})
        for key in ("certPath", "keyPath"):
            if key in cert:
                self.check_path(cert[key], _join(pointer, "clientCert", key))

    def check_path(self, ref: str, pointer: str) -> None:
        try:
            check_reference_path(self.base_dir, ref, pointer=pointer)
        except FileReferenceError as exc:
            self.report_file(exc)

    def check_file(self, ref: str, pointer: str) -> None:
        try:
            resolve_reference(self.base_dir, ref, pointer=pointer)
        except FileReferenceError as exc:
            self.report_file(exc)

    def check_headers(
        self, headers: Mapping[str, str], pointer: str, *, values: bool = True
    ) -> None:
        for name, value in headers.items():
            here = _join(pointer, name)
            if not _TOKEN.fullmatch(name):
                hint = "header names are letters, digits and !#$%&'*+-.^_`|~"
                self.report(here, f"invalid header name {name!r}", hint, at_key=True)
            if values and any(char in value for char in "\r\n\0"):
                hint = "header values cannot hold CR, LF or NUL characters"
                self.report(here, "header value holds a line break or NUL", hint)

    def check_server(self, server: Mapping[str, Any]) -> None:
        if "listen" in server:
            self.check_listen(server["listen"], "/server/listen")
        handshake = server.get("handshake", {})
        required = handshake.get("require", {}).get("header", {})
        self.check_headers(required, "/server/handshake/require/header", values=False)
        for name, pattern in required.items():
            self.check_regex(pattern, _join("/server/handshake/require/header", name))
        headers = handshake.get("reject", {}).get("headers", {})
        self.check_headers(headers, "/server/handshake/reject/headers")

    def check_listen(self, listen: str, pointer: str) -> None:
        host, _, port = listen.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not host or not port.isdigit() or int(port) > 65535:
            hint = "write host:port, e.g. 127.0.0.1:8765 or [::1]:0 (port 0 picks a free one)"
            self.report(pointer, f"invalid listen address {listen!r}", hint)
            return
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            hint = "listen on 127.0.0.1 unless other machines must connect"
            message = f"listening on {host} lets other machines connect to the fake server"
            self.report(pointer, message, hint, severity="warning")

    def check_connect_taken(self, data: Mapping[str, Any]) -> None:
        """Each connection's first event is ``connect``: the first step that waits for an event
        must take it, unless the ignore list or a rule (which sees events first) does."""
        first = _first_wait(data["steps"])
        takers = [*data.get("ignore", []), *(rule["on"] for rule in data.get("rules", []))]
        if first is None or any(_server_event(body) == "connect" for body in takers):
            return
        pointer, bodies = first
        events = [_server_event(body) for body in bodies]
        if "connect" not in events and None not in events:  # None: reported where it is
            message = "a connection's first event is 'connect', which this step does not expect"
            self.report(pointer, message, _CONNECT_HINT, at_key=True)

    # -- steps -----------------------------------------------------------------------------

    def check_step(
        self, step: Mapping[str, Any], pointer: str, kinds: tuple[str, ...], defined: set[str]
    ) -> None:
        if kinds is CLIENT_KINDS:
            for key, (what, hint) in _RAW_ONLY.items():
                if key in step:
                    self.report(
                        _join(pointer, key), f"an ohos app cannot {what}", hint, at_key=True
                    )
                    return
        kind = self.one_of(step, kinds, pointer, "a step")
        if kind is None:
            return
        if "result" in step and kind not in CALL_KINDS:
            hint = f"only calls ({', '.join(CALL_KINDS)}) have a result"
            self.report(_join(pointer, "result"), f"'{kind}' is not a call", hint, at_key=True)
        value = step[kind]
        here = _join(pointer, kind)
        if kind == "expect":
            self.check_expect(value, here, defined)
        elif kind == "unordered":
            saved: set[str] = set()
            for index, item in enumerate(value):
                saved |= self.check_expect(
                    item["expect"], _join(here, index, "expect"), set(defined)
                )
            defined |= saved
        else:
            self.check_action(kind, value, here, defined, echo_refused=_ECHO_IN_STEP)

    def check_action(
        self,
        kind: str,
        value: Any,
        pointer: str,
        names: set[str],
        *,
        echo_refused: tuple[str, str] | None,
    ) -> None:
        """Check one action; ``echo_refused`` (message, hint) when ``echo`` has no message here."""
        if kind == "connect":
            self.check_templates(value.get("url", ""), _join(pointer, "url"), names)
            if "options" in value:
                self.check_options(value["options"], _join(pointer, "options"), names)
        elif kind == "send":
            self.check_payload(value, pointer, echo_refused)
            self.check_templates(value, pointer, names)
        elif kind == "close":
            self.check_templates(value, pointer, names)
        elif kind == "ping":
            self.one_of(value or {}, FRAME_DATA_FORMS, pointer, "a ping", required=False)
        elif kind == "frames":
            for index, frame in enumerate(value):
                self.one_of(
                    frame, FRAME_DATA_FORMS, _join(pointer, index), "a frame", required=False
                )

    def check_payload(
        self, payload: Any, pointer: str, echo_refused: tuple[str, str] | None
    ) -> None:
        if isinstance(payload, dict):
            forms = SERVER_PAYLOAD_FORMS if self.events == SERVER_EVENTS else PAYLOAD_FORMS
            form = self.one_of(payload, forms, pointer, "a message")
            if form == "binary":
                self.check_bytes(payload["binary"], _join(pointer, "binary"))
            elif form == "echo" and echo_refused is not None:
                self.report(_join(pointer, "echo"), *echo_refused, at_key=True)

    def check_bytes(self, value: Mapping[str, str], pointer: str) -> None:
        form = self.one_of(value, BYTES_FORMS, pointer, "bytes")
        if form == "file":
            self.check_file(value["file"], _join(pointer, "file"))

    def check_expect(self, body: Any, pointer: str, defined: set[str]) -> set[str]:
        """Check one expect body against the names defined so far; the names it saves."""
        event = self.check_event_matcher(body, pointer, expect=True)
        if event is None or not isinstance(body, dict):
            return set()
        saved = self.saved_names(body, event)
        if "timeout" in body and parse_duration(body["timeout"]) <= 0:
            self.report(_join(pointer, "timeout"), "must be longer than 0")
        matched = {key: value for key, value in body.items() if key != "save"}
        self.check_templates(matched, pointer, defined)
        defined |= saved
        return saved

    def saved_names(self, body: Mapping[str, Any], event: str) -> set[str]:
        names = set(body.get("save", {}))
        value = body.get(event)
        if event in PAYLOAD_EVENTS and isinstance(value, dict) and "regex" in value:
            with contextlib.suppress(UnsafePattern):  # reported where the regex is checked
                names |= set(compile_pattern(value["regex"]).groupindex)
        return names

    def check_event_matcher(self, body: Any, pointer: str, *, expect: bool) -> str | None:
        """Check an expect, ignore or rule body; the event it names, or None."""
        if isinstance(body, str):
            if body in self.events:
                return body
            self.report_event(body, pointer, at_key=False)
            return None
        forms = (*ALL_EVENTS, "nothing") if expect else ALL_EVENTS
        listed = (*self.events, "nothing") if expect else self.events
        event = self.one_of(body, forms, pointer, "an event", listed=listed)
        if event is None:
            return None
        if event != "nothing" and event not in self.events:
            self.report_event(event, _join(pointer, event), at_key=True)
            return None
        here = _join(pointer, event)
        if event == "nothing":
            if parse_duration(body["nothing"]) <= 0:
                self.report(here, "must be longer than 0")
            for key in body:
                if key != "nothing":
                    self.report(
                        _join(pointer, key), f"'{key}' does not go with 'nothing'", at_key=True
                    )
            return None
        value = body[event]
        if event in PAYLOAD_EVENTS:
            self.check_matcher(value, here)
        else:
            self.check_wildcards(value, here)
        return event

    def report_event(self, name: str, pointer: str, *, at_key: bool) -> None:
        hint = f"events of {self.event_note}: {', '.join(self.events)}"
        self.report(pointer, f"'{name}' is not an event of {self.event_note}", hint, at_key=at_key)

    def check_matcher(self, matcher: Any, pointer: str) -> None:
        if not isinstance(matcher, dict):
            return
        form = self.one_of(matcher, MATCHER_FORMS, pointer, "a message matcher")
        here = _join(pointer, form) if form else pointer
        if form == "regex":
            self.check_regex(matcher["regex"], here)
        elif form == "json":
            self.check_wildcards(matcher["json"], here)
        elif form == "binary":
            self.check_bytes(matcher["binary"], here)
        elif form == "schema" and isinstance(matcher["schema"], str):
            self.check_file(matcher["schema"], here)

    def check_regex(self, pattern: str, pointer: str) -> None:
        try:
            compile_pattern(pattern)
        except UnsafePattern as exc:
            self.report(pointer, exc.message, exc.hint)

    def check_wildcards(self, value: JSON, pointer: str) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                self.check_wildcards(item, _join(pointer, index))
        elif isinstance(value, dict):
            if len(value) == 1:
                [(key, inner)] = value.items()
                if self.check_wildcard(key, inner, _join(pointer, key)):
                    return
            for key, item in value.items():
                self.check_wildcards(item, _join(pointer, key))

    def check_wildcard(self, key: str, value: JSON, pointer: str) -> bool:
        """Check a one-key object that may be a wildcard; whether it was one."""
        if key == "$regex":
            if isinstance(value, str):
                self.check_regex(value, pointer)
            else:
                self.report(pointer, "$regex needs a string (a regular expression)")
            return True
        if key == "$any":
            shown = "true" if value is True else value
            if shown not in WILDCARD_TYPES or not isinstance(shown, str):
                hint = _hint(str(value), WILDCARD_TYPES)
                self.report(pointer, f"unknown $any type {value!r}", hint)
            return True
        close = difflib.get_close_matches(key, WILDCARDS, n=1, cutoff=_WILDCARD_CUTOFF)
        if close:
            self.report(
                pointer, f"unknown wildcard '{key}'", f"did you mean '{close[0]}'?", at_key=True
            )
            return True
        return False

    # -- rules -----------------------------------------------------------------------------

    def check_rule(self, rule: Mapping[str, Any], pointer: str, variables: set[str]) -> None:
        names = set(variables)
        on = _join(pointer, "on")
        event = self.check_event_matcher(rule["on"], on, expect=False)
        if event is not None and isinstance(rule["on"], dict):
            self.check_templates({k: v for k, v in rule["on"].items() if k != "save"}, on, names)
            names |= self.saved_names(rule["on"], event)
        echo = None if event in (None, "messageReceive") else _echo_in_rule(str(event))
        kind = self.one_of(rule, (*ACTION_KINDS, "do"), pointer, "a rule's action")
        if kind == "do":
            for index, action in enumerate(rule["do"]):
                here = _join(pointer, "do", index)
                inner = self.one_of(action, ACTION_KINDS, here, "an action")
                if inner is not None:
                    self.check_action(
                        inner, action[inner], _join(here, inner), names, echo_refused=echo
                    )
        elif kind is not None:
            self.check_action(kind, rule[kind], _join(pointer, kind), names, echo_refused=echo)

    # -- shared ----------------------------------------------------------------------------

    def one_of(
        self,
        value: Mapping[str, Any],
        forms: tuple[str, ...],
        pointer: str,
        what: str,
        *,
        required: bool = True,
        listed: tuple[str, ...] = (),
    ) -> str | None:
        """The one key of ``forms`` that ``value`` has; reports none or several."""
        present = [key for key in value if key in forms]
        if len(present) == 1:
            return present[0]
        shown = ", ".join(listed or forms)
        if len(present) > 1:
            quoted = " and ".join(f"'{key}'" for key in present)
            message = f"{what} takes only one of {quoted}"
            self.report(_join(pointer, present[1]), message, f"one of: {shown}", at_key=True)
        elif required:
            self.report(pointer, f"{what} needs one of: {shown}")
        return None

    def check_templates(self, value: Any, pointer: str, names: set[str]) -> None:
        for path, text in strings_in(value):
            try:
                used = template_names(text)
            except TemplateError as exc:
                here = _join(pointer, *path)
                self.report(here, exc.message, "write {{ name }} or {{ env.NAME }}")
                continue
            for name in used:
                if name not in names and not name.startswith(ENV_PREFIX):
                    hint = suggest(name, names) or _UNDEFINED_HINT
                    self.report(_join(pointer, *path), f"undefined variable '{name}'", hint)

    def check_defaults(self, variables: JSON) -> None:
        """A default in ``vars`` that is exactly ``{{ env.NAME }}`` reads the environment; a
        template in any other default is taken as written (a warning)."""
        for path, text in strings_in(variables):
            if env_key(text) is not None:
                continue
            for name in written_names(text):
                if name.startswith(ENV_PREFIX):
                    message = f"'{{{{ {name} }}}}' here is taken as written, not read"
                    hint = _PART_OF_DEFAULT_HINT
                else:
                    message = f"a default cannot use variable '{name}'; it is taken as written"
                    hint = _DEFAULTS_HINT
                self.report(_join("/vars", *path), message, hint, severity="warning")


def _first_wait(steps: Iterable[Mapping[str, Any]]) -> tuple[str, list[Any]] | None:
    """The pointer of the first step that waits for an event, and the bodies it expects."""
    for index, step in enumerate(steps):
        if step is UNCHECKED_STEP:  # it may have been the wait that takes connect
            return None
        if "expect" in step:
            return f"/steps/{index}/expect", [step["expect"]]
        if "unordered" in step:
            return f"/steps/{index}/unordered", [item["expect"] for item in step["unordered"]]
    return None


def _server_event(body: Any) -> str | None:
    """The event (or ``nothing``) an expect, ignore or rule body of a fake server names; None
    when it names no known one (a problem reported where the body is checked)."""
    if isinstance(body, str):
        return body if body in SERVER_EVENTS else None
    named = [key for key in body if key in SERVER_EVENTS or key == "nothing"]
    return named[0] if len(named) == 1 else None


def _hint(value: str, allowed: Iterable[str]) -> str:
    close = suggest(value, allowed)
    listed = f"allowed: {', '.join(allowed)}"
    return f"{close} {listed}" if close else listed


_FRAMES_HINT = "add 'profile: raw' to see each frame as it came, or leave 'frames' out"
_SIDE_HINT = "a scenario plays one side: client (connects to a server) or server (a fake server)"
_RULES_HINT = "remove 'rules', or make this a server scenario"
_RAW_ONLY = {
    "ping": ("send a ping", "the device pings on its own (pingInterval); 'profile: raw' can ping"),
    "drop": ("drop TCP", "the device always closes properly; 'profile: raw' can drop"),
    "frames": ("write raw frames", "'profile: raw' can write raw frames"),
}
"""Steps only a raw-profile client has: what an ohos app cannot do, and a hint."""
_CONNECT_HINT = (
    "every connection starts with a connect event: add '- expect: connect' before this step"
)
_UNDEFINED_HINT = "declare it in vars, or save it in an earlier step"
_PART_OF_DEFAULT_HINT = (
    "a default reads the environment only when it is exactly {{ env.NAME }}: put the rest "
    'where the variable is used ("Bearer {{ token }}")'
)
_DEFAULTS_HINT = (
    "vars cannot refer to other variables; write the value, or read the environment with "
    "{{ env.NAME }}"
)
_ECHO_IN_STEP = (
    "'echo' sends back the message that fired a rule; a step has none",
    "answer messages with a rule: on: messageReceive, send: {echo: true}",
)


def _echo_in_rule(event: str) -> tuple[str, str]:
    """Why ``echo`` cannot be used in a rule on ``event`` (not a message)."""
    return (
        f"'echo' sends back a received message; this rule is on '{event}', not a message",
        "use it in a rule on messageReceive, or send a message of its own",
    )
