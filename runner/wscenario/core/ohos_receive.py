"""How incoming data becomes ``message`` (and ``dataEnd``) events at a given API level.

From API 11 the device reassembles: pieces are appended to a per-type accumulator (text
and binary apart) and one message is delivered when the last piece arrives. ``dataEnd``
follows binary messages at API 11 and every message from API 12. Up to API 10 every piece
of at most 4096 bytes is a message of its own, and there is no ``dataEnd``.
"""

from __future__ import annotations

from typing import NamedTuple

from wscenario.core.wire import DataFrame

LEGACY_CHUNK = 4096
"""The receive buffer size that cut messages into pieces up to API 10."""


class Delivery(NamedTuple):
    """One ``message`` value, and whether a ``dataEnd`` follows it."""

    data: str | bytes
    data_end: bool


class MessageAssembler:
    """Turns the data pieces the app receives into deliveries (``api``: ``None`` is newest)."""

    def __init__(self, api: int | None = None) -> None:
        self._legacy = api is not None and api <= 10
        self._text_end = api != 11
        self._text: list[str] = []
        self._binary: list[bytes] = []

    def feed(self, piece: DataFrame) -> list[Delivery]:
        """The deliveries this piece completes (none until a message's last piece)."""
        if self._legacy:
            return _legacy_pieces(piece.data)
        data = piece.data
        if isinstance(data, str):
            if self._text or not piece.final:
                self._text.append(data)
                if not piece.final:
                    return []
                data, self._text = "".join(self._text), []
            return [Delivery(data, self._text_end)]
        if self._binary or not piece.final:
            self._binary.append(data)
            if not piece.final:
                return []
            data, self._binary = b"".join(self._binary), []
        return [Delivery(data, True)]


def _legacy_pieces(data: str | bytes) -> list[Delivery]:
    """Up to API 10: a delivery per piece of at most ``LEGACY_CHUNK`` bytes, no ``dataEnd``."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    pieces = [raw[at : at + LEGACY_CHUNK] for at in range(0, max(len(raw), 1), LEGACY_CHUNK)]
    if isinstance(data, str):
        return [Delivery(piece.decode("utf-8", "replace"), False) for piece in pieces]
    return [Delivery(piece, False) for piece in pieces]
