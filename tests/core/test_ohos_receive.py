"""Message delivery by API level: reassembly and dataEnd, or legacy 4 KB pieces."""

from __future__ import annotations

import pytest

from wscenario.core.ohos_receive import Delivery, MessageAssembler
from wscenario.core.wire import DataFrame


def text(data: str, *, first: bool = True, final: bool = True) -> DataFrame:
    return DataFrame("text", data, first, final)


def binary(data: bytes, *, first: bool = True, final: bool = True) -> DataFrame:
    return DataFrame("binary", data, first, final)


def feed(assembler: MessageAssembler, *pieces: DataFrame) -> list[Delivery]:
    return [d for piece in pieces for d in assembler.feed(piece)]


def test_fragments_are_reassembled_into_one_message() -> None:
    deliveries = feed(
        MessageAssembler(),
        text("he", final=False),
        text("ll", first=False, final=False),
        text("o", first=False),
    )
    assert deliveries == [Delivery("hello", True)]


def test_text_and_binary_accumulate_apart() -> None:
    assembler = MessageAssembler()
    deliveries = feed(
        assembler,
        binary(b"\x00", final=False),
        text("a", final=False),
        binary(b"\x01", first=False),
        text("b", first=False),
    )
    assert deliveries == [Delivery(b"\x00\x01", True), Delivery("ab", True)]


@pytest.mark.parametrize(("api", "text_end"), [(11, False), (12, True), (None, True)])
def test_data_end_after_binary_from_11_and_text_from_12(api: int | None, text_end: bool) -> None:
    deliveries = feed(MessageAssembler(api), text("t"), binary(b"b"))
    assert deliveries == [Delivery("t", text_end), Delivery(b"b", True)]


def test_empty_messages() -> None:
    assert feed(MessageAssembler(), text(""), binary(b"")) == [
        Delivery("", True),
        Delivery(b"", True),
    ]


def test_legacy_delivers_each_piece_in_4096_byte_chunks_without_data_end() -> None:
    assembler = MessageAssembler(10)
    deliveries = feed(assembler, binary(b"a" * 5000, final=False), binary(b"b", first=False))
    assert deliveries == [
        Delivery(b"a" * 4096, False),
        Delivery(b"a" * 904, False),
        Delivery(b"b", False),
    ]
    assert feed(assembler, text("")) == [Delivery("", False)]


def test_legacy_text_chunks_cut_bytes_not_characters() -> None:
    deliveries = feed(MessageAssembler(6), text("a" + "é" * 2048))
    assert [d.data for d in deliveries] == ["a" + "é" * 2047 + "\ufffd", "\ufffd"]
