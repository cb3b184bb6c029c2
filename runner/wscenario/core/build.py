"""Build the typed model (``model.Scenario``) from scenario data the schema and checks accepted.

Durations become float seconds, sizes ints, and names go from the file's camelCase to the
model's snake_case. Binary payloads are decoded (hex, base64, or a file read through
``files`` within the scenario's ``maxMessageSize``), schema files are loaded and checked, and
certificate paths are resolved against the scenario's folder. Problems found on the way (bad
hex, a missing file, an invalid JSON Schema...) are collected and raised together.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from wscenario.core import model
from wscenario.core.diagnostics import Diagnostic
from wscenario.core.files import FileReferenceError, check_reference_path, read_reference
from wscenario.core.model import JSON
from wscenario.core.schema import pointer_of
from wscenario.core.source import Document, SourceError, SourceMap, parse_yaml
from wscenario.core.units import parse_duration, parse_size

MAX_PING_DATA = 125
"""A control frame's payload is at most 125 bytes (RFC 6455 §5.5)."""

_PAYLOAD_EVENTS = frozenset({"message", "messageReceive", "ping", "pong"})


class BuildError(Exception):
    """The scenario's data cannot be turned into a model; ``diagnostics`` say why."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__(self.diagnostics[0].render())


def build_scenario(
    doc: Document,
    *,
    base_dir: Path,
    variables: Mapping[str, JSON] | None = None,
    limits: Mapping[str, int | float] | None = None,
) -> model.Scenario:
    """The model of a scenario whose data passed the schema and the semantic checks.

    ``variables`` replaces the file's ``vars`` (defaults with ``--var`` overrides applied);
    ``limits`` (``Limits`` field names) replaces those of its ``limits:`` section, before the
    message size cap applies to the payload files it sends.

    Raises:
        BuildError: a payload, file or schema cannot be used.
    """
    builder = _Builder(doc.source_map, base_dir, limit_overrides=dict(limits or {}))
    scenario = builder.scenario(cast(dict[str, Any], doc.data), doc.path, variables)
    if builder.diagnostics:
        raise BuildError(builder.diagnostics)
    return scenario


LIMITS: Mapping[str, tuple[str, Callable[[Any], int | float]]] = {
    "handshakeTimeout": ("handshake_timeout", parse_duration),
    "maxHeadSize": ("max_head_size", parse_size),
    "maxHeaders": ("max_headers", int),  # the schema's integers include 3.0
    "maxMessageSize": ("max_message_size", parse_size),
    "maxFragments": ("max_fragments", int),
    "closeTimeout": ("close_timeout", parse_duration),
    "maxConnections": ("max_connections", int),
}
"""Each ``limits:`` key: its ``Limits`` field and how its value is read."""


def limit_values(data: Mapping[str, Any]) -> dict[str, int | float]:
    """``Limits`` field values for the keys of a ``limits:`` mapping that passed the schema.

    Raises:
        ValueError: a value the units do not read (the schema lets none through).
    """
    return {LIMITS[key][0]: LIMITS[key][1](value) for key, value in data.items()}


def _join(pointer: str, *parts: str | int) -> str:
    return pointer + pointer_of(parts)


def _duration(value: Any) -> float | None:
    return None if value is None else parse_duration(value)


@dataclass
class _Builder:
    source_map: SourceMap
    base_dir: Path
    diagnostics: list[Diagnostic] = field(default_factory=list)
    max_bytes: int = model.Limits().max_message_size
    limit_overrides: dict[str, Any] = field(default_factory=dict)

    def fail(self, pointer: str, message: str, hint: str | None = None) -> None:
        position = self.source_map.value_position(pointer)
        self.diagnostics.append(Diagnostic(position, message, pointer, hint))

    # -- the scenario ----------------------------------------------------------------------

    def scenario(
        self, data: Mapping[str, Any], path: Path, variables: Mapping[str, JSON] | None
    ) -> model.Scenario:
        limits = replace(self.limits(data.get("limits", {})), **self.limit_overrides)
        self.max_bytes = limits.max_message_size
        return model.Scenario(
            path=path,
            name=data.get("name", path.stem),
            description=data.get("description", ""),
            vars=dict(data.get("vars", {}) if variables is None else variables),
            timeout=parse_duration(data.get("timeout", 5.0)),
            ignore=tuple(
                self.event_matcher(item, f"/ignore/{index}")[0]
                for index, item in enumerate(data.get("ignore", []))
            ),
            ignore_pointers=tuple(data.get("ignorePointers", [])),
            limits=limits,
            client=self.client(data["client"]) if "client" in data else None,
            server=self.server(data["server"]) if "server" in data else None,
            steps=tuple(self.step(step, f"/steps/{i}") for i, step in enumerate(data["steps"])),
            rules=tuple(
                self.rule(rule, f"/rules/{i}") for i, rule in enumerate(data.get("rules", []))
            ),
            strict=self.source("/strict") if data.get("strict", False) else None,
        )

    def limits(self, data: Mapping[str, Any]) -> model.Limits:
        values: dict[str, Any] = limit_values(data)  # each value has its field's type
        return replace(model.Limits(), **values)

    def client(self, data: Mapping[str, Any]) -> model.ClientSpec:
        options = data.get("options")
        return model.ClientSpec(
            url=data["url"],
            options=model.ConnectOptions() if options is None else self.options(options),
            profile=data.get("profile", "ohos"),
            api=data.get("api"),
            insecure=data.get("insecure", False),
            frames=data.get("frames", False),
        )

    def options(self, data: Mapping[str, Any]) -> model.ConnectOptions:
        cert = data.get("clientCert")
        return model.ConnectOptions(
            header=dict(data.get("header", {})),
            protocol=data.get("protocol"),
            ca_path=self.path(data["caPath"]) if "caPath" in data else None,
            client_cert=None
            if cert is None
            else model.ClientCert(
                cert_path=self.path(cert["certPath"]),
                key_path=self.path(cert["keyPath"]),
                key_password=cert.get("keyPassword", ""),
            ),
            ping_interval=data.get("pingInterval"),
            pong_timeout=data.get("pongTimeout"),
            skip_server_cert_verification=data.get("skipServerCertVerification", False),
        )

    def path(self, ref: str) -> Path:
        return check_reference_path(self.base_dir, ref)

    def server(self, data: Mapping[str, Any]) -> model.ServerSpec:
        default = model.ServerSpec()
        handshake = data.get("handshake", {})
        reject = handshake.get("reject", {})
        origins = handshake.get("origins")
        required = handshake.get("require", {}).get("header", {})
        return model.ServerSpec(
            listen=data.get("listen", default.listen),
            path=data.get("path", default.path),
            answer_close=data.get("answerClose", True),
            permessage_deflate=data.get("permessageDeflate", False),
            handshake=model.Handshake(
                require_headers={name.lower(): regex for name, regex in required.items()},
                origins=None if origins is None else tuple(origins),
                protocol=handshake.get("protocol"),
                reject=model.Reject(
                    status=reject.get("status", model.Reject().status),
                    body=reject.get("body", ""),
                    headers=dict(reject.get("headers", {})),
                ),
                delay=parse_duration(handshake.get("delay", 0)),
                sources=self.handshake_sources(handshake) if "handshake" in data else {},
            ),
        )

    def handshake_sources(self, handshake: Mapping[str, Any]) -> dict[str, model.SourceRef]:
        """Where the handshake section and each of its checks were written."""
        section = "/server/handshake"
        pointers = {"handshake": section}
        if "origins" in handshake:
            pointers["origins"] = _join(section, "origins")
        for name in handshake.get("require", {}).get("header", {}):
            pointers[f"header {name.lower()}"] = _join(section, "require", "header", name)
        return {key: self.source(pointer) for key, pointer in pointers.items()}

    def source(self, pointer: str) -> model.SourceRef:
        """Where the key at ``pointer`` was written."""
        return model.SourceRef(pointer, self.source_map.key_position(pointer))

    # -- steps -----------------------------------------------------------------------------

    def step(self, data: Mapping[str, Any], pointer: str) -> model.Step:
        kind = next(key for key in data if key != "result")
        value = data[kind]
        here = _join(pointer, kind)
        where: dict[str, Any] = {
            "position": self.source_map.value_position(pointer),
            "pointer": pointer,
        }
        if kind == "expect":
            return self.expect(value, here, where)
        if kind == "unordered":
            expects = tuple(
                self.expect(item["expect"], _join(here, i, "expect"), self.where(_join(here, i)))
                for i, item in enumerate(value)
            )
            return model.Unordered(expects=cast(tuple[model.Expect, ...], expects), **where)
        if kind == "connect":
            options = value.get("options")
            return model.Connect(
                url=value.get("url"),
                options=None if options is None else self.options(options),
                result=self.result(data.get("result")),
                **where,
            )
        if kind in ("send", "close"):
            where["result"] = self.result(data.get("result"))
        return self.action(kind, value, here, where)

    def where(self, pointer: str) -> dict[str, Any]:
        return {"position": self.source_map.value_position(pointer), "pointer": pointer}

    def result(self, data: Mapping[str, Any] | None) -> model.ExpectedError | None:
        if data is None:
            return None
        error = data["error"]
        return model.ExpectedError(code=error["code"], message=error.get("message"))

    def action(self, kind: str, value: Any, pointer: str, where: dict[str, Any]) -> model.Step:
        if kind == "send":
            return self.send(value, pointer, where)
        if kind == "close":
            value = value or {}
            return model.Close(
                code=value.get("code"),
                reason=value.get("reason"),
                no_payload=value.get("noPayload", False),
                **where,
            )
        if kind == "sleep":
            return model.Sleep(duration=parse_duration(value), **where)
        if kind == "ping":
            data = self.frame_data(value or {}, pointer)
            if len(data) > MAX_PING_DATA:
                message = f"a ping carries at most {MAX_PING_DATA} bytes, this one {len(data)}"
                self.fail(pointer, message, "send a shorter ping")
            return model.Ping(data=data, **where)
        if kind == "drop":
            mode = cast(Literal["fin", "rst"], (value or {}).get("mode", "fin"))
            return model.Drop(mode=mode, **where)
        if kind == "frames":
            return model.Frames(
                frames=tuple(self.frame(frame, _join(pointer, i)) for i, frame in enumerate(value)),
                **where,
            )
        return model.StopReading(**where)

    def send(self, value: Any, pointer: str, where: dict[str, Any]) -> model.Send:
        extra: dict[str, Any] = {}
        if isinstance(value, dict):
            extra = {
                "fragments": value.get("fragments", 1),
                "fragment_delay": parse_duration(value.get("fragmentDelay", 0)),
                "ping_between": value.get("pingBetween", False),
            }
        return model.Send(payload=self.payload(value, pointer), **extra, **where)

    def payload(self, value: Any, pointer: str) -> model.SendPayload:
        if isinstance(value, str):
            return model.TextPayload(value)
        if "echo" in value:
            return model.EchoPayload()
        if "text" in value:
            return model.TextPayload(value["text"])
        if "json" in value:
            return model.JsonPayload(value["json"])
        return model.BinaryPayload(self.decode_bytes(value["binary"], _join(pointer, "binary")))

    def frame(self, data: Mapping[str, Any], pointer: str) -> model.RawFrame:
        return model.RawFrame(
            opcode=data["opcode"],
            data=self.frame_data(data, pointer),
            fin=data.get("fin", True),
            rsv=(data.get("rsv1", False), data.get("rsv2", False), data.get("rsv3", False)),
            delay=parse_duration(data.get("delay", 0)),
        )

    def frame_data(self, data: Mapping[str, Any], pointer: str) -> bytes:
        if "data" in data:
            text: str = data["data"]
            return text.encode("utf-8")
        return self.decode_bytes(data, pointer)

    def decode_bytes(self, data: Mapping[str, Any], pointer: str) -> bytes:
        """Bytes from ``hex``, ``base64`` or ``file`` (empty when none is given)."""
        if "hex" in data:
            try:
                return bytes.fromhex(data["hex"])
            except ValueError:
                hint = "two hex digits per byte, e.g. 00ff10 (spaces allowed between bytes)"
                self.fail(_join(pointer, "hex"), "invalid hex", hint)
        elif "base64" in data:
            try:
                return binascii.a2b_base64(data["base64"], strict_mode=True)
            except binascii.Error as exc:
                self.fail(_join(pointer, "base64"), f"invalid base64: {str(exc).lower()}")
        elif "file" in data:
            return self.read(data["file"], _join(pointer, "file")) or b""
        return b""

    def read(self, ref: str, pointer: str) -> bytes | None:
        try:
            return read_reference(self.base_dir, ref, max_bytes=self.max_bytes, pointer=pointer)
        except FileReferenceError as exc:
            self.diagnostics.append(exc.to_diagnostic(self.source_map))
            return None

    # -- expectations ----------------------------------------------------------------------

    def expect(
        self, body: Any, pointer: str, where: dict[str, Any]
    ) -> model.Expect | model.ExpectNothing:
        if isinstance(body, dict) and "nothing" in body:
            return model.ExpectNothing(duration=parse_duration(body["nothing"]), **where)
        matcher, save = self.event_matcher(body, pointer)
        timeout = body.get("timeout") if isinstance(body, dict) else None
        return model.Expect(matcher=matcher, save=save, timeout=_duration(timeout), **where)

    def event_matcher(self, body: Any, pointer: str) -> tuple[model.EventMatcher, dict[str, str]]:
        if isinstance(body, str):
            return model.EventMatcher(body), {}
        event = next(key for key in body if key not in ("save", "timeout"))
        value = body[event]
        save = dict(body.get("save", {}))
        if event in _PAYLOAD_EVENTS:
            payload = None if value is None else self.matcher(value, _join(pointer, event))
            return model.EventMatcher(event, payload=payload), save
        return model.EventMatcher(event, fields=value), save

    def matcher(self, value: Any, pointer: str) -> model.PayloadMatcher:
        if isinstance(value, str):
            return model.TextMatcher(value)
        if "text" in value:
            return model.TextMatcher(value["text"])
        if "regex" in value:
            return model.RegexMatcher(value["regex"])
        if "json" in value:
            mode = cast(Literal["exact", "subset"], value.get("match", "exact"))
            return model.JsonMatcher(
                value["json"], mode=mode, ignore=tuple(value.get("ignore", []))
            )
        if "schema" in value:
            return model.SchemaMatcher(self.schema(value["schema"], _join(pointer, "schema")))
        if "binary" in value:
            return model.BinaryMatcher(self.decode_bytes(value["binary"], _join(pointer, "binary")))
        kind = value["any"]
        return model.AnyMatcher("any" if kind is True else kind)

    def schema(self, value: Any, pointer: str) -> Mapping[str, JSON] | bool:
        if isinstance(value, str):
            content = self.read(value, pointer)
            if content is None:
                return False
            try:
                value = parse_yaml(content, str(self.base_dir / value)).data
            except SourceError as exc:
                self.diagnostics.extend(exc.diagnostics)
                return False
            if not isinstance(value, dict | bool):
                self.fail(pointer, "a JSON Schema is a mapping (or true/false)")
                return False
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            where = pointer_of(exc.absolute_path)
            self.fail(pointer, f"not a valid JSON Schema: {where or '/'}: {exc.message}")
            return False
        return cast(Mapping[str, JSON] | bool, value)

    # -- rules -----------------------------------------------------------------------------

    def rule(self, data: Mapping[str, Any], pointer: str) -> model.Rule:
        matcher, save = self.event_matcher(data["on"], _join(pointer, "on"))
        if "do" in data:
            items = [(action, _join(pointer, "do", i)) for i, action in enumerate(data["do"])]
        else:
            items = [(data, pointer)]
        actions: list[model.Action] = []
        for action, here in items:
            kind = next(key for key in action if key not in ("on", "once"))
            built = self.action(kind, action[kind], _join(here, kind), self.where(here))
            actions.append(cast(model.Action, built))  # the schema allows actions only
        return model.Rule(
            position=self.source_map.value_position(pointer),
            pointer=pointer,
            on=matcher,
            actions=tuple(actions),
            once=data.get("once", False),
            save=save,
        )
