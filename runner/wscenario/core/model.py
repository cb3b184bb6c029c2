"""The typed scenario model: what a validated scenario file means.

A scenario file is loaded (``source``), validated (``schema`` then ``checks``) and built into
these frozen dataclasses (``build``). The engine only ever sees this model, never raw YAML.

Strings that may hold ``{{ name }}`` templates are kept as written and rendered at run time
with the variables in play (see ``templating``). Durations are float seconds. File references
(binary payloads, schemas, ``caPath``...) are resolved against the scenario's directory when the
model is built; certificate paths stay paths because the device checks them when it connects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

from wscenario.core.diagnostics import Position

JSON: TypeAlias = bool | int | float | str | list["JSON"] | dict[str, "JSON"] | None
"""A JSON value as loaded from YAML (after the loader's checks)."""

Profile = Literal["ohos", "raw"]
Side = Literal["client", "server"]

CLIENT_EVENTS_OHOS = ("open", "message", "close", "error", "dataEnd", "headerReceive")
"""Events an ArkTS app can subscribe to with ``on()``; what a client step may expect."""

CLIENT_EVENTS_RAW = ("open", "message", "close", "error", "ping", "pong")
"""Events the raw profile reports: the protocol's own truth, pings and pongs included."""

CLIENT_EVENTS_RAW_FRAMES = ("open", "frame", "close", "error", "ping", "pong")
"""The raw profile's events with ``frames: true``: each data frame instead of whole messages."""

ALL_CLIENT_EVENTS = frozenset((*CLIENT_EVENTS_OHOS, *CLIENT_EVENTS_RAW, *CLIENT_EVENTS_RAW_FRAMES))
"""Every event a client step may expect in some profile."""


def client_events(client: Mapping[str, object]) -> tuple[str, ...]:
    """The events a client scenario's ``client`` section (as written) lets its steps expect."""
    if client.get("profile") != "raw":
        return CLIENT_EVENTS_OHOS
    return CLIENT_EVENTS_RAW_FRAMES if client.get("frames") is True else CLIENT_EVENTS_RAW


RAW_CLIENT_ONLY_STEPS = ("ping", "drop", "frames")
"""Steps only a raw-profile client has: an ohos app cannot ping, drop TCP or write raw frames."""

SERVER_EVENTS = ("connect", "messageReceive", "close", "error", "ping", "pong")
"""Events of a fake server's connection, named after the ohos ``WebSocketServer``."""

MESSAGE_EVENTS = frozenset({"message", "messageReceive"})
"""Events whose value is a payload, matched with a payload matcher."""


# --------------------------------------------------------------------------------------------
# Payloads (what is sent) and matchers (what is expected)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextPayload:
    """A text message; ``text`` may hold templates."""

    text: str


@dataclass(frozen=True)
class BinaryPayload:
    """A binary message, already decoded from hex, base64 or a file."""

    data: bytes


@dataclass(frozen=True)
class JsonPayload:
    """A text message holding ``value`` serialised as compact JSON; strings may hold templates.

    A string that is exactly one template (``"{{ n }}"``) takes the variable's own type.
    """

    value: JSON


Payload: TypeAlias = TextPayload | BinaryPayload | JsonPayload


@dataclass(frozen=True)
class EchoPayload:
    """The message that fired the rule, sent back unchanged (text as text, bytes as bytes).

    Only a fake server's rule on ``messageReceive`` sends it.
    """


SendPayload: TypeAlias = Payload | EchoPayload
"""What a ``send`` sends: a payload of its own, or the message being answered."""


@dataclass(frozen=True)
class TextMatcher:
    """The message is text and equals ``text`` (after templating)."""

    text: str


@dataclass(frozen=True)
class RegexMatcher:
    """The message is text and ``re.search(pattern)`` finds it; named groups are saved."""

    pattern: str


@dataclass(frozen=True)
class JsonMatcher:
    """The message is text holding JSON that matches ``value``.

    ``mode`` is ``exact`` (same keys everywhere) or ``subset`` (extra keys allowed in objects).
    Inside ``value`` a one-key object is a wildcard: ``{$any: true}`` any value,
    ``{$any: string}`` (or integer, number, boolean, object, array, null) any value of that
    type, ``{$regex: "..."}`` a string that the pattern finds. Strings may hold templates.
    ``ignore`` lists JSON Pointers (into the received value) that are never compared; the
    scenario-level ``ignorePointers`` are added to it.
    """

    value: JSON
    mode: Literal["exact", "subset"] = "exact"
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class SchemaMatcher:
    """The message is text holding JSON valid under ``schema`` (JSON Schema 2020-12)."""

    schema: Mapping[str, JSON] | bool


@dataclass(frozen=True)
class BinaryMatcher:
    """The message is binary and equals ``data``."""

    data: bytes


@dataclass(frozen=True)
class AnyMatcher:
    """Any message; ``kind`` restricts it to text or binary."""

    kind: Literal["any", "text", "binary"] = "any"


PayloadMatcher: TypeAlias = (
    TextMatcher | RegexMatcher | JsonMatcher | SchemaMatcher | BinaryMatcher | AnyMatcher
)


@dataclass(frozen=True)
class EventMatcher:
    """What one expected event looks like.

    ``event`` is an event name. For message events ``payload`` says what the message holds
    (``None``: any message). For the others ``fields`` is a JSON subset match against the
    event's value, with the same wildcards as ``JsonMatcher`` (``None``: any value), e.g.
    ``{code: 1000, reason: {$regex: "^bye"}}`` against a close event's ``{code, reason}``.
    """

    event: str
    payload: PayloadMatcher | None = None
    fields: JSON = None


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedError:
    """A call is expected to fail with this documented error code (and message, if given)."""

    code: int
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class StepBase:
    """What every step has: where it was written, and its JSON Pointer (``/steps/3``)."""

    position: Position
    pointer: str


@dataclass(frozen=True, kw_only=True)
class CallStep(StepBase):
    """A step that is a call; ``result`` is the expected error, ``None`` for success."""

    result: ExpectedError | None = None


@dataclass(frozen=True, kw_only=True)
class Connect(CallStep):
    """Client: ``connect(url, options)``; the scenario's url and options unless overridden."""

    url: str | None = None
    options: ConnectOptions | None = None


@dataclass(frozen=True, kw_only=True)
class Send(CallStep):
    """Send one message.

    On a fake server ``fragments`` splits it into that many frames (continuation frames),
    ``fragment_delay`` waits between them and ``ping_between`` puts a ping after the first.
    """

    payload: SendPayload
    fragments: int = 1
    fragment_delay: float = 0.0
    ping_between: bool = False


@dataclass(frozen=True, kw_only=True)
class Close(CallStep):
    """Close with ``code`` and ``reason`` (``None``: the side's default).

    On a fake server ``no_payload`` sends a close frame with an empty payload, and any code
    (even one a device rewrites, or an invalid one) is sent as written.
    """

    code: int | None = None
    reason: str | None = None
    no_payload: bool = False


@dataclass(frozen=True, kw_only=True)
class Expect(StepBase):
    """Take the next event not yet consumed and match it.

    ``save`` maps variable names to JSON Pointers into the event's value (for messages: the
    parsed JSON, or the text itself at pointer ``""``). Named regex groups are saved too.
    ``timeout`` overrides the scenario's default wait.
    """

    matcher: EventMatcher
    save: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class ExpectNothing(StepBase):
    """No event (other than ignored ones) arrives for ``duration`` seconds."""

    duration: float


@dataclass(frozen=True, kw_only=True)
class Unordered(StepBase):
    """All of ``expects`` arrive, in any order, each within its own or the group's timeout."""

    expects: tuple[Expect, ...]
    timeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class Sleep(StepBase):
    """Wait ``duration`` seconds; events keep arriving and queue up meanwhile."""

    duration: float


@dataclass(frozen=True, kw_only=True)
class Ping(StepBase):
    """Send a ping with ``data`` (at most 125 bytes): a fake server or a raw-profile client."""

    data: bytes = b""


@dataclass(frozen=True, kw_only=True)
class Drop(StepBase):
    """Cut TCP without a close frame (``fin`` or ``rst``): a fake server or a raw client."""

    mode: Literal["fin", "rst"] = "fin"


@dataclass(frozen=True)
class RawFrame:
    """One frame written exactly as described, for fault injection.

    ``opcode`` is a number (0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong, or a
    reserved one); ``rsv`` sets the RSV1-3 bits; ``delay`` waits before writing it.
    """

    opcode: int
    data: bytes = b""
    fin: bool = True
    rsv: tuple[bool, bool, bool] = (False, False, False)
    delay: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Frames(StepBase):
    """Write these raw frames, bypassing the protocol's checks: a fake server or a raw client."""

    frames: tuple[RawFrame, ...]


@dataclass(frozen=True, kw_only=True)
class StopReading(StepBase):
    """Fake server: stop reading from the socket (the peer's writes back up)."""


Step: TypeAlias = (
    Connect
    | Send
    | Close
    | Expect
    | ExpectNothing
    | Unordered
    | Sleep
    | Ping
    | Drop
    | Frames
    | StopReading
)

Action: TypeAlias = Send | Close | Sleep | Ping | Drop | Frames
"""What a rule may do when it fires."""


@dataclass(frozen=True, kw_only=True)
class Rule:
    """Fake server: whenever (or the first time, if ``once``) an event matches ``on``, act.

    An event consumed by a rule is not seen by the steps. ``save`` works as in ``Expect``, so
    the actions may answer with data captured from the event that triggered them.
    """

    position: Position
    pointer: str
    on: EventMatcher
    actions: tuple[Action, ...]
    once: bool = False
    save: Mapping[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Sides, limits and the scenario
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientCert:
    """``clientCert``: a PEM certificate and key; ``key_password`` may hold templates."""

    cert_path: Path
    key_path: Path
    key_password: str = ""


@dataclass(frozen=True)
class ConnectOptions:
    """``WebSocketRequestOptions``: header values and ``protocol`` may hold templates."""

    header: Mapping[str, str] = field(default_factory=dict)
    protocol: str | None = None
    ca_path: Path | None = None
    client_cert: ClientCert | None = None
    ping_interval: int | None = None
    pong_timeout: int | None = None
    skip_server_cert_verification: bool = False


@dataclass(frozen=True)
class ClientSpec:
    """The ``client:`` section.

    ``api`` is the ohos API level to emulate (``None``: the newest). ``insecure`` turns TLS
    verification off in the raw profile (the ohos profile follows the device's own rules).
    ``frames`` (raw profile) reports each data frame as it came, as a ``frame`` event, instead
    of whole messages.
    """

    url: str
    options: ConnectOptions = field(default_factory=ConnectOptions)
    profile: Profile = "ohos"
    api: int | None = None
    insecure: bool = False
    frames: bool = False


@dataclass(frozen=True)
class Reject:
    """The HTTP answer a fake server gives when a handshake requirement fails."""

    status: int = 403
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceRef:
    """Where a part of a scenario was written: its JSON Pointer and position, for reports."""

    pointer: str
    position: Position


@dataclass(frozen=True)
class Handshake:
    """How a fake server answers the opening handshake.

    ``require_headers`` maps lower-case header names to regexes the value must match (search);
    ``origins`` is an allow-list for ``Origin`` (``None``: any); ``protocol`` is the
    subprotocol to select when the client offers it; ``delay`` holds the answer back.
    ``sources`` says where the rules were written, so a refusal names its line: keys are
    ``handshake`` (the section), ``origins`` and ``header NAME`` (a required header, lower case);
    they do not take part in comparisons.
    """

    require_headers: Mapping[str, str] = field(default_factory=dict)
    origins: tuple[str, ...] | None = None
    protocol: str | None = None
    reject: Reject = field(default_factory=Reject)
    delay: float = 0.0
    sources: Mapping[str, SourceRef] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ServerSpec:
    """The ``server:`` section; ``answer_close: false`` never answers the client's close;
    ``permessage_deflate`` agrees to compression when a client offers it."""

    listen: str = "127.0.0.1:8765"
    path: str = "/"
    handshake: Handshake = field(default_factory=Handshake)
    answer_close: bool = True
    permessage_deflate: bool = False


@dataclass(frozen=True)
class Limits:
    """Protective limits; defaults follow the websockets library's."""

    handshake_timeout: float = 10.0
    max_head_size: int = 16 * 1024
    max_headers: int = 128
    max_message_size: int = 1024 * 1024
    max_fragments: int = 4096
    close_timeout: float = 10.0
    max_connections: int = 256


@dataclass(frozen=True)
class Scenario:
    """A whole validated scenario; exactly one of ``client`` and ``server`` is set.

    ``strict`` is where ``strict: true`` was written (``None``: not strict): the steps then
    also fail when they end with an event left that no step or rule took.
    """

    path: Path
    name: str
    steps: tuple[Step, ...]
    vars: Mapping[str, JSON] = field(default_factory=dict)
    timeout: float = 5.0
    ignore: tuple[EventMatcher, ...] = ()
    ignore_pointers: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    client: ClientSpec | None = None
    server: ServerSpec | None = None
    rules: tuple[Rule, ...] = ()
    description: str = ""
    strict: SourceRef | None = None

    @property
    def side(self) -> Side:
        """``client`` for a scenario run against a server, ``server`` for a fake server."""
        return "client" if self.client is not None else "server"
