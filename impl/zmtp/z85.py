"""Z85 (RFC 32): 4 octets <-> 5 printable characters, big endian."""

from __future__ import annotations

ALPHABET = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_DECODE = {c: i for i, c in enumerate(ALPHABET)}


def encode(data: bytes) -> str:
    if len(data) % 4:
        raise ValueError(f"Z85 encodes whole groups of 4 octets; got {len(data)} octets")
    out = bytearray()
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i : i + 4], "big")
        chunk = bytearray(5)
        for j in range(4, -1, -1):
            value, chunk[j] = divmod(value, 85)
            chunk[j] = ALPHABET[chunk[j]]
        out += chunk
    return out.decode("ascii")


def decode(text: str | bytes) -> bytes:
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    if len(raw) % 5:
        raise ValueError(f"Z85 decodes whole groups of 5 characters; got {len(raw)} characters")
    out = bytearray()
    for i in range(0, len(raw), 5):
        value = 0
        for pos, c in enumerate(raw[i : i + 5]):
            digit = _DECODE.get(c)
            if digit is None:
                raise ValueError(f"{chr(c)!r} at position {i + pos} is not in the Z85 alphabet")
            value = value * 85 + digit
        if value > 0xFFFFFFFF:
            raise ValueError(f"Z85 group {raw[i : i + 5].decode()!r} is larger than 32 bits")
        out += value.to_bytes(4, "big")
    return bytes(out)
