"""ZMTP 3.x framing (RFC 23 / RFC 37, "Framing").

A frame is a flags octet, a size (one octet, or eight in network order when
the LONG flag is set) and a body. The decoder works on a growing buffer and
checks each header before it waits for the body, so that a hostile size is
refused before any memory is set aside for it.
"""

from __future__ import annotations

import struct

from .errors import MessageTooLarge, ProtocolError

MORE = 0x01
LONG = 0x02
COMMAND = 0x04
RESERVED_MASK = 0xF8

MAX_LONG_SIZE = (1 << 63) - 1
CLAUSE = "23/ZMTP#framing"

_pack_long = struct.Struct(">Q").pack
_unpack_long_from = struct.Struct(">Q").unpack_from

# Short headers are built by table lookup: one bytes object per (flags, size).
_SHORT_HEADERS = [[bytes((flags, size)) for size in range(256)] for flags in range(8)]


def frame_header(size: int, flags: int = 0) -> bytes:
    """The flags and size octets for a body of `size` bytes.

    The LONG flag is chosen here from the size: callers pass only MORE and COMMAND.
    """
    if size < 256:
        return _SHORT_HEADERS[flags][size]
    return bytes((flags | LONG,)) + _pack_long(size)


def encode_frame(body: bytes, *, more: bool = False, command: bool = False) -> bytes:
    flags = (MORE if more else 0) | (COMMAND if command else 0)
    return frame_header(len(body), flags) + body


def encode_command(name: bytes, data: bytes = b"") -> bytes:
    """A command frame: name length, name, data (RFC 37 grammar `command-body`)."""
    body = bytes((len(name),)) + name + data
    return frame_header(len(body), COMMAND) + body


def encode_message(frames: list[bytes] | tuple[bytes, ...]) -> list[bytes]:
    """Header and body chunks for a whole message, ready for `writelines`.

    Bodies are passed through untouched so that a 1 MiB frame is never copied.
    """
    chunks: list[bytes] = []
    last = len(frames) - 1
    for i, body in enumerate(frames):
        size = len(body)
        flags = MORE if i < last else 0
        if size < 256:
            chunks.append(_SHORT_HEADERS[flags][size])
        else:
            chunks.append(bytes((flags | LONG,)) + _pack_long(size))
        chunks.append(body)
    return chunks


def encode_message_bytes(frames: list[bytes] | tuple[bytes, ...]) -> bytes:
    return b"".join(encode_message(frames))


class FrameDecoder:
    """Cuts a byte stream into (flags, body) frames.

    `max_size` is the largest body accepted (None for no limit): it is checked
    as soon as the size field is complete. Errors are `ProtocolError`; after
    one the decoder must not be fed again.
    """

    __slots__ = ("_buf", "_pos", "max_size")

    def __init__(self, max_size: int | None = None) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_size = max_size

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def take_raw(self, n: int) -> bytes | None:
        """Up to n raw bytes that precede framing (used by the greeting stage)."""
        avail = len(self._buf) - self._pos
        if avail < n:
            return None
        out = bytes(self._buf[self._pos : self._pos + n])
        self._pos += n
        return out

    def next_frame(self) -> tuple[int, bytes] | None:
        """The next whole frame, or None until more bytes arrive."""
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < 2:
            return None
        flags = buf[pos]
        if flags & RESERVED_MASK:
            raise ProtocolError(f"frame flags 0x{flags:02x} set reserved bits 7-3, which MUST be zero", clause=CLAUSE)
        if flags & LONG:
            if avail < 9:
                return None
            size = _unpack_long_from(buf, pos + 1)[0]
            start = pos + 9
            if size > MAX_LONG_SIZE:
                raise ProtocolError(
                    f"long frame size {size} exceeds 2^63-1, the largest the grammar allows", clause=CLAUSE
                )
        else:
            size = buf[pos + 1]
            start = pos + 2
        if self.max_size is not None and size > self.max_size:
            limit = self.max_size
            if flags & COMMAND:
                # Commands carry handshakes and, under CURVE, whole encrypted
                # frames: allow them the message limit plus room for the box.
                limit = max(limit, 65536) + 256
            if size > limit:
                raise MessageTooLarge(
                    f"frame of {size} bytes announced, larger than max_msg_size {self.max_size}",
                    clause="max_msg_size",
                )
        end = start + size
        if end > len(buf):
            return None
        body = bytes(buf[start:end])
        if end == len(buf):
            buf.clear()
            self._pos = 0
        elif end > 65536 and end > (len(buf) >> 1):
            # Drop the consumed prefix once it dominates, so the buffer stays small.
            del buf[:end]
            self._pos = 0
        else:
            self._pos = end
        return flags, body
