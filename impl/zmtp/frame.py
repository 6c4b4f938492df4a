"""ZMTP 3.x framing (RFC 23 / RFC 37, "Framing").

A frame is a flags octet, a size (one octet, or eight in network order when
the LONG flag is set) and a body. The decoder works on a growing buffer and
checks each header before it waits for the body, so that a hostile size is
refused before any memory is set aside for it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from .errors import MessageTooLarge, ProtocolError

MORE = 0x01
LONG = 0x02
COMMAND = 0x04
RESERVED_MASK = 0xF8
_NOT_PLAIN = ~(MORE | LONG)  # a command or reserved bits: not a plain data frame

MAX_LONG_SIZE = (1 << 63) - 1
BIG_FRAME = 256 * 1024  # bodies this large are gathered in place (FrameDecoder.big_buffer)
SHORT_WINDOW = 65536  # octets copied at a time for cutting out small frames
KEEP_BIG_STORE = 4 << 20  # a connection keeps its large-frame buffer up to this size
CLAUSE = "23/ZMTP#framing"

_pack_long = struct.Struct(">Q").pack
_unpack_long_from = struct.Struct(">Q").unpack_from

# Short headers are built by table lookup: one bytes object per (flags, size).
_SHORT_HEADERS = [[bytes((flags, size)) for size in range(256)] for flags in range(8)]
_LONG_HEADER = bytes((LONG,))
_LONG_HEADERS: dict[int, bytes] = {}  # see _long_header


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
    last = len(frames) - 1
    if not last:  # one frame: the common case, without the loop
        body = frames[0]
        size = len(body)
        if size < 256:
            return [_SHORT_HEADERS[0][size], body]
        header = _LONG_HEADERS.get(size)
        return [header if header is not None else _long_header(size), body]
    chunks: list[bytes] = []
    for i, body in enumerate(frames):
        size = len(body)
        flags = MORE if i < last else 0
        if size < 256:
            chunks.append(_SHORT_HEADERS[flags][size])
        else:
            chunks.append(bytes((flags | LONG,)) + _pack_long(size))
        chunks.append(body)
    return chunks


def encode_messages(messages: list[list[bytes]]) -> tuple[list[bytes], int]:
    """Chunks for many messages at once (the batch path of `encode_message`), and the total
    size of their bodies, counted on the way rather than in a second pass over the batch."""
    chunks: list[bytes] = []
    append = chunks.append
    short = _SHORT_HEADERS[0]
    long_headers = _LONG_HEADERS
    total = 0
    for frames in messages:
        if len(frames) == 1:  # the common case, without the inner loop
            body = frames[0]
            size = len(body)
            total += size
            if size < 256:
                append(short[size])
            else:
                header = long_headers.get(size)
                append(header if header is not None else _long_header(size))
            append(body)
            continue
        if not frames:
            raise ValueError("a message has at least one frame")
        last = len(frames) - 1
        for i, body in enumerate(frames):
            size = len(body)
            total += size
            flags = MORE if i < last else 0
            append(_SHORT_HEADERS[flags][size] if size < 256 else bytes((flags | LONG,)) + _pack_long(size))
            append(body)
    return chunks, total


def _long_header(size: int) -> bytes:
    # A batch's messages are usually alike, so last-frame long headers are kept by size
    # (building one costs twice as much as the rest of a message's encoding); bounded,
    # as sizes may all differ.
    if len(_LONG_HEADERS) >= 1024:
        _LONG_HEADERS.clear()
    header = _LONG_HEADERS[size] = _LONG_HEADER + _pack_long(size)
    return header


def encode_message_bytes(frames: list[bytes] | tuple[bytes, ...]) -> bytes:
    return b"".join(encode_message(frames))


def _cut_messages(
    data: bytes, limit: int, partial: list[bytes], append: Callable[[list[bytes]], None]
) -> int:
    """Cut whole messages of plain data frames from `data` (see FrameDecoder.read_messages);
    returns the offset of the first frame not taken."""
    dn = len(data)
    i = 0
    # Flags 0 or 1 (MORE alone) make a short plain data frame, whose body of at most 255
    # octets no limit of 255 or more refuses: one test instead of three for small frames.
    short = 2 if limit >= 255 else 0
    while i + 2 <= dn:
        flags = data[i]
        if flags < short:
            start = i + 2
            end = start + data[i + 1]
            if end > dn:
                break
        else:
            if flags & LONG:
                if i + 9 > dn:
                    break
                size = _unpack_long_from(data, i + 1)[0]
                start = i + 9
            else:
                size = data[i + 1]
                start = i + 2
            end = start + size
            if end > dn or size > limit or flags & _NOT_PLAIN:
                break
        i = end
        if flags & MORE:
            partial.append(data[start:end])
        elif partial:
            partial.append(data[start:end])
            append(partial[:])
            partial.clear()
        else:
            append([data[start:end]])
    return i


class FrameDecoder:
    """Cuts a byte stream into (flags, body) frames.

    `max_size` is the largest body accepted (None for no limit): it is checked
    as soon as the size field is complete. Errors are `ProtocolError`; after
    one the decoder must not be fed again.
    """

    __slots__ = ("_big", "_big_filled", "_big_flags", "_big_size", "_big_store", "_buf", "_pos", "max_size")

    def __init__(self, max_size: int | None = None) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_size = max_size
        # A large frame body is gathered in a buffer of its final size, which
        # the I/O layer may read into directly (see `big_buffer`): no growing
        # buffer, no shifting, one copy at the end.
        self._big: bytearray | None = None
        self._big_store: bytearray | None = None
        self._big_size = 0
        self._big_filled = 0
        self._big_flags = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        while self._big is not None and self._big_filled < self._big_size and len(data):
            if self._big_filled == len(self._big):
                self._grow_big()
            take = min(len(self._big), self._big_size) - self._big_filled
            take = min(take, len(data))
            self._big[self._big_filled : self._big_filled + take] = data[:take]
            self._big_filled += take
            data = data[take:]
        if not len(data):
            return
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data

    def big_buffer(self) -> memoryview | None:
        """Where the rest of a large frame body can be read to directly, if one is under way."""
        if self._big is None or self._big_filled == self._big_size:
            return None
        if self._big_filled == len(self._big):
            self._grow_big()
        return memoryview(self._big)[self._big_filled : min(len(self._big), self._big_size)]

    def _grow_big(self) -> None:
        # The store grows with the bytes that actually arrive, never ahead to
        # the announced size: a 9-octet header must not cost gigabytes.
        assert self._big is not None
        bigger = bytearray(min(self._big_size, max(BIG_FRAME * 4, len(self._big) * 2)))
        bigger[: self._big_filled] = self._big[: self._big_filled]
        self._big = self._big_store = bigger

    def big_filled(self, n: int) -> None:
        """`n` bytes were written into the view `big_buffer` returned."""
        self._big_filled += n

    def read_frames(self) -> list[tuple[int, bytes]]:
        """Every whole frame buffered so far (the fast path for many small frames)."""
        return [(flags, data[start:end]) for data, spans in self.read_spans() for flags, start, end in spans]

    def read_spans(self) -> list[tuple[bytes, list[tuple[int, int, int]]]]:
        """Every whole frame buffered so far, uncut: (flags, start, end) spans of bytes objects,
        the frames of one window of the buffer sharing one copy of it, for a caller that reads
        each body where it lies (CURVE opens each box from there).

        Frames that lie wholly within a window of the buffer are found inline;
        anything else (a frame larger than the window, a flag error, a size over
        the limit) goes through `next_frame`, which has the checks and the error
        messages, and comes as a bytes object of its own. A framing error raises
        before any frame is returned.
        """
        out: list[tuple[bytes, list[tuple[int, int, int]]]] = []
        limit = self.max_size if self.max_size is not None else MAX_LONG_SIZE
        while True:
            buf = self._buf
            pos = self._pos
            n = len(buf)
            if self._big is None and n - pos >= 2 and self._fits_window(buf, pos, n):
                # Slicing one bytes copy of a window is three times cheaper
                # than cutting each small frame out of the bytearray.
                with memoryview(buf) as view:
                    data = bytes(view[pos : pos + SHORT_WINDOW])
                spans: list[tuple[int, int, int]] = []
                append = spans.append
                dn = len(data)
                i = 0
                while i + 2 <= dn:
                    flags = data[i]
                    if flags & RESERVED_MASK:
                        break
                    if flags & LONG:
                        if i + 9 > dn:
                            break
                        size = _unpack_long_from(data, i + 1)[0]
                        start = i + 9
                    else:
                        size = data[i + 1]
                        start = i + 2
                    end = start + size
                    if end > dn or size > limit:
                        break
                    append((flags, start, end))
                    i = end
                if spans:
                    out.append((data, spans))
                pos += i
                if pos == n:
                    buf.clear()
                    pos = 0
                self._pos = pos
            frame = self.next_frame()
            if frame is None:
                return out
            out.append((frame[1], [(frame[0], 0, len(frame[1]))]))

    def read_messages(self, partial: list[bytes]) -> list[list[bytes]]:
        """Whole messages of plain data frames (flags MORE and LONG only), cut from the
        buffer as `read_frames` cuts frames, stopping before the first frame that is
        anything else (a command, reserved bits, over the limit, too large for the window,
        incomplete): `next_frame` returns that one.

        `partial` holds the frames of a message begun earlier (MORE set) and keeps those
        of one still unfinished. One pass instead of frames first and messages from them:
        per small message, the frame tuple and a second loop cost more than the cutting.
        """
        out: list[list[bytes]] = []
        limit = self.max_size if self.max_size is not None else MAX_LONG_SIZE
        while True:
            buf = self._buf
            pos = self._pos
            n = len(buf)
            if self._big is not None or n - pos < 2 or not self._fits_window(buf, pos, n):
                return out
            with memoryview(buf) as view:
                data = bytes(view[pos : pos + SHORT_WINDOW])
            dn = len(data)
            i = _cut_messages(data, limit, partial, out.append)
            pos += i
            if pos == n:
                buf.clear()
                self._pos = 0
                return out
            if i == 0 or dn < SHORT_WINDOW or (i < dn and data[i] & _NOT_PLAIN):
                # Stopped at a frame this path does not take, or at an incomplete one.
                if pos > 65536 and pos > (n >> 1):
                    del buf[:pos]  # as next_frame does: the consumed prefix must not pile up
                    pos = 0
                self._pos = pos
                return out
            self._pos = pos
            # Stopped at the window's edge: the next window starts at that frame.

    def feed_messages(self, data: bytes | bytearray | memoryview, partial: list[bytes]) -> list[list[bytes]]:
        """`feed`, then `read_messages`. Unless a large frame is being gathered, messages are
        cut from one copy of what is buffered (at most a frame's start) and `data`, and only
        what they leave is buffered: one copy of each octet fewer than through the buffer
        and a window of it."""
        buf, pos = self._buf, self._pos
        if self._big is not None or len(buf) - pos > SHORT_WINDOW:
            self.feed(data)
            return self.read_messages(partial)
        if pos == len(buf):
            whole = bytes(data)
        else:
            with memoryview(buf) as view:
                whole = b"".join((view[pos:], data))
        out: list[list[bytes]] = []
        i = _cut_messages(whole, self.max_size if self.max_size is not None else MAX_LONG_SIZE, partial, out.append)
        self._buf.clear()
        self._pos = 0
        if i < len(whole):
            with memoryview(whole) as view:
                self.feed(view[i:])
        return out

    @staticmethod
    def _fits_window(buf: bytearray, pos: int, n: int) -> bool:
        """Is the next frame small enough for the inline path? (Copying a
        window for a frame that does not fit in it would be wasted.)"""
        flags = buf[pos]
        if flags & RESERVED_MASK:
            return False
        if not flags & LONG:
            return True
        return n - pos >= 9 and _unpack_long_from(buf, pos + 1)[0] + 9 <= SHORT_WINDOW

    def next_frame(self) -> tuple[int, bytes] | None:
        """The next whole frame, or None until more bytes arrive."""
        if self._big is not None:
            if self._big_filled < self._big_size:
                return None
            with memoryview(self._big) as view:
                body = bytes(view[: self._big_size])
            if self._big_size > KEEP_BIG_STORE:
                self._big_store = None
            self._big = None
            return self._big_flags, body
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
            if size >= BIG_FRAME:
                have = len(buf) - start
                # Reuse one store per connection: fresh memory costs a page
                # fault per 4 KiB, which dominates large frames.
                big = self._big_store
                if big is None or len(big) < have:
                    big = self._big_store = bytearray(max(have, BIG_FRAME))
                with memoryview(buf) as view:
                    big[:have] = view[start:]
                buf.clear()
                self._pos = 0
                self._big, self._big_size, self._big_filled, self._big_flags = big, size, have, flags
            return None
        with memoryview(buf) as view:
            body = bytes(view[start:end])
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
