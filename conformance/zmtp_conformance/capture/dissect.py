"""ZMTP decoded from one direction of a byte stream: greeting, commands, frames, messages.

This decoder shares no code with impl/'s sans-I/O core, on purpose: the
validator built on it judges impl too, and a misreading shared by both
would hide the bug in each. impl's core is also lenient where interop
demands it (as-server from libzmq, greeting padding) and stops at the first
error; the dissector reads to the end and notes every oddity, leaving the
verdicts to `validator`.

Nothing here raises on bad input: what cannot be decoded becomes an item of
kind "malformed" or "truncated" with an explanation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

MORE, LONG, COMMAND = 0x01, 0x02, 0x04


@dataclass
class Item:
    kind: str  # greeting, greeting-2.0, command, frame, legacy-frame, truncated, malformed
    offset: int
    raw: bytes | memoryview  # every octet of the item, header included
    flags: int | None = None
    name: str = ""  # command name
    body: bytes | memoryview = b""  # frame body, or command data after the name
    fields: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # for malformed / truncated items

    @property
    def end(self) -> int:
        return self.offset + len(self.raw)


def decode_properties(data: bytes) -> tuple[list[tuple[bytes, bytes]], str]:
    """Metadata properties (RFC 37): name-size(1) name value-size(4, network order) value."""
    props: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos < len(data):
        n = data[pos]
        if pos + 1 + n > len(data):
            return props, f"property name of {n} octets at +{pos} runs past the end"
        name = data[pos + 1 : pos + 1 + n]
        pos += 1 + n
        if pos + 4 > len(data):
            return props, f"value size of property {name!r} cut short at +{pos}"
        (vlen,) = struct.unpack_from("!I", data, pos)
        pos += 4
        if pos + vlen > len(data):
            return props, f"value of property {name!r} announces {vlen} octets, {len(data) - pos} present"
        props.append((name, data[pos : pos + vlen]))
        pos += vlen
    return props, ""


def _command_fields(name: str, data: bytes, mechanism: str) -> tuple[dict[str, Any], str]:
    """What a command's data says, per its name and the mechanism; a note when it does not parse."""
    if name in ("READY", "INITIATE") and not (mechanism == "CURVE" and name == "INITIATE"):
        if mechanism == "CURVE" and name == "READY":
            return {"nonce": data[:8].hex(), "box_size": max(0, len(data) - 8)}, ""
        props, note = decode_properties(data)
        return {"properties": props}, note
    if name == "ERROR":
        if not data:
            return {}, "ERROR without a reason size"
        n = data[0]
        if 1 + n != len(data):
            return {"reason": data[1:].decode(errors="replace")}, f"reason size {n} but {len(data) - 1} octets follow"
        return {"reason": data[1:].decode(errors="replace")}, ""
    if name in ("SUBSCRIBE", "CANCEL"):
        return {"topic": data}, ""
    if name == "PING":
        if len(data) < 2:
            return {}, "PING shorter than its 2-octet TTL"
        return {"ttl": struct.unpack_from("!H", data)[0], "context": data[2:]}, ""
    if name == "PONG":
        return {"context": data}, ""
    if name == "HELLO" and mechanism == "PLAIN":
        if not data:
            return {}, "HELLO without a username size"
        u = data[0]
        if 1 + u >= len(data):
            return {}, f"username size {u} leaves no room for the password size"
        p = data[1 + u]
        extra = len(data) - (2 + u + p)
        fields = {"username": data[1 : 1 + u].decode(errors="replace"), "password_size": p}
        if extra < 0:
            return fields, f"password size {p} but {len(data) - 2 - u} octets follow"
        if extra > 0:
            return fields, f"{extra} octets after the password"
        return fields, ""
    if name == "HELLO" and mechanism == "CURVE":
        if len(data) >= 2:
            return {"version": f"{data[0]}.{data[1]}", "client_transient": data[74:106].hex()}, ""
    if name == "MESSAGE" and mechanism == "CURVE":
        return {"nonce": data[:8].hex(), "short_nonce": int.from_bytes(data[:8], "big") if len(data) >= 8 else None}, ""
    return {}, ""


def greeting_major(data: bytes) -> int | None:
    """The ZMTP major version a direction's first octets announce: 1 for ZMTP 1.0, None while unknown."""
    if not data:
        return None
    if data[0] != 0xFF or (len(data) >= 10 and not data[9] & 0x01):
        return 1
    return data[10] if len(data) >= 11 else None


@dataclass(frozen=True, slots=True)
class FrameRun:
    """Consecutive complete data frames, not yet made into Items: `count` frames from `start` to `end`
    of the decoded direction, the OR of their flags octets in `flags`. A capture of small messages is
    mostly such runs; a caller that needs each frame asks `Decoder.items`, which expands them."""

    start: int
    end: int
    count: int
    flags: int


class Decoder:
    """Decodes one direction. Feed it the whole direction with `decode(data)`; `mechanism` may be set
    from the other side's greeting (both sides must agree for the handshake to go on).

    `items` is every item; `entries` is the same with runs of plain data frames left as `FrameRun`s,
    for a caller (the validator) that can judge a run by its flags without an object per frame."""

    def __init__(self) -> None:
        self.entries: list[Item | FrameRun] = []
        self._items: list[Item] | None = []
        self._data = b""
        self.version: tuple[int, int] | None = None
        self.mechanism = ""
        self.legacy = 0  # 1 or 2 for a ZMTP 1.0 / 2.0 peer
        # The other direction's major version, when known (`greeting_major`): a 3.x peer that
        # meets a 2.0 peer goes on in ZMTP 2.0 after its major version (RFC 37, backwards interoperability).
        self.peer_major: int | None = None

    @property
    def items(self) -> list[Item]:
        """Every item, runs of data frames expanded (once: later calls return the same list and Items)."""
        if self._items is None:
            self._items = []
            for entry in self.entries:
                if isinstance(entry, FrameRun):
                    self._items += self.expand(entry)
                else:
                    self._items.append(entry)
        return self._items

    def expand(self, run: FrameRun) -> list[Item]:
        """The Items of one run, as `items` holds them."""
        out, pos = [], run.start
        while pos < run.end:
            out.append(self._frame(self._data, pos))
            pos = out[-1].end
        return out

    def _add(self, item: Item) -> None:
        self.entries.append(item)
        self._items = None

    def decode(self, data: bytes) -> list[Item]:
        self.decode_entries(data)
        return self.items

    def decode_entries(self, data: bytes) -> list[Item | FrameRun]:
        """`decode` without making an Item of every data frame: returns `entries`."""
        if any(isinstance(e, FrameRun) for e in self.entries):
            self.entries = list(self.items)  # the runs of an earlier call point into its data
        # Data frames are kept as views into `data`, not copies: a capture of a
        # long stream is mostly frame bodies.
        self._data = data
        self._view = memoryview(data)
        pos = self._greeting(data)
        if pos is None:
            return self.entries
        # CURVE's MESSAGE boxes travel in data frames and are named from their bodies: no runs there.
        runs = self.legacy != 1 and self.mechanism != "CURVE"
        end = len(data)
        while pos < end:
            if runs:
                run = self._run(data, pos, end)
                if run is not None:
                    self.entries.append(run)
                    self._items = None
                    pos = run.end
                    if pos >= end:
                        break
            item = self._legacy_frame(data, pos) if self.legacy == 1 else self._frame(data, pos)
            self._add(item)
            if item.kind in ("truncated", "malformed"):
                break
            pos = item.end
        return self.entries

    def _run(self, data: bytes, pos: int, end: int) -> FrameRun | None:
        """The complete data frames from `pos` on, or None when the frame there is not one.

        The small-frame path: a tight loop over octets, no object per frame. It stops at a
        command (in ZMTP 3.x), a header or body cut short, and leaves those to `_frame`."""
        start, count, ored = pos, 0, 0
        command = 0 if self.legacy == 2 else COMMAND  # ZMTP 2.0 has no commands
        unpack = struct.unpack_from
        while pos < end:
            flags = data[pos]
            if flags & command:
                break
            if flags & LONG:
                if pos + 9 > end:
                    break
                nxt = pos + 9 + unpack("!Q", data, pos + 1)[0]
            else:
                if pos + 2 > end:
                    break
                nxt = pos + 2 + data[pos + 1]
            if nxt > end:
                break
            ored |= flags
            count += 1
            pos = nxt
        return FrameRun(start, pos, count, ored) if count else None

    # -- greeting ----------------------------------------------------------

    def _greeting(self, data: bytes) -> int | None:
        if not data:
            return None
        if data[0] != 0xFF:
            self.legacy = 1  # ZMTP 1.0 starts with its identity frame (RFC 13)
            self.version = (1, 0)
            return 0
        if len(data) < 10:
            self._add(Item("truncated", 0, data, note=f"greeting cut short after {len(data)} octets"))
            return None
        if not data[9] & 0x01:
            self.legacy = 1
            self.version = (1, 0)
            return 0  # a 1.0 frame with a long length: handled as a legacy frame
        if len(data) < 11:
            self._add(Item("truncated", 0, data, note="greeting cut short after the signature"))
            return None
        major = data[10]
        downgraded = major >= 3 and self.peer_major is not None and self.peer_major < 3
        if major < 3 or downgraded:
            self.legacy = 2
            self.version = (2, 0)
            if len(data) < 12:
                self._add(Item("truncated", 0, data, note="2.0 greeting cut short before the socket type"))
                return None
            note = f"ZMTP {major}.x peer continuing in ZMTP 2.0 with a 2.0 peer" if downgraded else ""
            fields = {"revision": major, "socket_type": data[11]}
            self._add(Item("greeting-2.0", 0, data[:12], fields=fields, note=note))
            return 12
        if len(data) < 64:
            self._add(Item("truncated", 0, data, note=f"greeting cut short after {len(data)} of 64 octets"))
            return None
        g = data[:64]
        mech = g[12:32]
        self.version = (g[10], g[11])
        self.mechanism = mech.rstrip(b"\x00").decode("ascii", errors="replace")
        self._add(
            Item(
                "greeting",
                0,
                g,
                fields={
                    "signature": g[:10],
                    "version": (g[10], g[11]),
                    "mechanism": self.mechanism,
                    "mechanism_raw": mech,
                    "as_server": g[32],
                    "filler": g[33:64],
                },
            )
        )
        return 64

    # -- frames --------------------------------------------------------------

    def _frame(self, data: bytes, pos: int) -> Item:
        flags = data[pos]
        long = bool(flags & LONG)
        command = self.legacy != 2 and bool(flags & COMMAND)  # ZMTP 2.0 has no commands
        hdr = 9 if long else 2
        if pos + hdr > len(data):
            return Item("truncated", pos, data[pos:], flags, note="frame header cut short")
        size = struct.unpack_from("!Q", data, pos + 1)[0] if long else data[pos + 1]
        if pos + hdr + size > len(data):
            return Item(
                "truncated",
                pos,
                data[pos:],
                flags,
                note=f"frame announces {size} octets, {len(data) - pos - hdr} present",
                fields={"size": size},
            )
        if not command:
            view = self._view
            body = view[pos + hdr : pos + hdr + size]
            item = Item(
                "frame", pos, view[pos : pos + hdr + size], flags, body=body, fields={"size": size, "long": long}
            )
            # libzmq sends CURVE's MESSAGE in a data frame; name it so it is recognisable
            if self.mechanism == "CURVE" and body[:8] == b"\x07MESSAGE":
                item.name = "MESSAGE"
                item.fields.update(_command_fields("MESSAGE", bytes(body[8:16]), "CURVE")[0])
            return item
        body = data[pos + hdr : pos + hdr + size]
        raw = data[pos : pos + hdr + size]
        if size < 1:
            return Item("malformed", pos, raw, flags, fields={"size": size}, note="command frame with no name size")
        n = body[0]
        if 1 + n > size:
            return Item(
                "malformed",
                pos,
                raw,
                flags,
                fields={"size": size},
                note=f"command name of {n} octets, {size - 1} present",
            )
        name = body[1 : 1 + n].decode("ascii", errors="replace")
        cdata = body[1 + n :]
        fields, note = _command_fields(name, cdata, self.mechanism)
        fields.update({"size": size, "long": long, "name_raw": body[1 : 1 + n]})
        return Item("command", pos, raw, flags, name, cdata, fields, note)

    def _legacy_frame(self, data: bytes, pos: int) -> Item:
        # RFC 13: length (1 octet, or FF + 8 octets) counting the flags octet, then flags, then body.
        if data[pos] == 0xFF:
            if pos + 9 > len(data):
                return Item("truncated", pos, data[pos:], note="1.0 long length cut short")
            length, hdr = struct.unpack_from("!Q", data, pos + 1)[0], 9
        else:
            length, hdr = data[pos], 1
        if length < 1:
            return Item("malformed", pos, data[pos : pos + hdr], note="1.0 frame length 0 (it counts the flags octet)")
        if pos + hdr + length > len(data):
            return Item("truncated", pos, data[pos:], note=f"1.0 frame announces {length} octets")
        raw = data[pos : pos + hdr + length]
        return Item("legacy-frame", pos, raw, raw[hdr], body=raw[hdr + 1 :], fields={"size": length - 1})


def messages(items: list[Item]) -> list[list[Item]]:
    """Data frames grouped into messages by the MORE flag."""
    out: list[list[Item]] = []
    current: list[Item] = []
    for it in items:
        if it.kind in ("frame", "legacy-frame"):
            current.append(it)
            if not (it.flags or 0) & MORE:
                out.append(current)
                current = []
    if current:
        out.append(current)
    return out


def describe(item: Item) -> str:
    """One line a person can read."""
    f = item.fields
    if item.kind == "greeting":
        return (
            f"greeting ZMTP {f['version'][0]}.{f['version'][1]} mechanism {f['mechanism'] or '(empty)'} "
            f"as-server {f['as_server']}"
        )
    if item.kind == "greeting-2.0":
        return f"greeting ZMTP 2.0 (revision {f['revision']}) socket type {f['socket_type']}"
    if item.kind == "command":
        detail = ""
        if "properties" in f:
            detail = " ".join(f"{k.decode(errors='replace')}={v!r}" for k, v in f["properties"])
        elif "reason" in f:
            detail = repr(f["reason"])
        elif "topic" in f:
            detail = repr(f["topic"])
        elif "ttl" in f:
            detail = f"ttl={f['ttl']} context={f['context'].hex() or '-'}"
        elif "username" in f:
            detail = f"username={f['username']!r} password=<{f['password_size']} octets>"
        elif "nonce" in f:
            detail = f"nonce={f['nonce']}"
        if "plaintext" in f:
            detail += f" -> {_inner(f)}"
        if "server_transient" in f:
            detail += f" S'={f['server_transient'][:16]}..."
        return f"command {item.name} ({f['size']} octets) {detail}".rstrip()
    if item.kind in ("frame", "legacy-frame"):
        more = " MORE" if (item.flags or 0) & MORE else ""
        if item.name == "MESSAGE":
            opened = f" -> {_inner(f)}" if "plaintext" in f else ""
            return f"MESSAGE (data frame, {f['size']} octets) nonce={f.get('nonce')}{more}{opened}"
        body = item.body[:48]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in body)
        return f"frame{more} {f['size']} octets {body.hex(' ')} |{text}|{'...' if len(item.body) > 48 else ''}"
    return f"{item.kind}: {item.note}"


def _inner(f: dict[str, Any]) -> str:
    """An opened CURVE MESSAGE: the frame or the command inside the box."""
    flags, body = f["inner_flags"], bytes(f["plaintext"])
    if flags & 0x02 and body:
        n = body[0]
        name = body[1 : 1 + n].decode("ascii", errors="replace")
        rest = body[1 + n :]
        return f"command {name}" + (f" {rest!r}" if rest else "")
    more = "MORE " if flags & 0x01 else ""
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in body[:48])
    return f"frame {more}{len(body)} octets |{text}|{'...' if len(body) > 48 else ''}"
