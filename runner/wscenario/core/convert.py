"""Transcripts become scenario steps: what one side did is called, what the other did expected.

A transcript (``docs/transcripts.md``) records both sides of one connection. Playing one
``side`` of it means: the records ``from`` that side become calls (``connect``, ``send``,
``ping``, ``close``, ``drop``), the records from the other side become expectations (``open``,
``message``/``messageReceive``, ``ping``, ``pong``, ``close``). ``StepMaker`` turns records
into steps of the scenario language one at a time (so a replay can stream), ``to_model`` makes
a runnable model step of one, and ``convert`` plus ``render_yaml`` write a whole editable
scenario, with ``sleep`` steps for the recorded gaps and volatile-looking values (uuids,
timestamps, epoch times, tokens, increasing counters) pointed out or, ``loose``, wildcarded.
Identifiers the peer sent and this side sends back are saved and sent as variables
(correlation), so a peer that issues fresh ones gets its own back.

Choices, so that a converted scenario replays the recorded bytes exactly:

* a JSON text is sent as ``{json: ...}`` only when its compact form is the recorded text, and
  expected as ``{json: ...}`` when it is an object or array (so ``ignore`` pointers apply);
* text holding ``{{`` (which would read as a template) goes through a variable (a text that
  is exactly ``{{ env.NAME }}`` without its last ``}}``, which a default would read);
* an identifier (``CORRELATED``) in the peer's JSON is saved on its ``expect``, and sent as
  ``{{ name }}`` wherever this side sends it again (not in text that goes through a variable);
  ``convert`` keeps only the saves some send uses;
* closes the engine answers by itself (the echo of the peer's close) and pongs are not replayed;
* redaction placeholders ``<redacted:NAME:xxxx>`` become ``{{ env.WSCENARIO_SECRET_NAME }}``,
  and a remark at the top lists the variables to set;
* a recorded url's ``user:password@`` is left out (a scenario's url may not hold it);
* what this side did that its steps cannot do is left out with a note at its place: a client's
  pings and drops in the ohos profile (an app can do neither), the peer's pongs to those
  pings, a protocol break (and the peer's records after a connection end that is left out,
  which cannot follow);
* ``error`` records (a refused handshake, a frame that formed no message) become notes;
* a close a recording proxy sent on its own (its ``error`` record says so) is left out when it
  went to this side, and played as this side's when it went to the peer (the peer saw it so).

Text that is not valid Unicode never gets here: the transcript reader refuses it.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml

from wscenario.core import model
from wscenario.core.diagnostics import Position
from wscenario.core.matchers import PointerError, escape_token, resolve_pointer
from wscenario.core.model import JSON, Side
from wscenario.core.redaction import PLACEHOLDER, restore, secret_order, secret_variable
from wscenario.core.templating import env_key, map_strings
from wscenario.core.transcript import End, Header, TranscriptEvent

MIN_SLEEP = 0.05
"""Gaps shorter than this (seconds) are not written as ``sleep`` steps."""

SKIPPED_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
"""Request headers a client library writes itself (plus every ``sec-websocket-*``)."""

VARIABLE_PREFIX = "text"
"""Variables holding text that contains ``{{`` are named ``text1``, ``text2``..."""

_VERBATIM_NAME = re.compile(rf"{VARIABLE_PREFIX}\d*")
"""The names of those variables, never given to a saved value."""

MAX_SAVED = 1_000
"""At most this many saved values are remembered for sending back (the latest used)."""

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
_HEX = re.compile(r"[0-9a-fA-F]{16,}")
_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{20,}={0,2}")
_EPOCH_RANGES = ((1e9, 1e10), (1e12, 1e13), (1e15, 1e16), (1e18, 1e19))
"""Seconds, milliseconds, microseconds, nanoseconds since 1970 (2001..2286)."""

_WILDCARDS: dict[str, JSON] = {
    "uuid": {
        "$regex": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    },
    "timestamp": {"$regex": "^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}"},
    "hex token": {"$regex": "^[0-9a-fA-F]+$"},
    "token": {"$any": "string"},
    "epoch time": {"$any": "number"},
    "counter": {"$any": "number"},
}

Kind = Literal["uuid", "timestamp", "hex token", "token", "epoch time", "counter"]

CORRELATED: frozenset[Kind] = frozenset({"uuid", "hex token", "token"})
"""Volatile strings saved for sending back: identifiers, each at least 16 characters long (a
time or a number is seldom sent back, and short values would match by chance)."""

_DROPS: dict[str, dict[str, JSON]] = {"eof": {}, "reset": {"mode": "rst"}}
"""How a recorded ``disconnect`` of this side is played: a ``drop`` step (others are not)."""

_PROXY_CLOSE = re.compile(r"the proxy, not the \w+, sent the next close")
"""The ``error`` a recording proxy writes before a close frame it sent on its own."""


# ------------------------------------------------------------------------------ secrets


def _templated_secrets(text: str, used: set[str]) -> str:
    """``text`` with each placeholder a template reading its variable, which joins ``used``."""

    def template(found: re.Match[str]) -> str:
        variable = secret_variable(found[1])
        used.add(variable)
        return f"{{{{ env.{variable} }}}}"

    return PLACEHOLDER.sub(template, text)


# ------------------------------------------------------------------------------ the handshake


def request_headers(headers: Iterable[tuple[str, str]]) -> tuple[dict[str, str], str | None]:
    """Headers worth sending again (lower-case names, repeats joined), and the subprotocols.

    Hop-by-hop headers, ``Host`` and every ``Sec-WebSocket-*`` header are left to the client
    library; ``Sec-WebSocket-Protocol`` comes back as the second value.
    """
    kept: dict[str, str] = {}
    protocol: str | None = None
    for name, value in headers:
        key = name.lower()
        if key == "sec-websocket-protocol":
            protocol = value if protocol is None else f"{protocol}, {value}"
        elif key not in SKIPPED_HEADERS and not key.startswith("sec-websocket-"):
            kept[key] = f"{kept[key]}, {value}" if key in kept else value
    return kept, protocol


def selected_protocol(headers: Iterable[tuple[str, str]]) -> str | None:
    """The subprotocol a response selected, if any."""
    for name, value in headers:
        if name.lower() == "sec-websocket-protocol":
            return value
    return None


def target_url(url: str, target: str) -> str:
    """Where to connect: ``url``, with the recorded request ``target`` when ``url`` has no path.

    ``ws://host:1234`` and ``ws://host:1234/`` take the recorded path and query
    (``/chat?room=1``); a url with its own path (or query) is used as it is.
    """
    parts = urlsplit(url)
    if parts.path not in ("", "/") or parts.query:
        return url
    recorded = urlsplit(target if target.startswith("/") else "/" + target)
    return urlunsplit((parts.scheme, parts.netloc, recorded.path, recorded.query, ""))


# ------------------------------------------------------------------------------ volatile values


def volatile_kind(value: JSON) -> Kind | None:
    """What a value looks like if it probably changes from run to run, else ``None``."""
    if isinstance(value, str):
        if _UUID.fullmatch(value):
            return "uuid"
        if _ISO_TIME.fullmatch(value):
            return "timestamp"
        if _HEX.fullmatch(value):
            return "hex token"
        if _TOKEN.fullmatch(value) and re.search(r"\d", value) and re.search(r"[A-Za-z]", value):
            return "token"
        return None
    if _is_number(value) and any(low <= abs(value) < high for low, high in _EPOCH_RANGES):  # type: ignore[arg-type]
        return "epoch time"
    return None


@dataclass
class VolatileFinder:
    """Finds volatile values inside JSON messages, remembering numbers to spot counters.

    A number is a counter when the same pointer held a smaller number in an earlier message
    from the same side. At most ``max_pointers`` pointers are remembered.
    """

    max_pointers: int = 10_000
    _last: dict[tuple[str, str], float] = field(default_factory=dict)

    def find(self, role: str, value: JSON, pointer: str = "") -> list[tuple[str, Kind]]:
        """The pointers of ``value`` that look volatile, with what they look like."""
        found: list[tuple[str, Kind]] = []
        for at, leaf in _leaves(value, pointer):
            kind = volatile_kind(leaf)
            if kind is None and _is_number(leaf):
                number = float(leaf)  # type: ignore[arg-type]
                where = (role, at)
                before = self._last.get(where)
                if before is not None and number > before:
                    kind = "counter"
                if where in self._last or len(self._last) < self.max_pointers:
                    self._last[where] = number
            if kind is not None:
                found.append((at, kind))
        return found


def _leaves(value: JSON, pointer: str = "") -> Iterator[tuple[str, JSON]]:
    """Every value inside ``value`` that is neither an object nor an array, with its pointer."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{pointer}/{escape_token(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{pointer}/{index}")
    else:
        yield pointer, value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def wildcarded(value: JSON, found: Iterable[tuple[str, Kind]]) -> JSON:
    """``value`` with each found pointer replaced by a wildcard of its kind."""
    for pointer, kind in found:
        value = _replace(value, pointer.split("/")[1:], _WILDCARDS[kind])
    return value


def placed(value: JSON, wildcards: Mapping[str, JSON]) -> JSON:
    """``value`` with the wildcard of each pointer put where the pointer leads, if it does."""
    for pointer, wildcard in wildcards.items():
        try:
            resolve_pointer(value, pointer)
        except PointerError:
            continue
        value = _replace(value, pointer.split("/")[1:], wildcard)
    return value


def pointers_in(text: str, pointers: Iterable[str]) -> set[str]:
    """Those of ``pointers`` that lead to a value in ``text`` read as JSON (none if it is not)."""
    value = _json_of(text)
    if not isinstance(value, dict | list):
        return set()
    found = set()
    for pointer in pointers:
        try:
            resolve_pointer(value, pointer)
        except PointerError:
            continue
        found.add(pointer)
    return found


def _replace(value: JSON, tokens: list[str], wildcard: JSON) -> JSON:
    if not tokens:
        return wildcard
    head = tokens[0].replace("~1", "/").replace("~0", "~")
    if isinstance(value, dict):
        return {k: _replace(v, tokens[1:], wildcard) if k == head else v for k, v in value.items()}
    assert isinstance(value, list)
    index = int(head)
    return [_replace(v, tokens[1:], wildcard) if i == index else v for i, v in enumerate(value)]


# ------------------------------------------------------------------------------ steps


@dataclass(frozen=True)
class MadeStep:
    """One scenario step made from a record.

    ``data`` is the step in the scenario language; ``call`` says it is this side's action
    (scheduled at ``t``, seconds after the session started); ``notes`` are remarks for a person
    (volatile values); ``variables`` are variables the step needs (text holding ``{{``);
    ``saved`` names the variables its ``save`` stores.
    """

    data: dict[str, JSON]
    t: float
    call: bool
    notes: tuple[str, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)
    saved: tuple[str, ...] = ()


@dataclass
class StepMaker:
    """Turns the records of one transcript into steps for ``side``, one record at a time.

    ``url`` is where a client connects (``None``: the ``client`` section's url is used).
    ``loose`` turns volatile values in expected JSON into wildcards; ``wildcards`` puts the
    given wildcard at each JSON Pointer an expected JSON message has. Redaction placeholders
    become ``{{ env.WSCENARIO_SECRET_NAME }}`` templates (convert; the variables they read
    collect in ``secrets``) or, given ``env``, are put back from it at once (replay); the
    variables that were not set collect in ``missing``.
    What this side did that its steps cannot do is named in ``left_out`` (``ping``, ``drop``
    (an ohos client), ``protocol break``) and noted where it happened.

    Each identifier (``CORRELATED``) in the peer's JSON is saved by its ``expect`` under a name
    made from its pointer (``session``, ``session_2``...), except at or under ``ignore`` and
    ``wildcards`` pointers (values a peer may leave out); where this side sends it again, not
    as part of a longer word, the step sends ``{{ name }}`` instead, and the name joins
    ``echoed``. The ``max_saved`` latest used are remembered.
    """

    side: Side
    url: str | None = None
    loose: bool = False
    wildcards: Mapping[str, JSON] = field(default_factory=dict)
    env: Mapping[str, str] | None = None
    profile: model.Profile = "raw"
    finder: VolatileFinder = field(default_factory=VolatileFinder)
    ignore: Collection[str] = ()
    max_saved: int = MAX_SAVED
    missing: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    left_out: set[str] = field(default_factory=set)
    echoed: set[str] = field(default_factory=set)
    _peer_closed: bool = False
    _closed_here: bool = False
    _proxy_closes: set[str] = field(default_factory=set)
    _ended_here: Literal["no", "yes", "noted"] = "no"
    _variables: int = 0
    _one_variable: bool = False
    _saved: dict[str, str] = field(default_factory=dict)  # value -> name, least recent first

    def steps(self, event: TranscriptEvent | End) -> list[MadeStep]:
        """The steps one record becomes, often none or one."""
        if isinstance(event, End):
            return []
        record = _flat(event)
        kind = event.type
        ours = event.from_ == self.side
        t = event.t
        if kind == "error":
            if _PROXY_CLOSE.match(record["message"]):
                self._proxy_closes.add(event.from_)
            note = f"recorded error from the {event.from_}: {record['message']}"
            return [MadeStep({}, t, call=False, notes=(note,))]
        if self._ended_here != "no" and not ours:
            return self._after_end(t)
        if kind == "request":
            return self._request(record, t) if ours else [self._expect_connect(record, t)]
        if kind == "response":
            return [] if ours else [self._expect_open(record, t)]
        if kind in ("text", "binary"):
            return [self._send(record, t) if ours else self._expect_message(record, t)]
        if kind in ("ping", "pong") and not ours:
            shown = self.profile == "raw"  # a device does not report control frames
            return [self._expect_control(kind, record, t)] if shown else []
        if kind == "ping":
            return self._ping(record, t)
        if kind == "pong":
            return []
        if kind == "close":
            return self._close(record, t, ours)
        return self._disconnect(record, t, ours)

    # -- calls ---------------------------------------------------------------------------

    def _request(self, record: Mapping[str, Any], t: float) -> list[MadeStep]:
        if self.url is None:
            return [MadeStep({"connect": {}}, t, call=True)]
        headers, protocol = request_headers(record["headers"])
        options: dict[str, JSON] = {"header": {k: self._secret(v) for k, v in headers.items()}}
        if protocol is not None:
            options["protocol"] = protocol
        url = self._secret(target_url(self.url, record["target"]))
        return [MadeStep({"connect": {"url": url, "options": options}}, t, call=True)]

    def _send(self, record: Mapping[str, Any], t: float) -> MadeStep:
        if record["type"] == "binary":
            return MadeStep({"send": {"binary": {"base64": record["data"]}}}, t, call=True)
        text: str = self._secret(record["data"])
        value = _json_of(text)
        if value is not None and _compact(value) == text and "{{" not in text:
            return MadeStep({"send": {"json": self._echoed_json(value)}}, t, call=True)
        payload, variables = self._verbatim(text)
        if not variables:
            payload = self._echoed(payload)
        return MadeStep({"send": {"text": payload}}, t, call=True, variables=variables)

    def _ping(self, record: Mapping[str, Any], t: float) -> list[MadeStep]:
        if self._plays_faults():
            return [MadeStep({"ping": {"base64": record["data"]}}, t, call=True)]
        self.left_out.add("ping")
        note = (
            f"the client sent a ping here (payload {record['data']} in base64); left out with "
            f"the server's pong: {self._why_not('ping')}"
        )
        return [MadeStep({}, t, call=True, notes=(note,))]

    def _plays_faults(self) -> bool:
        """Whether this side's pings and drops become steps."""
        return self.side == "server" or self.profile == "raw"

    @staticmethod
    def _why_not(step: Literal["ping", "drop"]) -> str:
        """Why an ohos client's ping or drop cannot be a step."""
        if step == "ping":
            return "an ohos app cannot send pings (the device's heartbeat does: pingInterval)"
        return "an ohos app cannot drop a connection"

    def _close(self, record: Mapping[str, Any], t: float, ours: bool) -> list[MadeStep]:
        code: int | None = record["code"]
        reason: str = record["reason"]
        if record["from"] in self._proxy_closes:
            self._proxy_closes.discard(record["from"])
            if not ours:  # the peer never sent it; this side's own is what its peer saw
                note = f"left out: the recording proxy sent this close, not the {record['from']}"
                return [MadeStep({}, t, call=False, notes=(note,))]
        if not ours:
            self._peer_closed = True
            shown = 1005 if code is None else code
            if self.profile == "ohos":
                note = (
                    f"recorded: close {shown} {reason!r}; a device reports its own code and reason"
                )
                return [MadeStep({"expect": "close"}, t, call=False, notes=(note,))]
            return [MadeStep({"expect": {"close": {"code": shown, "reason": reason}}}, t, False)]
        if self._peer_closed or self._closed_here:
            return []  # the engine answers the peer's close by itself; one close a side
        self._closed_here = True
        if code is None:
            data: dict[str, JSON] = {"noPayload": True} if self.side == "server" else {}
        else:
            data = {"code": code, "reason": reason}
        return [MadeStep({"close": data}, t, call=True)]

    def _disconnect(self, record: Mapping[str, Any], t: float, ours: bool) -> list[MadeStep]:
        if ours:
            drop = _DROPS.get(record["kind"])
            if drop is not None and self._plays_faults():
                return [MadeStep({"drop": drop}, t, call=True)]
            self._ended_here = "yes"
            if drop is not None:
                self.left_out.add("drop")
                note = (
                    f"the client dropped the connection here without a close frame; left out, "
                    f"so this scenario ends with a close instead: {self._why_not('drop')}"
                )
            else:
                self.left_out.add("protocol break")
                note = (
                    f"the {self.side} broke the connection here ({record['kind']}: "
                    f"{record['message']}): left out, it is not in the transcript"
                )
            return [MadeStep({}, t, call=True, notes=(note,))]
        self._peer_closed = True
        if self.profile == "ohos":
            return [
                MadeStep({"expect": {"error": {"code": 200}}}, t, call=False),
                MadeStep({"expect": "close"}, t, call=False),
            ]
        return [MadeStep({"expect": {"close": {"code": 1006}}}, t, call=False)]

    def _after_end(self, t: float) -> list[MadeStep]:
        """A peer's record after this side's connection end that was left out: it cannot
        follow, so it is left out too (noted once)."""
        if self._ended_here == "noted":
            return []
        self._ended_here = "noted"
        peer = "server" if self.side == "client" else "client"
        note = f"what the {peer} did after that is left out too"
        return [MadeStep({}, t, call=False, notes=(note,))]

    # -- expectations --------------------------------------------------------------------

    def _expect_connect(self, record: Mapping[str, Any], t: float) -> MadeStep:
        path = urlsplit(record["target"]).path or "/"
        return MadeStep({"expect": {"connect": {"path": path}}}, t, call=False)

    def _expect_open(self, record: Mapping[str, Any], t: float) -> MadeStep:
        status: int = record["status"]
        if status == 101:
            return MadeStep({"expect": {"open": {"status": 101}}}, t, call=False)
        if self.profile == "ohos":
            return MadeStep({"expect": {"error": {"code": 200}}}, t, call=False)
        return MadeStep({"expect": {"error": {"status": status}}}, t, call=False)

    def _expect_control(self, name: str, record: Mapping[str, Any], t: float) -> MadeStep:
        matcher: JSON = {"binary": {"base64": record["data"]}}
        return MadeStep({"expect": {name: matcher}}, t, call=False)

    def _expect_message(self, record: Mapping[str, Any], t: float) -> MadeStep:
        event = "message" if self.side == "client" else "messageReceive"
        if record["type"] == "binary":
            matcher: JSON = {"binary": {"base64": record["data"]}}
            return MadeStep({"expect": {event: matcher}}, t, call=False)
        text: str = self._secret(record["data"])
        value = _json_of(text)
        if isinstance(value, dict | list) and "{{" not in text and not _has_wildcard_shape(value):
            saves = self._saves(value)
            if self.wildcards:
                value = placed(value, self.wildcards)
            found = self.finder.find(record["from"], value)
            notes = tuple(
                f"{pointer} looks volatile ({kind}): wildcard it with {_flow(_WILDCARDS[kind])}"
                " or list it in ignorePointers"
                for pointer, kind in found
            )
            if self.loose and found:
                return _expect_json(event, wildcarded(value, found), saves, t)
            return _expect_json(event, value, saves, t, notes)
        payload, variables = self._verbatim(text)
        return MadeStep({"expect": {event: {"text": payload}}}, t, False, variables=variables)

    # -- text ----------------------------------------------------------------------------

    def _secret(self, text: str) -> str:
        if "<redacted:" not in text:
            return text
        if self.env is None:
            return _templated_secrets(text, self.secrets)
        missing: set[str] = set()
        restored = restore(text, self.env, missing)
        self.missing.update(secret_variable(name) for name in missing)
        return restored

    def _verbatim(self, text: str) -> tuple[str, dict[str, str]]:
        """Text as a step writes it: what holds ``{{`` through a variable, the secret
        templates of a conversion kept in the step (a default would not read them)."""
        if "{{" not in text or (self.env is None and _only_secrets(text)):
            return text, {}
        if self._one_variable:
            return f"{{{{ {VARIABLE_PREFIX} }}}}", {VARIABLE_PREFIX: text}
        written: list[str] = []
        variables: dict[str, str] = {}
        pieces = _SECRET_TEMPLATE.split(text) if self.env is None else [text]
        for index, piece in enumerate(pieces):  # secret templates at odd places
            if index % 2 or ("{{" not in piece and not piece.endswith("{")):
                written.append(piece)
                continue
            self._variables += 1
            name = f"{VARIABLE_PREFIX}{self._variables}"
            if env_key(piece) is None:
                written.append(f"{{{{ {name} }}}}")
                variables[name] = piece
            else:  # such a default would read the environment: its last }} stays outside
                written.append(f"{{{{ {name} }}}}}}}}")
                variables[name] = piece[:-2]
        return "".join(written), variables

    def reuse_variable(self) -> None:
        """Use one variable for every verbatim text (a replay runs one step at a time)."""
        self._one_variable = True

    # -- correlation ---------------------------------------------------------------------

    def _saves(self, value: JSON) -> dict[str, str]:
        """The ``save`` of a peer's JSON message: its identifiers not saved yet, by name."""
        saves: dict[str, str] = {}
        for pointer, leaf in _leaves(value):
            if (
                isinstance(leaf, str)
                and leaf not in self._saved
                and volatile_kind(leaf) in CORRELATED
                and not any(
                    pointer == p or pointer.startswith(f"{p}/")
                    for p in (*self.ignore, *self.wildcards)
                )
            ):
                name = self._free_name(pointer)
                saves[name] = pointer
                self._saved[leaf] = name
                if len(self._saved) > self.max_saved:
                    del self._saved[next(iter(self._saved))]
        return saves

    def _free_name(self, pointer: str) -> str:
        """A variable name made from the pointer's last token that no remembered value has."""
        token = pointer.rsplit("/", 1)[1].replace("~1", "/").replace("~0", "~")
        base = re.sub(r"[^A-Za-z0-9_]", "_", token)
        if not re.match(r"[A-Za-z_]", base):
            base = f"value{base}"
        taken = set(self._saved.values())
        name, number = base, 1
        while name in taken or _VERBATIM_NAME.fullmatch(name):
            number += 1
            name = f"{base}_{number}"
        return name

    def _echoed_json(self, value: JSON) -> JSON:
        """``value`` with the saved values in its strings (not keys) sent as variables."""
        return map_strings(value, self._echoed)

    def _echoed(self, text: str) -> str:
        """``text`` with each saved value in it written ``{{ name }}`` (templates kept)."""
        found = sorted((value for value in self._saved if value in text), key=len, reverse=True)
        if not found:
            return text
        values = "|".join(map(re.escape, found))
        pattern = rf"\{{\{{.*?\}}\}}|(?<![A-Za-z0-9])(?:{values})(?![A-Za-z0-9])"
        return re.sub(pattern, self._variable, text)

    def _variable(self, found: re.Match[str]) -> str:
        """A saved value as a template of its variable; a template as it is."""
        name = self._saved.pop(found[0], None)
        if name is None:
            return found[0]
        self._saved[found[0]] = name  # now the latest used
        self.echoed.add(name)
        return f"{{{{ {name} }}}}"


def _expect_json(
    event: str, value: JSON, saves: dict[str, str], t: float, notes: tuple[str, ...] = ()
) -> MadeStep:
    """The expectation of a JSON message, saving ``saves``."""
    body: dict[str, JSON] = {event: {"json": value}}
    if saves:
        body["save"] = {**saves}
    return MadeStep({"expect": body}, t, call=False, notes=notes, saved=tuple(saves))


_SECRET_TEMPLATE = re.compile(r"(\{\{ env\.WSCENARIO_SECRET_[A-Z0-9_]+ \}\})")
"""A secret template made from a placeholder (a group, so that ``split`` keeps it)."""


def _only_secrets(text: str) -> bool:
    """Whether every ``{{`` in ``text`` opens a secret template made from a placeholder."""
    return "{{" not in _SECRET_TEMPLATE.sub("", text)


def _flat(event: TranscriptEvent) -> dict[str, Any]:
    """An event as its JSON line has it (binary data in base64)."""
    flat: dict[str, Any] = {"t": event.t, "from": event.from_, "type": event.type}
    flat.update(event.fields)
    if isinstance(flat.get("data"), bytes):
        flat["data"] = base64.b64encode(flat["data"]).decode("ascii")
    return flat


def _json_of(text: str) -> JSON:
    try:
        value: JSON = json.loads(text)
    except ValueError:
        return None
    return value


def _compact(value: JSON) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _has_wildcard_shape(value: JSON) -> bool:
    """Whether the value holds an object that a ``json`` matcher would read as a wildcard."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith("$"):
            return True
        return any(_has_wildcard_shape(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_wildcard_shape(item) for item in value)
    return False


# ------------------------------------------------------------------------------ the model


def to_model(made: MadeStep, position: Position, pointer: str) -> model.Step | None:
    """The runnable model step of a made step (``None`` for a note-only step)."""
    data = made.data
    where: dict[str, Any] = {"position": position, "pointer": pointer}
    if "connect" in data:
        connect: Any = data["connect"]
        options = connect.get("options", {})
        return model.Connect(
            url=connect.get("url"),
            options=model.ConnectOptions(
                header=options.get("header", {}), protocol=options.get("protocol")
            ),
            **where,
        )
    if "send" in data:
        return model.Send(payload=_payload(data["send"]), **where)
    if "ping" in data:
        ping: Any = data["ping"]
        return model.Ping(data=base64.b64decode(ping["base64"]), **where)
    if "close" in data:
        close: Any = data["close"]
        return model.Close(
            code=close.get("code"),
            reason=close.get("reason"),
            no_payload=close.get("noPayload", False),
            **where,
        )
    if "drop" in data:
        drop: Any = data["drop"]
        return model.Drop(mode=drop.get("mode", "fin"), **where)
    if "expect" in data:
        expect: Any = data["expect"]
        if isinstance(expect, str):
            return model.Expect(matcher=model.EventMatcher(expect), **where)
        event = next(key for key in expect if key != "save")
        value = expect[event]
        if event in model.MESSAGE_EVENTS or event in ("ping", "pong"):
            matcher = model.EventMatcher(event, payload=_matcher(value))
        else:
            matcher = model.EventMatcher(event, fields=value)
        return model.Expect(matcher=matcher, save=expect.get("save", {}), **where)
    return None


def _payload(value: Any) -> model.Payload:
    if "json" in value:
        return model.JsonPayload(value["json"])
    if "text" in value:
        return model.TextPayload(value["text"])
    return model.BinaryPayload(base64.b64decode(value["binary"]["base64"]))


def _matcher(value: Any) -> model.PayloadMatcher:
    if "json" in value:
        return model.JsonMatcher(value["json"])
    if "text" in value:
        return model.TextMatcher(value["text"])
    return model.BinaryMatcher(base64.b64decode(value["binary"]["base64"]))


# ------------------------------------------------------------------------------ whole scenarios


@dataclass(frozen=True)
class Converted:
    """A whole scenario made from a transcript: its data, notes per step index, remarks.

    ``remarks`` are notes on the whole scenario (what was left out of it).
    """

    data: dict[str, JSON]
    notes: Mapping[int, tuple[str, ...]]
    remarks: tuple[str, ...] = ()


USERINFO_REMARK = (
    "the recorded url held user:password@, left out here; "
    "send credentials in a header (options: {header: {authorization: ...}})"
)


def convert(
    header: Header,
    records: Iterable[TranscriptEvent | End],
    *,
    side: Side,
    name: str,
    loose: bool = False,
    profile: model.Profile = "raw",
) -> Converted:
    """The scenario that plays ``side`` of a transcript (its header and later records).

    Gaps of at least ``MIN_SLEEP`` before this side's calls become ``sleep`` steps (rounded to
    10 ms). A client scenario connects to the header's url (without ``user:password@``) with
    the recorded headers. Values no send uses are not saved.
    """
    url, had_userinfo = _without_userinfo(header.url)
    maker = StepMaker(side, url=None, loose=loose, profile=profile)
    steps: list[JSON] = []
    saving: list[tuple[int, MadeStep]] = []
    notes: dict[int, tuple[str, ...]] = {}
    variables: dict[str, JSON] = {}
    section: dict[str, JSON] = {}
    previous = 0.0
    for record in records:
        if isinstance(record, TranscriptEvent) and record.type == "request":
            section = _section(url, record.fields, side, profile, maker.secrets)
        elif isinstance(record, TranscriptEvent) and record.type == "response" and section:
            protocol = selected_protocol(record.fields["headers"])
            if protocol is not None and side == "server":
                section["handshake"] = {"protocol": protocol}
        for made in maker.steps(record):
            gap = made.t - previous
            if made.call and gap >= MIN_SLEEP:
                steps.append({"sleep": f"{round(gap * 100) * 10}ms"})
            previous = max(previous, made.t)
            variables.update(made.variables)
            if made.notes:
                notes[len(steps)] = notes.get(len(steps), ()) + made.notes
            if made.saved:
                saving.append((len(steps), made))
            if made.data:
                steps.append(made.data)
    for index, made in saving:
        steps[index] = _used_saves(made, maker.echoed)
    if not section:
        section = _section(url, {"target": "/", "headers": ()}, side, profile, maker.secrets)
    data: dict[str, JSON] = {"wscenario": 1, "name": name}
    data["description"] = f"Converted from a transcript of {url}"
    if variables:
        data["vars"] = variables
    data[side] = section
    data["steps"] = steps
    remarks = [USERINFO_REMARK] if had_userinfo else []
    if maker.secrets:
        names = ", ".join(sorted(maker.secrets, key=secret_order))
        remarks.append(f"redacted secrets are read from the environment: {names}")
    if maker.left_out:
        things = ", ".join(sorted(maker.left_out))
        remarks.append(f"left out, as a {side} scenario cannot do it: {things}; see the comments")
    return Converted(data, notes, tuple(remarks))


def _used_saves(made: MadeStep, used: Collection[str]) -> dict[str, JSON]:
    """A made ``expect`` with only the saves in ``used``."""
    expect: Any = made.data["expect"]
    body = {key: value for key, value in expect.items() if key != "save"}
    kept = {name: expect["save"][name] for name in made.saved if name in used}
    return {"expect": {**body, "save": kept} if kept else body}


def _without_userinfo(url: str) -> tuple[str, bool]:
    """``url`` without ``user:password@``, and whether it had one."""
    parts = urlsplit(url)
    _, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, False
    return urlunsplit(parts._replace(netloc=host)), True


def _section(
    recorded_url: str, request: Mapping[str, Any], side: Side, profile: str, secrets: set[str]
) -> dict[str, JSON]:
    if side == "client":
        headers, protocol = request_headers(request["headers"])
        options: dict[str, JSON] = {}
        if headers:
            options["header"] = {k: _templated_secrets(v, secrets) for k, v in headers.items()}
        if protocol is not None:
            options["protocol"] = protocol
        recorded = urlsplit(recorded_url)
        base = urlunsplit((recorded.scheme, recorded.netloc, "", "", ""))
        url = _templated_secrets(target_url(base, request["target"]), secrets)
        client: dict[str, JSON] = {"url": url, "profile": profile}
        if options:
            client["options"] = options
        return client
    path = urlsplit(request["target"]).path or "/"
    return {"listen": "127.0.0.1:8765", "path": path}


# ------------------------------------------------------------------------------ YAML


def render_yaml(converted: Converted, *, source: str, schema: str) -> str:
    """The scenario as YAML text: the schema line, a note on where it came from, one step a line.

    ``schema`` is the path (or URL) of the scenario schema for editors. Each step's notes are
    written as comments on the lines above it.
    """
    data = dict(converted.data)
    steps = data.pop("steps")
    assert isinstance(steps, list)
    lines = [
        f"# yaml-language-server: $schema={_one_line(schema)}",
        f"# Converted from {_one_line(source)}; edit freely.",
        *(f"# {_one_line(remark)}" for remark in converted.remarks),
    ]
    lines += _dump(data).splitlines()
    lines.append("steps:" if steps else "steps: []")
    for index, step in enumerate(steps):
        lines += [f"  # {_one_line(note)}" for note in converted.notes.get(index, ())]
        lines.append("  - " + _flow(step))
    lines += [f"  # {_one_line(note)}" for note in converted.notes.get(len(steps), ())]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    """``text`` for a comment: line breaks and other unprintable characters escaped."""
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def _flow(value: JSON) -> str:
    return _dump(value, flow=True).strip()


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by several places (one wildcard) out in full at each place,
    never as a YAML anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(value: JSON, *, flow: bool = False) -> str:
    text: str = yaml.dump(
        value,
        Dumper=_PlainDumper,
        default_flow_style=flow,
        sort_keys=False,
        allow_unicode=True,
        width=math.inf,
    )
    return text.removesuffix("\n...\n")
