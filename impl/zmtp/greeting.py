"""The ZMTP 3.x greeting (RFC 23 / RFC 37, "Version Negotiation").

    0      FF            signature start
    1-8    padding       not significant (libzmq: identity length + 1, big endian)
    9      7F            signature end; bit 0 set means "versioned" (not ZMTP 1.0)
    10     major         03
    11     minor         00 (ZMTP 3.0) or 01 (ZMTP 3.1)
    12-31  mechanism     ASCII, NUL padded
    32     as-server     00 or 01
    33-63  filler        31 x 00

The greeting goes out in stages so that peers which detect old versions (libzmq
among them) never wait on us: the 10-octet signature first, the major version
once the peer's signature is in, the rest once the peer's major version is in.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from .errors import ProtocolError

GREETING_SIZE = 64
SIGNATURE_SIZE = 10
MECHANISM_SIZE = 20
CLAUSE = "23/ZMTP#version-negotiation"
_MECHANISM_RE = re.compile(rb"[A-Z0-9\-_.+]{1,20}")


def encode_signature(identity_length: int = 0) -> bytes:
    """Octets 0-9: the (pseudo-)signature that also reads as a ZMTP 1.0 identity header."""
    return b"\xff" + struct.pack(">Q", identity_length + 1) + b"\x7f"


def encode_mechanism(name: str) -> bytes:
    raw = name.encode("ascii")
    if not _MECHANISM_RE.fullmatch(raw):
        raise ValueError(f"mechanism name {name!r} must be 1-20 characters of A-Z 0-9 - _ . +")
    return raw.ljust(MECHANISM_SIZE, b"\x00")


def decode_mechanism(raw: bytes) -> str:
    """The mechanism field as text; ProtocolError if it is not `mechanism-char`s then NULs."""
    name = raw.rstrip(b"\x00")
    if not _MECHANISM_RE.fullmatch(name) or b"\x00" in name:
        raise ProtocolError(
            f"greeting mechanism {raw!r} is not 1-20 characters of A-Z 0-9 - _ . + padded with NULs",
            clause=CLAUSE,
        )
    return name.decode("ascii")


@dataclass(frozen=True, slots=True)
class Greeting:
    major: int = 3
    minor: int = 1
    mechanism: str = "NULL"
    as_server: bool = False
    padding: bytes = b"\x00" * 7 + b"\x01"

    def encode(self) -> bytes:
        return (
            b"\xff"
            + self.padding
            + b"\x7f"
            + bytes((self.major, self.minor))
            + encode_mechanism(self.mechanism)
            + (b"\x01" if self.as_server else b"\x00")
            + b"\x00" * 31
        )

    @property
    def version(self) -> tuple[int, int]:
        return (self.major, self.minor)

    @classmethod
    def decode(cls, data: bytes) -> Greeting:
        """Parse a whole 64-octet ZMTP 3.x greeting.

        Padding and filler are deliberately not validated (RFC 23: padding MUST
        NOT be validated; libzmq ignores the filler too). The validator in the
        harness reports a non-zero filler; a peer does not close over it.
        """
        if len(data) != GREETING_SIZE:
            raise ProtocolError(f"greeting is {len(data)} octets, expected 64", clause=CLAUSE)
        if data[0] != 0xFF or not data[9] & 0x01:
            raise ProtocolError(f"greeting signature {data[:10].hex()} is not FF <8 octets> 7F", clause=CLAUSE)
        if data[10] < 3:
            raise ProtocolError(f"greeting major version {data[10]} is below 3", clause=CLAUSE)
        as_server = data[32]
        if as_server > 1:
            raise ProtocolError(f"greeting as-server octet is 0x{as_server:02x}, expected 00 or 01", clause=CLAUSE)
        return cls(
            major=data[10],
            minor=data[11],
            mechanism=decode_mechanism(data[12:32]),
            as_server=bool(as_server),
            padding=bytes(data[1:9]),
        )
