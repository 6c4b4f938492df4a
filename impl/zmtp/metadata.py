"""Metadata properties carried by READY and INITIATE (RFC 23 / RFC 37, "Connection Metadata").

    property = name value
    name     = short-size 1*255name-char        ; ALPHA DIGIT - _ . +
    value    = 4OCTET *OCTET                    ; size in network order, <= 2^31-1

Names are case-insensitive, so `Metadata` looks them up without regard to
case while keeping the spelling the peer used for display.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Mapping

from .errors import ProtocolError

CLAUSE = "37/ZMTP#the-null-security-mechanism"
MAX_VALUE_SIZE = (1 << 31) - 1
_NAME_RE = re.compile(rb"[A-Za-z0-9\-_.+]{1,255}")
_unpack_u32 = struct.Struct(">I").unpack_from


class Metadata(Mapping[str, bytes]):
    """An ordered, case-insensitive mapping from property name to value bytes."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, bytes] | list[tuple[str, bytes]] | None = None) -> None:
        self._items: dict[str, tuple[str, bytes]] = {}
        pairs = items.items() if isinstance(items, Mapping) else (items or [])
        for name, value in pairs:
            self._items[name.lower()] = (name, value)

    def __getitem__(self, name: str) -> bytes:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Metadata({dict(self.items())!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return {k.lower(): v for k, v in self.items()} == {str(k).lower(): v for k, v in other.items()}
        return NotImplemented

    def encode(self) -> bytes:
        return encode_properties(list(self.items()))


def encode_properties(props: list[tuple[str, bytes]]) -> bytes:
    out = bytearray()
    for name, value in props:
        raw = name.encode("ascii")
        if not _NAME_RE.fullmatch(raw):
            raise ValueError(f"metadata name {name!r} must be 1-255 characters of A-Z a-z 0-9 - _ . +")
        if len(value) > MAX_VALUE_SIZE:
            raise ValueError(f"metadata value for {name!r} is {len(value)} bytes, more than 2^31-1")
        out.append(len(raw))
        out += raw
        out += struct.pack(">I", len(value))
        out += value
    return bytes(out)


def decode_properties(data: bytes, *, command: str = "READY") -> Metadata:
    """Parse a run of properties; any truncation or bad name is a ProtocolError."""
    items: list[tuple[str, bytes]] = []
    pos = 0
    end = len(data)
    while pos < end:
        name_len = data[pos]
        pos += 1
        if name_len == 0:
            raise ProtocolError(f"{command} property at offset {pos - 1} has a zero-length name", clause=CLAUSE)
        if pos + name_len > end:
            raise ProtocolError(
                f"{command} property name truncated: {name_len} octets announced, {end - pos} left", clause=CLAUSE
            )
        name = data[pos : pos + name_len]
        if not _NAME_RE.fullmatch(name):
            raise ProtocolError(
                f"{command} property name {name!r} has characters outside ALPHA DIGIT - _ . +", clause=CLAUSE
            )
        pos += name_len
        if pos + 4 > end:
            raise ProtocolError(f"{command} property {name.decode()!r} has a truncated value size", clause=CLAUSE)
        value_len = _unpack_u32(data, pos)[0]
        pos += 4
        if value_len > MAX_VALUE_SIZE:
            raise ProtocolError(
                f"{command} property {name.decode()!r} value size {value_len} exceeds 2^31-1", clause=CLAUSE
            )
        if pos + value_len > end:
            raise ProtocolError(
                f"{command} property {name.decode()!r} value truncated: {value_len} octets announced, {end - pos} left",
                clause=CLAUSE,
            )
        items.append((name.decode("ascii"), bytes(data[pos : pos + value_len])))
        pos += value_len
    return Metadata(items)
