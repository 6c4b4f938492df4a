"""The raw peer's own ZMTP: greeting, frames, NULL/PLAIN/CURVE client handshakes, messages.

Written apart from impl/ on purpose: the raw peer judges impl, and a codec
shared by the judge and the judged would make a bug in one a bug in both,
and the two would agree on it. This is deliberately small and strict: it
speaks what scenarios need (NULL on either side; PLAIN and CURVE as a client,
for sanity exchanges under those mechanisms; CURVE as a server, for replay), answers PINGs, and raises
CodecError on anything malformed. The CURVE boxes are PyNaCl's (libsodium);
nothing cryptographic is written here.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

from nacl.exceptions import CryptoError
from nacl.public import Box, PrivateKey, PublicKey
from nacl.secret import SecretBox

MORE, LONG, COMMAND = 0x01, 0x02, 0x04
SIGNATURE_HEAD, SIGNATURE_TAIL = b"\xff" + b"\x00" * 8, 0x7F

# Which peer socket types each socket type accepts (RFC 23/37 and the draft RFCs 47-49).
VALID_PEERS = {
    "REQ": {"REP", "ROUTER"},
    "REP": {"REQ", "DEALER"},
    "DEALER": {"REP", "DEALER", "ROUTER"},
    "ROUTER": {"REQ", "DEALER", "ROUTER"},
    "PUB": {"SUB", "XSUB"},
    "XPUB": {"SUB", "XSUB"},
    "SUB": {"PUB", "XPUB"},
    "XSUB": {"PUB", "XPUB"},
    "PUSH": {"PULL"},
    "PULL": {"PUSH"},
    "PAIR": {"PAIR"},
    "CLIENT": {"SERVER"},
    "SERVER": {"CLIENT"},
    "RADIO": {"DISH"},
    "DISH": {"RADIO"},
    "SCATTER": {"GATHER"},
    "GATHER": {"SCATTER"},
}


class CodecError(Exception):
    """What the peer sent does not follow the protocol; says what and where."""


# -- encoding ------------------------------------------------------------------------------


def greeting(major: int = 3, minor: int = 1, mechanism: str = "NULL", as_server: int = 0) -> bytes:
    """The 64-octet greeting of RFC 23/37: signature, version, mechanism, as-server, filler."""
    return (
        SIGNATURE_HEAD
        + bytes((SIGNATURE_TAIL, major, minor))
        + mechanism.encode("ascii").ljust(20, b"\x00")
        + bytes((as_server,))
        + bytes(31)
    )


def frame(body: bytes, flags: int = 0) -> bytes:
    if len(body) > 255:
        return bytes((flags | LONG,)) + struct.pack("!Q", len(body)) + body
    return bytes((flags, len(body))) + body


def command(name: str, data: bytes = b"") -> bytes:
    raw = name.encode("ascii")
    return frame(bytes((len(raw),)) + raw + data, COMMAND)


def message(frames: list[bytes]) -> bytes:
    return b"".join(frame(f, MORE if i < len(frames) - 1 else 0) for i, f in enumerate(frames))


def properties(pairs: list[tuple[str, bytes]]) -> bytes:
    out = bytearray()
    for name, value in pairs:
        raw = name.encode("ascii")
        out += bytes((len(raw),)) + raw + struct.pack("!I", len(value)) + value
    return bytes(out)


def ready(pairs: list[tuple[str, bytes]]) -> bytes:
    return command("READY", properties(pairs))


# -- decoding -------------------------------------------------------------------------------


def parse_greeting(data: bytes) -> tuple[int, int, str, int]:
    """(major, minor, mechanism, as_server) of a ZMTP 3 greeting; CodecError if it is not one."""
    if len(data) != 64 or data[0] != 0xFF or data[9] != SIGNATURE_TAIL:
        raise CodecError(f"not a ZMTP 3 greeting signature: {data[:10].hex(' ')}")
    if data[10] < 3:
        raise CodecError(f"greeting announces ZMTP {data[10]}.x; the raw peer speaks ZMTP 3")
    mech = data[12:32].rstrip(b"\x00")
    if b"\x00" in mech:
        raise CodecError(f"mechanism field is not NUL-padded text: {data[12:32].hex(' ')}")
    return data[10], data[11], mech.decode("ascii", errors="replace"), data[32]


def parse_error(body: bytes) -> bytes:
    """The reason of an ERROR command's body (name included); CodecError if the body does not follow
    RFC 23/37's grammar (error-reason = short-size 0*255VCHAR) or RFC 26's "7 or more octets"."""
    if len(body) < 7:
        raise CodecError(f"ERROR of {len(body)} octets; RFC 26 makes it 7 or more")
    size = body[6]
    reason = body[7:]
    if len(reason) != size:
        raise CodecError(f"ERROR reason announces {size} octets, {len(reason)} follow")
    if any(not 0x21 <= c <= 0x7E and c != 0x20 for c in reason):
        raise CodecError(f"ERROR reason is not printable ASCII: {reason.hex(' ')}")
    return reason


def parse_properties(data: bytes) -> dict[str, bytes]:
    """Metadata (RFC 37): names are matched without regard to case, so keys are lowercased."""
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        n = data[pos]
        if n == 0 or pos + 1 + n + 4 > len(data):
            raise CodecError(f"property at +{pos}: name of {n} octets does not fit")
        name = data[pos + 1 : pos + 1 + n].decode("ascii", errors="replace").lower()
        (size,) = struct.unpack_from("!I", data, pos + 1 + n)
        start = pos + 1 + n + 4
        if start + size > len(data):
            raise CodecError(f"property {name!r} announces {size} octets, {len(data) - start} present")
        out[name] = data[start : start + size]
        pos = start + size
    return out


@dataclass
class Frame:
    flags: int
    body: bytes

    @property
    def is_command(self) -> bool:
        return bool(self.flags & COMMAND)

    def command(self) -> tuple[str, bytes]:
        if not self.body or 1 + self.body[0] > len(self.body):
            raise CodecError(f"command frame without a whole name: {self.body[:16].hex(' ')}")
        n = self.body[0]
        return self.body[1 : 1 + n].decode("ascii", errors="replace"), self.body[1 + n :]


class FrameReader:
    """Frames out of a byte stream that arrives in pieces."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        out = []
        while len(self.buf) >= 2:
            flags = self.buf[0]
            if flags & 0xF8:
                raise CodecError(f"frame flags 0x{flags:02x} set reserved bits")
            head = 9 if flags & LONG else 2
            if len(self.buf) < head:
                break
            size = struct.unpack_from("!Q", self.buf, 1)[0] if flags & LONG else self.buf[1]
            if len(self.buf) < head + size:
                break
            out.append(Frame(flags, bytes(self.buf[head : head + size])))
            del self.buf[: head + size]
        return out


# -- mechanisms ----------------------------------------------------------------


# What a scenario can spoil in the handshake this side sends (the handshake step's `corrupt`), to see
# the peer refuse it. The metadata ones spoil the metadata this side sends (READY, or INITIATE under
# PLAIN and CURVE): a property whose name is empty, or a last value size cut to two octets.
METADATA_CORRUPTIONS = ("metadata_zero_name", "metadata_truncated_size")
CURVE_CLIENT_CORRUPTIONS = ("vouch", *METADATA_CORRUPTIONS)
# welcome_zero_key: a WELCOME whose box opens but names an all-zero transient key, with which no shared key can be
# made (libsodium refuses it); the client must refuse the WELCOME, not fail on it later (libzmq 4.3.5 asserts).
CURVE_SERVER_CORRUPTIONS = ("welcome_box", "welcome_size", "welcome_zero_key", "ready_box", *METADATA_CORRUPTIONS)


class Mechanism:
    """One side's security handshake: feed it commands, it answers with bytes; done when READY came."""

    name = "NULL"
    corruptions: tuple[str, ...] = METADATA_CORRUPTIONS

    def __init__(self, socket_type: str, identity: bytes) -> None:
        self.socket_type = socket_type
        self.identity = identity
        self.extra: list[tuple[str, bytes]] = []  # more properties a scenario asks for (X-..., large metadata)
        self.peer: dict[str, bytes] | None = None  # the peer's metadata, once its READY arrived
        self.lowercase_names = False  # send property names in lower case (RFC 37: case is not significant)
        self.corrupt: str | None = None  # one of `corruptions`: what to spoil in the handshake
        self.corrupted = False  # the spoilt command has been produced: the handshake ends there
        # Values each handshake must make fresh, by name (a CURVE peer's transient key, nonces,
        # cookie), so a scenario can compare two connections (the handshake step's `distinct_from`).
        self.fresh: dict[str, bytes] = {}

    def metadata(self) -> list[tuple[str, bytes]]:
        pairs = [("Socket-Type", self.socket_type.encode())]
        if self.socket_type in ("REQ", "DEALER", "ROUTER"):
            pairs.append(("Identity", self.identity))
        pairs += self.extra
        return [(n.lower(), v) for n, v in pairs] if self.lowercase_names else pairs

    def metadata_bytes(self) -> bytes:
        """The metadata this side sends, spoilt as `corrupt` asks."""
        out = properties(self.metadata())
        if self.corrupt == "metadata_zero_name":
            self.corrupted = True
            return b"\x00" + struct.pack("!I", 0) + out
        if self.corrupt == "metadata_truncated_size":
            self.corrupted = True
            return out + b"\x06X-Tail\x00\x00"
        return out

    def start(self) -> bytes:
        return command("READY", self.metadata_bytes())

    def on_command(self, name: str, data: bytes) -> bytes:
        if name == "ERROR":
            raise CodecError(f"the peer refused the handshake with ERROR {data[1 : 1 + data[0]]!r}")
        if name != "READY":
            raise CodecError(f"expected READY, got {name}")
        self.peer = parse_properties(data)
        return b""

    def wrap(self, frames: list[bytes], command_frame: bool = False, rfc_form: bool = False) -> bytes:
        if rfc_form:
            raise CodecError(f"MESSAGE in a command frame is CURVE's; this connection is {self.name}")
        if command_frame:
            return frame(frames[0], COMMAND)
        return message(frames)

    def unwrap(self, f: Frame) -> Frame:
        return f


class Plain(Mechanism):
    """PLAIN client (RFC 24): HELLO with user and password, WELCOME, INITIATE with metadata, READY."""

    name = "PLAIN"

    def __init__(self, socket_type: str, identity: bytes, username: bytes, password: bytes) -> None:
        super().__init__(socket_type, identity)
        self.username, self.password = username, password

    def start(self) -> bytes:
        u, p = self.username, self.password
        return command("HELLO", bytes((len(u),)) + u + bytes((len(p),)) + p)

    def on_command(self, name: str, data: bytes) -> bytes:
        if name == "WELCOME":
            return command("INITIATE", self.metadata_bytes())
        return super().on_command(name, data)


class PlainServer(Mechanism):
    """PLAIN server (RFC 24): reads HELLO, answers WELCOME, reads INITIATE, answers READY. It accepts
    any user and password it can parse: authorising them is ZAP's part, which the raw peer does not play."""

    name = "PLAIN"

    def __init__(self, socket_type: str, identity: bytes) -> None:
        super().__init__(socket_type, identity)
        self.username: bytes | None = None  # once HELLO came

    def start(self) -> bytes:
        return b""  # the client speaks first

    def on_command(self, name: str, data: bytes) -> bytes:
        if name == "HELLO":
            if not data or len(data) < 1 + data[0] + 1 or len(data) != 2 + data[0] + data[1 + data[0]]:
                raise CodecError(f"a PLAIN HELLO whose lengths do not add up: {data[:32].hex(' ')}")
            self.username = data[1 : 1 + data[0]]
            return command("WELCOME")
        if name == "INITIATE":
            if self.username is None:
                raise CodecError("INITIATE before HELLO")
            self.peer = parse_properties(data)
            return command("READY", self.metadata_bytes())
        if name == "ERROR":
            return super().on_command(name, data)
        raise CodecError(f"expected HELLO or INITIATE, got {name}")


class _CurveBoxes(Mechanism):
    """What both CURVE sides share (RFC 25/26): short nonces that only increase, and MESSAGE boxes."""

    name = "CURVE"
    sends, reads = b"CurveZMQMESSAGEC", b"CurveZMQMESSAGES"  # a client's view; a server swaps them

    def __init__(self, socket_type: str, identity: bytes) -> None:
        super().__init__(socket_type, identity)
        self.transient = PrivateKey.generate()
        self.nonce = 0
        self.peer_nonce = 0
        self.session: Box | None = None

    def _short(self) -> bytes:
        self.nonce += 1
        return struct.pack("!Q", self.nonce)

    def _check_nonce(self, short: bytes) -> None:
        (n,) = struct.unpack("!Q", short)
        if n <= self.peer_nonce:
            raise CodecError(f"the peer's short nonce {n} does not increase (previous {self.peer_nonce})")
        self.peer_nonce = n

    def box(self, inner_flags: int, body: bytes, rfc_form: bool = False) -> bytes:
        """One frame: a MESSAGE box of `body` with its inner flags (MORE 0x01, COMMAND 0x02).

        In a data frame with MORE outside too (the ecosystem's form, validator.CONVENTIONS), or with
        `rfc_form` in a command frame, as RFC 25/26 make MESSAGE a command: MORE then travels only
        inside the box, since a command frame cannot carry it (RFC 23).
        """
        assert self.session is not None
        short = self._short()
        sealed = self.session.encrypt(bytes((inner_flags,)) + body, self.sends + short).ciphertext
        return frame(b"\x07MESSAGE" + short + sealed, COMMAND if rfc_form else inner_flags & MORE)

    def wrap(self, frames: list[bytes], command_frame: bool = False, rfc_form: bool = False) -> bytes:
        out = bytearray()
        for i, body in enumerate(frames):
            more = MORE if i < len(frames) - 1 else 0
            out += self.box(0x02 if command_frame else more, body, rfc_form)
        return bytes(out)

    def unwrap(self, f: Frame) -> Frame:
        assert self.session is not None
        if not f.body.startswith(b"\x07MESSAGE") or len(f.body) < 8 + 8 + 17:
            raise CodecError(f"after the CURVE handshake, a frame that is not a MESSAGE: {f.body[:16].hex(' ')}")
        short = f.body[8:16]
        self._check_nonce(short)
        try:
            inner = self.session.decrypt(f.body[16:], self.reads + short)
        except CryptoError:
            raise CodecError("a MESSAGE box does not open") from None
        if inner[0] & ~(MORE | 0x02):
            raise CodecError(f"MESSAGE flags 0x{inner[0]:02x} set reserved bits")
        return Frame((MORE if inner[0] & MORE else 0) | (COMMAND if inner[0] & 0x02 else 0), inner[1:])


class Curve(_CurveBoxes):
    """CURVE client (RFC 25/26), with PyNaCl boxes: HELLO, WELCOME, INITIATE (vouch), READY, MESSAGE."""

    corruptions = CURVE_CLIENT_CORRUPTIONS

    def __init__(self, socket_type: str, identity: bytes, secret: bytes, server_public: bytes) -> None:
        super().__init__(socket_type, identity)
        self.permanent = PrivateKey(secret)
        self.server = PublicKey(server_public)
        self.sent_initiate = b""  # the INITIATE command this client sent, for another connection to replay
        # Another connection's INITIATE to send instead of this one's (its cookie, nonce, boxes and vouch
        # verbatim): a replayed handshake, which the server must refuse (RFC 26 WELCOME: the cookie key
        # is discarded once a valid INITIATE used it). The handshake then ends there, like a corruption.
        self.replay_initiate: bytes | None = None

    def start(self) -> bytes:
        short = self._short()
        signature = Box(self.transient, self.server).encrypt(bytes(64), b"CurveZMQHELLO---" + short).ciphertext
        body = b"\x01\x00" + bytes(72) + bytes(self.transient.public_key) + short + signature
        return command("HELLO", body)

    def on_command(self, name: str, data: bytes) -> bytes:
        if name == "WELCOME":
            if len(data) != 16 + 144:
                raise CodecError(f"WELCOME of {len(data) + 8} octets; RFC 26 makes it 168")
            try:
                opened = Box(self.transient, self.server).decrypt(data[16:], b"WELCOME-" + data[:16])
            except CryptoError:
                raise CodecError("the WELCOME box does not open with the server key") from None
            server_transient, cookie = PublicKey(opened[:32]), opened[32:]
            self.fresh.update(
                {"server transient key": opened[:32], "WELCOME nonce": data[:16], "cookie": bytes(cookie)}
            )
            long_nonce = os.urandom(16)
            try:
                self.session = Box(self.transient, server_transient)
                vouch = (
                    Box(self.permanent, server_transient)
                    .encrypt(bytes(self.transient.public_key) + bytes(self.server), b"VOUCH---" + long_nonce)
                    .ciphertext
                )
            except CryptoError:  # libsodium refuses a key whose shared secret is all zero
                raise CodecError(
                    f"WELCOME names a server transient key no shared key can be made with: {opened[:32].hex()}"
                ) from None
            if self.corrupt == "vouch":  # one octet of the vouch's MAC flipped: the box no longer opens
                vouch = bytes((vouch[0] ^ 0x01,)) + vouch[1:]
                self.corrupted = True
            plain = bytes(self.permanent.public_key) + long_nonce + vouch + self.metadata_bytes()
            short = self._short()
            box = self.session.encrypt(plain, b"CurveZMQINITIATE" + short).ciphertext
            if self.replay_initiate is not None:
                self.corrupted = True
                return self.replay_initiate
            self.sent_initiate = command("INITIATE", cookie + short + box)
            return self.sent_initiate
        if name == "READY":
            if self.session is None:
                raise CodecError("READY before WELCOME")
            if len(data) < 8 + 16:
                raise CodecError(f"READY of {len(data) + 6} octets; RFC 26 makes it at least 30")
            self._check_nonce(data[:8])
            try:
                meta = self.session.decrypt(data[8:], b"CurveZMQREADY---" + data[:8])
            except CryptoError:
                raise CodecError("the READY box does not open") from None
            self.peer = parse_properties(meta)
            return b""
        return super().on_command(name, data)


class CurveServer(_CurveBoxes):
    """CURVE server (RFC 25/26): reads HELLO, answers WELCOME with a cookie, checks INITIATE's
    cookie and vouch, answers READY. It accepts any client key: authorising it is ZAP's part,
    which the raw peer does not play."""

    sends, reads = b"CurveZMQMESSAGES", b"CurveZMQMESSAGEC"
    corruptions = CURVE_SERVER_CORRUPTIONS

    def __init__(self, socket_type: str, identity: bytes, secret: bytes) -> None:
        super().__init__(socket_type, identity)
        self.permanent = PrivateKey(secret)
        self.cookie_key = SecretBox(os.urandom(32))
        self.cookie = b""
        self.client_transient: PublicKey | None = None
        self.client: bytes = b""  # the client's permanent public key, once INITIATE vouched for it
        # An ERROR reason: answer a valid INITIATE with ERROR instead of READY (a server refusing the client,
        # RFC 26 "To reject a client connection explicitly"), for a scenario to watch what the client does.
        self.refusal: bytes | None = None

    def start(self) -> bytes:
        return b""  # the client speaks first

    def on_command(self, name: str, data: bytes) -> bytes:
        if name == "HELLO":
            if len(data) != 194:
                raise CodecError(f"HELLO of {len(data) + 6} octets; RFC 26 makes it 200")
            if data[:2] != b"\x01\x00":
                raise CodecError(f"HELLO version {data[0]}.{data[1]}; RFC 26 has 1.0")
            if data[2:74] != bytes(72):
                # The prose says 70 octets, the grammar 72 (hello-padding = 72%x00); the length check holds it to 72.
                raise CodecError(f"HELLO anti-amplification padding is not all zero: {data[2:74].hex(' ')}")
            client_transient, short = PublicKey(data[74:106]), data[106:114]
            self._check_nonce(short)
            try:
                # (a CryptoError too: a client transient key libsodium refuses, such as all zeros)
                zeros = Box(self.permanent, client_transient).decrypt(data[114:], b"CurveZMQHELLO---" + short)
            except CryptoError:
                raise CodecError("the HELLO signature box does not open with the server key") from None
            if zeros != bytes(64):
                raise CodecError("the HELLO signature box does not hold 64 zero octets")
            self.client_transient = client_transient
            self.fresh["client transient key"] = bytes(client_transient)
            nonce = os.urandom(16)
            # The cookie holds C' and s' sealed with a key only this server has (RFC 26 WELCOME).
            self.cookie = (
                nonce
                + self.cookie_key.encrypt(
                    bytes(client_transient) + bytes(self.transient), b"COOKIE--" + nonce
                ).ciphertext
            )
            long_nonce = os.urandom(16)
            named = bytes(32) if self.corrupt == "welcome_zero_key" else bytes(self.transient.public_key)
            self.corrupted = self.corrupt == "welcome_zero_key"
            sealed = (
                Box(self.permanent, client_transient).encrypt(named + self.cookie, b"WELCOME-" + long_nonce).ciphertext
            )
            if self.corrupt == "welcome_box":  # one octet of the MAC flipped: the box no longer opens
                sealed = bytes((sealed[0] ^ 0x01,)) + sealed[1:]
                self.corrupted = True
            elif self.corrupt == "welcome_size":  # 167 octets: the box's last octet left off
                sealed = sealed[:-1]
                self.corrupted = True
            return command("WELCOME", long_nonce + sealed)
        if name == "INITIATE":
            if self.client_transient is None:
                raise CodecError("INITIATE before HELLO")
            if len(data) < 96 + 8 + 16 + 128 or data[:96] != self.cookie:
                raise CodecError("INITIATE does not carry the cookie this server sent in WELCOME")
            short = data[96:104]
            self._check_nonce(short)
            self.session = Box(self.transient, self.client_transient)
            try:
                plain = self.session.decrypt(data[104:], b"CurveZMQINITIATE" + short)
            except CryptoError:
                raise CodecError("the INITIATE box does not open") from None
            client, vouch_nonce, vouch = PublicKey(plain[:32]), plain[32:48], plain[48:128]
            self.fresh["vouch nonce"] = vouch_nonce
            try:
                vouched = Box(self.transient, client).decrypt(vouch, b"VOUCH---" + vouch_nonce)
            except CryptoError:
                raise CodecError("the vouch box does not open with the client's permanent key") from None
            if vouched != bytes(self.client_transient) + bytes(self.permanent.public_key):
                raise CodecError("the vouch does not name this connection's client transient key and this server")
            self.client = bytes(client)
            if self.refusal is not None:  # an explicit rejection (RFC 26): ERROR, and the handshake ends
                self.corrupted = True
                return command("ERROR", bytes((len(self.refusal),)) + self.refusal)
            self.peer = parse_properties(plain[128:])
            short = self._short()
            sealed = self.session.encrypt(self.metadata_bytes(), b"CurveZMQREADY---" + short).ciphertext
            if self.corrupt == "ready_box":  # one octet of the MAC flipped: the box no longer opens
                sealed = bytes((sealed[0] ^ 0x01,)) + sealed[1:]
                self.corrupted = True
            return command("READY", short + sealed)
        if name == "ERROR":
            return super().on_command(name, data)
        raise CodecError(f"expected HELLO or INITIATE, got {name}")


MechanismFactory = Callable[[str, bytes], Mechanism]


# -- one connection -------------------------------------------------------------------------


class Codec:
    """The raw peer's side of one connection: bytes in, messages out; what to send in `outgoing`."""

    def __init__(
        self,
        socket_type: str,
        *,
        as_server: bool,
        minor: int | None = None,
        identity: bytes = b"",
        mechanism: MechanismFactory | None = None,
        properties: list[tuple[str, bytes]] | None = None,
        lowercase_names: bool = False,
        corrupt: str | None = None,
        stop_after: str | None = None,
        refuse: bytes | None = None,
    ) -> None:
        self.socket_type = socket_type
        self.mech = (mechanism or Mechanism)(socket_type, identity)
        self.mech.extra = list(properties or [])
        self.mech.lowercase_names = lowercase_names
        if corrupt is not None and corrupt not in self.mech.corruptions:
            side = "server" if as_server else "client"
            raise CodecError(
                f"a {self.mech.name} {side} cannot spoil {corrupt!r}; it can spoil {', '.join(self.mech.corruptions)}"
            )
        self.mech.corrupt = corrupt
        if refuse is not None:
            if not isinstance(self.mech, CurveServer):
                raise CodecError(f"only a raw CURVE server refuses with ERROR; this side is a {self.mech.name} one")
            if len(refuse) > 255:
                raise CodecError(f"an ERROR reason of {len(refuse)} octets; RFC 26 allows 255")
            self.mech.refusal = refuse
        # A command name: the handshake ends once this side has sent that command, and the codec reads no
        # more (the peer's answer, such as an ERROR, is for the scenario's next steps to read raw).
        self.stop_after = stop_after
        self.stopped = False
        self.minor = 1 if minor is None else minor
        self.outgoing = bytearray(greeting(3, self.minor, self.mech.name, int(as_server)))
        self.reader = FrameReader()
        self.pending = bytearray()  # before the greeting is whole
        self.peer_version: tuple[int, int] | None = None
        self.ready = False
        self.messages: list[list[bytes]] = []
        self._parts: list[bytes] = []

    @property
    def version(self) -> str:
        return (
            "?"
            if self.peer_version is None
            else f"{min(3, self.peer_version[0])}.{min(self.minor, self.peer_version[1])}"
        )

    @property
    def peer_socket_type(self) -> str:
        meta = self.mech.peer or {}
        return meta.get("socket-type", b"?").decode("ascii", errors="replace")

    def data_to_send(self) -> bytes:
        out = bytes(self.outgoing)
        self.outgoing.clear()
        return out

    def receive(self, data: bytes) -> None:
        if self.stopped:
            return  # the handshake ended where the scenario asked; what follows is read raw
        if self.peer_version is None:
            self.pending += data
            if len(self.pending) < 64:
                return
            major, minor, mechanism, _ = parse_greeting(bytes(self.pending[:64]))
            if mechanism != self.mech.name:
                raise CodecError(f"the peer greets with mechanism {mechanism}, the raw peer with {self.mech.name}")
            self.peer_version = (major, minor)
            data = bytes(self.pending[64:])
            self._send_handshake(self.mech.start())
        for f in self.reader.feed(data):
            if self.stopped:
                break
            self._frame(f)

    def _frame(self, f: Frame) -> None:
        if not self.ready:
            if not f.is_command:
                raise CodecError(f"a message frame during the handshake: {f.body[:16].hex(' ')}")
            name, data = f.command()
            self._send_handshake(self.mech.on_command(name, data))
            if self.stopped:
                return
            if self.mech.peer is not None:
                self._check_peer()
                self.ready = True
            return
        f = self.mech.unwrap(f)
        if f.is_command:
            name, data = f.command()
            if name == "PING":
                if len(data) < 2:
                    raise CodecError("PING without its TTL")
                self.outgoing += self.mech.wrap([b"\x04PONG" + data[2:]], command_frame=True)
            elif name == "ERROR":
                raise CodecError(f"the peer sent ERROR {data[1 : 1 + data[0]]!r} after the handshake")
            return
        self._parts.append(f.body)
        if not f.flags & MORE:
            self.messages.append(self._parts)
            self._parts = []

    def _send_handshake(self, out: bytes) -> None:
        self.outgoing += out
        if self.stop_after and any(f.is_command and f.command()[0] == self.stop_after for f in FrameReader().feed(out)):
            self.stopped = True

    def _check_peer(self) -> None:
        theirs = self.peer_socket_type
        if theirs not in VALID_PEERS.get(self.socket_type, set()):
            raise CodecError(f"the peer is a {theirs} socket, which a {self.socket_type} does not accept")

    def send_message(self, frames: list[bytes], rfc_form: bool = False) -> None:
        """`rfc_form`: under CURVE, each MESSAGE in a command frame (RFC 25/26) rather than a data frame."""
        self.outgoing += self.mech.wrap(frames, rfc_form=rfc_form)

    def send_subscribe(self, topic: bytes) -> None:
        """SUBSCRIBE as ZMTP 3.1 has it (a command), or as a 3.0 peer expects it (a 01 message)."""
        if self.peer_version is not None and self.peer_version[1] >= 1 and self.minor >= 1:
            self.outgoing += self.mech.wrap([b"\x09SUBSCRIBE" + topic], command_frame=True)
        else:
            self.send_message([b"\x01" + topic])
