"""Frames as this side writes them: header, masking, close payloads, fragments.

Frames are built here rather than by wsproto so that anything a scenario asks for can be
written: any close code, a close frame without payload, reserved opcodes, RSV bits.
"""

from __future__ import annotations

import os
import struct
from functools import lru_cache

from wsproto.frame_protocol import (
    LOCAL_ONLY_CLOSE_REASONS,
    MAX_CLOSE_REASON,
    MAX_PROTOCOL_CLOSE_REASON,
    CloseReason,
)

CLOSE_REASON_BYTES = 123
"""The longest close reason that fits a control frame (125 bytes minus the code)."""

_ASSIGNED_CLOSE_CODES = frozenset(int(code) for code in CloseReason) - {
    int(code) for code in LOCAL_ONLY_CLOSE_REASONS
}

_SMALL_MASK = 1024
"""Up to this size, masking with one big-integer XOR is faster than byte translation."""


@lru_cache(maxsize=256)
def _xor_table(key_byte: int) -> bytes:
    """The translation table that XORs every byte with ``key_byte``."""
    return bytes(value ^ key_byte for value in range(256))


def mask_payload(payload: bytes, key: bytes) -> bytes | bytearray:
    """``payload`` XORed with the 4-byte ``key`` (masking and unmasking are the same)."""
    size = len(payload)
    if size > _SMALL_MASK:
        # one copy, then every fourth byte translated in place: few passes over large payloads
        masked = bytearray(payload)
        for lane in range(4):
            masked[lane::4] = masked[lane::4].translate(_xor_table(key[lane]))
        return masked
    repeated = (key * ((size >> 2) + 1))[:size]
    mixed = int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")
    return mixed.to_bytes(size, "little")


def encode_frame(
    opcode: int, payload: bytes, *, masked: bool, fin: bool = True, rsv: int = 0
) -> bytes:
    """One frame exactly as described; ``rsv`` holds the RSV bits in place (0x70 = all).

    Clients must mask (``masked=True``) with a fresh random key per frame (RFC 6455 §5.3).
    """
    size = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if masked else 0
    if size < 126:
        header = bytes((first, mask_bit | size))
    elif size < 0x10000:
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, size)
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + mask_payload(payload, key)


def close_payload(code: int | None, reason: str) -> bytes:
    """A close frame's payload: empty for ``None``, else the code and the reason cut to 123 bytes.

    Any code from 0 to 65535 is written as given, valid or not.

    Raises:
        ValueError: the code does not fit in two bytes.
    """
    if code is None:
        return b""
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"a close code is 0 to 65535, not {code}")
    encoded = reason.encode("utf-8", "surrogatepass")
    if len(encoded) > CLOSE_REASON_BYTES:
        encoded = encoded[:CLOSE_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")
    return struct.pack("!H", code) + encoded


def split_payload(data: bytes, parts: int) -> list[bytes]:
    """``data`` cut into ``parts`` pieces of nearly equal size (trailing ones may be empty)."""
    step = -(-len(data) // parts) if data else 0
    return [data[index * step : (index + 1) * step] for index in range(parts)]


def close_code_allowed(code: int) -> bool:
    """Whether a peer may send ``code`` in a close frame (RFC 6455 §7.4, as wsproto judges).

    Assigned codes other than the local-only 1005, 1006 and 1015, and 3000 to 4999.
    """
    return code in _ASSIGNED_CLOSE_CODES or MAX_PROTOCOL_CLOSE_REASON < code <= MAX_CLOSE_REASON
