"""How incoming data becomes ``message`` (and ``dataEnd``) events at a given API level.

From API 11 the device reassembles: pieces are appended to a per-type accumulator (text
and binary apart) and one message is delivered when the last piece arrives. ``dataEnd``
follows binary messages at API 11 and every message from API 12. Up to API 10 every piece
of at most 4096 bytes is a message of its own, and there is no ``dataEnd``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from wscenario.core.wire import DataFrame

LEGACY_CHUNK = 4096
"""The receive buffer size that cut messages into pieces up to API 10."""


@dataclass(frozen=True)
class Delivery:
    """One ``message`` value, and whether a ``dataEnd`` follows it."""

    data: str | bytes
    data_end: bool


class MessageAssembler:
    """Turns the data pieces the app receives into deliveries (``api``: ``None`` is newest)."""

    def __init__(self, api: int | None = None) -> None:
        self._api = api
        self._text: list[str] = []
        self._binary: list[bytes] = []

    def feed(self, piece: DataFrame) -> Iterator[Delivery]:
        """The deliveries this piece completes (none until a message's last piece)."""
        if self._api is not None and self._api <= 10:
            yield from self._legacy(piece.data)
            return
        if isinstance(piece.data, str):
            self._text.append(piece.data)
            if piece.final:
                text, self._text = "".join(self._text), []
                yield Delivery(text, self._api != 11)
        else:
            self._binary.append(piece.data)
            if piece.final:
                data, self._binary = b"".join(self._binary), []
                yield Delivery(data, True)

    @staticmethod
    def _legacy(data: str | bytes) -> Iterator[Delivery]:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        for start in range(0, max(len(raw), 1), LEGACY_CHUNK):
            chunk = raw[start : start + LEGACY_CHUNK]
            yield Delivery(
                chunk.decode("utf-8", "replace") if isinstance(data, str) else chunk, False
            )
