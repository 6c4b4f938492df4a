"""ZMTP 1.0 framing (RFC 13), for downgrading to very old peers.

    frame  = length flags body
    length = OCTET (0-254) | %xFF 8OCTET   ; counts the flags octet and the body
    flags  = bit 0 MORE, other bits reserved

ZMTP 2.0 (RFC 15) framing equals ZMTP 3.x framing without the COMMAND flag,
so it reuses `frame.FrameDecoder`; only 1.0 needs a codec of its own.
"""

from __future__ import annotations

import struct

from .errors import MessageTooLarge, ProtocolError

CLAUSE = "13/ZMTP#framing"
_unpack_long_from = struct.Struct(">Q").unpack_from


def encode_message_v1(frames: list[bytes] | tuple[bytes, ...]) -> list[bytes]:
    chunks: list[bytes] = []
    last = len(frames) - 1
    for i, body in enumerate(frames):
        n = len(body) + 1
        flags = 1 if i < last else 0
        if n < 255:
            chunks.append(bytes((n, flags)))
        else:
            chunks.append(b"\xff" + struct.pack(">Q", n) + bytes((flags,)))
        chunks.append(body)
    return chunks


class V1FrameDecoder:
    """(flags, body) frames from a ZMTP 1.0 stream; same contract as FrameDecoder."""

    __slots__ = ("_buf", "max_size")

    def __init__(self, max_size: int | None = None, initial: bytes = b"") -> None:
        self._buf = bytearray(initial)
        self.max_size = max_size

    def feed(self, data: bytes) -> None:
        self._buf += data

    def read_frames(self) -> list[tuple[int, bytes]]:
        out = []
        while (frame := self.next_frame()) is not None:
            out.append(frame)
        return out

    def next_frame(self) -> tuple[int, bytes] | None:
        buf = self._buf
        if not buf:
            return None
        if buf[0] == 0xFF:
            if len(buf) < 9:
                return None
            length = _unpack_long_from(buf, 1)[0]
            head = 9
        else:
            length = buf[0]
            head = 1
        if length == 0:
            raise ProtocolError("ZMTP 1.0 frame length is 0; it must count at least the flags octet", clause=CLAUSE)
        if self.max_size is not None and length - 1 > self.max_size:
            raise MessageTooLarge(
                f"frame of {length - 1} bytes announced, larger than max_msg_size {self.max_size}",
                clause="max_msg_size",
            )
        end = head + length
        if len(buf) < end:
            return None
        flags = buf[head]
        if flags & 0xFE:
            raise ProtocolError(f"ZMTP 1.0 frame flags 0x{flags:02x} set reserved bits", clause=CLAUSE)
        body = bytes(buf[head + 1 : end])
        del buf[:end]
        return flags, body
