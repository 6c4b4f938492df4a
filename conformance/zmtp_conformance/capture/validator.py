"""Every byte a peer sent, checked against the RFCs.

`validate_stream` takes one TCP stream (both directions), decodes each
direction with `dissect`, and reports each violation with its check id, the
RFC clause, the direction, the offset in that direction and the bytes.
Checks that need both sides (the mechanism the peers agreed on, the
subscription form the peer's minor version calls for) read the other
direction's greeting.

A stream cut off by the end of the capture is not a violation; malformed
input is.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .. import vocabulary
from .curvebox import CurveKeys, open_stream
from .dissect import COMMAND, LONG, MORE, Decoder, FrameRun, Item, greeting_major
from .tcp import Stream

MECHANISM_CHARS = re.compile(rb"^[A-Z0-9\-_.+]*\x00*$")
PROPERTY_NAME = re.compile(rb"^[A-Za-z0-9\-_.+]{1,255}$")
RESOURCE = re.compile(vocabulary.RESOURCE.encode() + rb"\Z")  # RFC 37's resource grammar
COMMAND_NAME = re.compile(rb"^[A-Za-z]{1,255}$")
CURVE_SIZES = {"HELLO": 200, "WELCOME": 168}  # whole command bodies, name included (RFC 26)


@dataclass(frozen=True)
class Convention:
    """Where the RFC text and every deployed implementation part ways, the form the validator accepts.

    One reviewed rule for every peer, instead of a waiver per peer: a new
    implementation that does what it must do to talk to libzmq is not failed for it.
    """

    id: str
    clause: str
    rfc_says: str
    accepted: str
    why: str


CONVENTIONS = (
    Convention(
        id="curve-message-frame",
        clause="25/ZMTP-CURVE#message",
        rfc_says="MESSAGE is a command, so its frame has the COMMAND flag set",
        accepted="MESSAGE in a command frame (the RFC form) or in a data frame (flags 00, 01 for MORE)",
        why=(
            "libzmq since 4.0 sends every MESSAGE box in a data frame and rejects one in a command frame "
            "(src/curve_mechanism_base.cpp encode/decode), so every implementation that talks to libzmq "
            "frames it the same way; the MORE flag then travels both outside and inside the box"
        ),
    ),
)


@dataclass(frozen=True)
class Violation:
    check: str  # stable id, e.g. "command-name"
    clause: str  # e.g. "37/ZMTP#formal-grammar"
    level: str  # MUST, SHALL, SHOULD
    stream: str
    sender: str  # "client" or "server"
    offset: int  # in the sender's direction of the stream
    message: str
    octets: str  # hex of the offending item (at most 64 octets)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def __str__(self) -> str:
        return f"[{self.clause}] {self.sender} at +{self.offset}: {self.message} ({self.octets})"


class _Checker:
    def __init__(self, stream: Stream, sender: str, mine: Decoder, theirs: Decoder) -> None:
        self.stream = stream
        self.sender = sender
        self.mine = mine
        self.theirs = theirs
        self.out: list[Violation] = []

    def flag(self, item: Item, check: str, clause: str, level: str, message: str) -> None:
        octets = item.raw[:64].hex(" ") + (" ..." if len(item.raw) > 64 else "")
        self.out.append(Violation(check, clause, level, self.stream.name, self.sender, item.offset, message, octets))

    # -- greeting ------------------------------------------------------------

    def greeting(self, g: Item) -> None:
        f = g.fields
        sig = f["signature"]
        if sig[0] != 0xFF or sig[9] != 0x7F:
            self.flag(g, "greeting-signature", "37/ZMTP#formal-grammar", "MUST", "signature must be FF, 8 octets, 7F")
        if not MECHANISM_CHARS.match(f["mechanism_raw"]):
            self.flag(
                g,
                "greeting-mechanism",
                "37/ZMTP#formal-grammar",
                "MUST",
                f"mechanism {f['mechanism_raw']!r} is not upper-case letters, digits, - _ . + padded with nulls",
            )
        if f["as_server"] not in (0, 1):
            self.flag(
                g, "greeting-as-server", "37/ZMTP#formal-grammar", "MUST", f"as-server is {f['as_server']}, not 0 or 1"
            )
        role = f["as_server"]
        if f["mechanism"] == "NULL" and role not in (0,):
            self.flag(
                g,
                "greeting-as-server-role",
                "37/ZMTP#the-null-security-mechanism",
                "MUST",
                f"as-server is {role}; under NULL it MUST be zero",
            )
        elif f["mechanism"] in ("PLAIN", "CURVE") and role in (0, 1) and role != (self.sender == "server"):
            # The harness's streams (and most others) have the mechanism server on the
            # listening side, as the handshake-order check also assumes.
            want = 1 if self.sender == "server" else 0
            self.flag(
                g,
                "greeting-as-server-role",
                "24/ZMTP-PLAIN" if f["mechanism"] == "PLAIN" else "25/CURVEZMQ",
                "MUST",
                f"the {f['mechanism']} {self.sender} greets with as-server {role}; "
                f"the greeting identifies the {self.sender} with {want} (RFC 23 Topology)",
            )
        if any(f["filler"]):
            self.flag(g, "greeting-filler", "37/ZMTP#formal-grammar", "MUST", "filler must be 31 zero octets")

    # -- frames --------------------------------------------------------------

    def frame_header(self, it: Item) -> None:
        flags = it.flags or 0
        if flags & 0xF8:
            self.flag(
                it, "frame-reserved-flags", "37/ZMTP#framing", "MUST", f"flags 0x{flags:02x} set reserved bits 7-3"
            )
        if flags & COMMAND and flags & MORE:
            self.flag(it, "command-more", "37/ZMTP#framing", "SHALL", "MORE is set on a command frame")
        if flags & LONG and it.fields.get("size", 0) >= 1 << 63:
            self.flag(it, "frame-size", "37/ZMTP#formal-grammar", "MUST", "long size has its top bit set (over 2^63-1)")

    def command(self, it: Item) -> None:
        name_raw = it.fields.get("name_raw", b"")
        if not COMMAND_NAME.match(name_raw):
            self.flag(
                it, "command-name", "37/ZMTP#formal-grammar", "MUST", f"command name {name_raw!r} is not 1-255 letters"
            )
        if it.note:
            self.flag(
                it, f"command-{it.name.lower() or 'data'}", clause_for(it.name, self.mine.mechanism), "MUST", it.note
            )
        for name, value in it.fields.get("properties", []):
            if not PROPERTY_NAME.match(name):
                self.flag(
                    it,
                    "property-name",
                    "37/ZMTP#connection-metadata",
                    "MUST",
                    f"property name {name!r} is not 1-255 of letters, digits, - _ . +",
                )
            if name.lower() == b"resource" and not RESOURCE.match(value):
                self.flag(
                    it,
                    "resource-grammar",
                    "37/ZMTP#new-the-resource-property",
                    "SHALL",
                    f"Resource {value!r} is not resource-name *(\"/\" resource-name), each name 1 or more of"
                    " ALPHA, DIGIT, $ - _ @ . & +",
                )
        if it.name == "PING" and len(it.fields.get("context", b"")) > 16:
            self.flag(
                it, "ping-context", "37/ZMTP#connection-heartbeating", "MUST", "PING context longer than 16 octets"
            )
        if it.name == "PONG" and len(it.fields.get("context", b"")) > 16:
            self.flag(
                it, "pong-context", "37/ZMTP#connection-heartbeating", "MUST", "PONG context longer than 16 octets"
            )
        if it.name in ("SUBSCRIBE", "CANCEL") and self.theirs.version is not None and self.theirs.version < (3, 1):
            self.flag(
                it,
                "subscription-form",
                "37/ZMTP#the-publish-subscribe-pattern",
                "MUST",
                f"{it.name} command sent to a ZMTP {self.theirs.version[0]}.{self.theirs.version[1]} peer, "
                "which expects subscriptions as 01/00 message frames",
            )

    def curve_inner(self, it: Item) -> None:
        """An opened MESSAGE box: its flags octet and, for a command, the name inside."""
        flags = it.fields.get("inner_flags")
        if flags is None:
            return
        if flags & ~0x03:
            self.flag(
                it,
                "curve-message-flags",
                "26/CURVEZMQ",
                "MUST",
                f"flags octet inside the MESSAGE box is 0x{flags:02x}; only MORE (01) and COMMAND (02) exist",
            )
        body = it.fields["plaintext"]
        if flags & 0x02 and (not body or body[0] == 0 or 1 + body[0] > len(body)):
            self.flag(
                it,
                "curve-message-command",
                "26/CURVEZMQ",
                "MUST",
                "command inside the MESSAGE box has no name, or a name size past its end",
            )

    # -- the whole direction -------------------------------------------------

    def run(self, items: list[Item] | list[Item | FrameRun]) -> list[Violation]:
        mech = self.mine.mechanism
        agreed = mech == self.theirs.mechanism or not self.theirs.mechanism
        handshake = HANDSHAKES.get(mech, ())
        expected = list(handshake[0 if self.sender == "client" else 1]) if handshake else []
        in_handshake = not self.mine.legacy
        errored: Item | None = None
        last_nonce = -1
        entries = iter(items)
        expanded: list[Item] = []  # the frames of a run that must be looked at one by one, last first
        while True:
            if expanded:
                it = expanded.pop()
            else:
                entry = next(entries, None)
                if entry is None:
                    break
                if isinstance(entry, FrameRun):
                    # A run of data frames meets only the frame header checks below, unless one of the
                    # states that judge the next item is on: then its frames go through one by one.
                    quiet = errored is None and agreed and not (in_handshake and expected) and mech != "CURVE"
                    if quiet and not entry.flags & 0xF8 and (entry.flags & (COMMAND | MORE)) != COMMAND | MORE:
                        continue
                    expanded = self.mine.expand(entry)[::-1]
                    continue
                it = entry
            if it.kind == "greeting":
                self.greeting(it)
                continue
            if it.kind in ("greeting-2.0", "legacy-frame", "truncated"):
                continue
            if it.kind == "malformed":
                self.flag(it, "frame-malformed", "37/ZMTP#formal-grammar", "MUST", it.note)
                continue
            if errored is not None:
                self.flag(it, "after-error", "37/ZMTP#error-handling", "MUST", "data sent after an ERROR command")
                errored = None  # report once
            self.frame_header(it)
            if it.kind == "command":
                self.command(it)
                if it.name == "ERROR":
                    errored = it
                    continue
            if not agreed:
                self.flag(
                    it,
                    "mechanism-mismatch",
                    "37/ZMTP#authentication-and-confidentiality",
                    "MUST",
                    f"the peers announced {mech} and {self.theirs.mechanism}; only ERROR may follow",
                )
                agreed = True  # report once
                in_handshake = False
                continue
            if in_handshake and expected:
                want = expected[0]
                if it.kind != "command" or it.name != want:
                    seen = f"command {it.name}" if it.kind == "command" else "a message frame"
                    self.flag(
                        it,
                        "handshake-order",
                        clause_for(want, mech),
                        "MUST",
                        f"{self.sender} sent {seen} where the {mech} handshake calls for {want}",
                    )
                    in_handshake = False
                    continue
                if mech == "CURVE" and want in CURVE_SIZES and it.fields["size"] != CURVE_SIZES[want]:
                    self.flag(
                        it,
                        f"curve-{want.lower()}-size",
                        "26/CURVEZMQ",
                        "MUST",
                        f"{want} is {it.fields['size']} octets; CURVE's is {CURVE_SIZES[want]}",
                    )
                if (
                    want == "READY"
                    and mech in ("NULL", "PLAIN")
                    and not any(k.lower() == b"socket-type" for k, _ in it.fields.get("properties", []))
                ):
                    self.flag(
                        it, "ready-socket-type", "37/ZMTP#the-socket-type-property", "MUST", "READY without Socket-Type"
                    )
                expected.pop(0)
                in_handshake = bool(expected)
                continue
            # traffic
            if mech == "CURVE":
                if it.kind == "command" and it.name != "MESSAGE":
                    self.flag(
                        it,
                        "curve-cleartext",
                        "26/CURVEZMQ",
                        "MUST",
                        f"cleartext {it.name} after the CURVE handshake; all traffic travels in MESSAGE",
                    )
                    continue
                if it.kind == "frame" and it.name != "MESSAGE":
                    self.flag(
                        it,
                        "curve-cleartext",
                        "26/CURVEZMQ",
                        "MUST",
                        "cleartext message frame after the CURVE handshake",
                    )
                    continue
                # A MESSAGE in a data frame is accepted as well as in a command frame: CONVENTIONS.
                self.curve_inner(it)
                nonce = it.fields.get("short_nonce")
                if nonce is not None:
                    if nonce <= last_nonce:
                        self.flag(
                            it,
                            "curve-nonce-order",
                            "26/CURVEZMQ",
                            "MUST",
                            f"short nonce {nonce} does not increase (previous {last_nonce})",
                        )
                    last_nonce = nonce
        return self.out


# Commands each side sends, in order, to finish the handshake: (client, server).
HANDSHAKES = {
    "NULL": (("READY",), ("READY",)),
    "PLAIN": (("HELLO", "INITIATE"), ("WELCOME", "READY")),
    "CURVE": (("HELLO", "INITIATE"), ("WELCOME", "READY")),
}


def clause_for(command: str, mechanism: str) -> str:
    if mechanism == "PLAIN" and command in ("HELLO", "WELCOME", "INITIATE", "READY", "ERROR"):
        return "24/ZMTP-PLAIN"
    if mechanism == "CURVE" and command in ("HELLO", "WELCOME", "INITIATE", "READY", "MESSAGE", "ERROR"):
        return "26/CURVEZMQ"
    return {
        "READY": "37/ZMTP#the-null-security-mechanism",
        "ERROR": "37/ZMTP#error-handling",
        "PING": "37/ZMTP#connection-heartbeating",
        "PONG": "37/ZMTP#connection-heartbeating",
        "SUBSCRIBE": "37/ZMTP#the-publish-subscribe-pattern",
        "CANCEL": "37/ZMTP#the-publish-subscribe-pattern",
    }.get(command, "37/ZMTP#commands")


def decode_stream(stream: Stream) -> tuple[Decoder, Decoder]:
    """(client's decoder, server's decoder), each with its items."""
    c, s = Decoder(), Decoder()
    to_server, to_client = bytes(stream.to_server.data), bytes(stream.to_client.data)
    c.peer_major, s.peer_major = greeting_major(to_client), greeting_major(to_server)
    c.decode_entries(to_server)
    s.decode_entries(to_client)
    return c, s


def validate_stream(stream: Stream, skip: tuple[str, ...] = (), keys: CurveKeys | None = None) -> list[Violation]:
    """Violations in each direction of `stream`, except for the senders in `skip` ("client", "server").
    With `keys`, CURVE boxes that open are checked inside too."""
    c, s = decode_stream(stream)
    if keys is not None and c.mechanism == "CURVE":
        open_stream(c, s, keys)
    out: list[Violation] = []
    if "client" not in skip:
        out += _Checker(stream, "client", c, s).run(c.entries)
    if "server" not in skip:
        out += _Checker(stream, "server", s, c).run(s.entries)
    return out
