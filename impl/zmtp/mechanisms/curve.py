"""The CURVE mechanism (RFC 25, RFC 26 CurveZMQ), with PyNaCl's crypto_box and secretbox.

    C: HELLO    version, 72 zeros, C', nonce, Box[64 zeros](C'->S)            (200 octets)
    S: WELCOME  long nonce, Box[S' + cookie](S->C')                           (168 octets)
    C: INITIATE cookie, nonce, Box[C + vouch + metadata](C'->S')              (>= 257 octets)
    S: READY    nonce, Box[metadata](S'->C')
    then MESSAGE nonce, Box[flags + frame] both ways

The cookie is secretbox[C' + s'] under a server cookie key: after WELCOME
the server forgets both transient keys and gets them back from the cookie
in INITIATE, so it keeps no per-connection state before INITIATE. The
cookie key is rotated every COOKIE_KEY_LIFETIME seconds (the previous one
stays valid, for handshakes in flight), by the clock the I/O layer hands to
`CookieKeys`; this module reads no clock and writes no file (a key log is a
callable passed in, see zmtp.keylog). A cookie serves one valid INITIATE:
`CookieKeys` remembers the spent ones while their key can open them, so an
INITIATE replayed on another connection is refused. Short nonces start at 1
and must strictly increase in each direction.

RFC 26 disagrees with itself: HELLO padding is 72 octets in the grammar and
70 in the prose, and the MESSAGE nonce prefix is "CurveZMQMESSAGE-" in the
grammar but C/S in the prose. libzmq uses 72 and "CurveZMQMESSAGEC" for
client-to-server, "CurveZMQMESSAGES" for server-to-client; so do we. Like
libzmq >= 4.2, the flags octet inside a MESSAGE box carries 02 for a command
(PING, SUBSCRIBE, ...), and MESSAGE itself travels in a data frame with
flags 00, which is the only form libzmq reads correctly.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator

from nacl.bindings import crypto_box_beforenm, crypto_box_easy_afternm, crypto_box_open_easy_afternm

try:
    # PyNaCl's own cffi binding to libsodium, for the traffic phase only: its public
    # wrappers allocate a fresh buffer and copy the result out on every call, which
    # for a 1 KiB frame costs more than the cipher. The function called is the same
    # libsodium crypto_box_easy_afternm; nothing cryptographic is done here.
    from nacl._sodium import ffi as _ffi
    from nacl._sodium import lib as _lib
except ImportError:  # pragma: no cover - a PyNaCl without it: the public binding does the same
    _ffi = _lib = None
from nacl.exceptions import CryptoError
from nacl.public import Box, PrivateKey, PublicKey
from nacl.secret import SecretBox

from .. import command
from ..errors import ProtocolError
from ..frame import LONG as LONG_FLAG
from ..frame import encode_command, frame_header
from ..metadata import decode_properties, encode_properties
from .base import FRAME_FLAGS, Mechanism

CLAUSE = "26/CURVEZMQ"
HELLO, WELCOME, INITIATE, MESSAGE = b"HELLO", b"WELCOME", b"INITIATE", b"MESSAGE"
COOKIE_KEY_LIFETIME = 60.0
MSG_MORE, MSG_COMMAND = 0x01, 0x02

_pack_nonce = struct.Struct(">Q").pack
# Room for the box's MAC, in front of the plaintext it is computed over, then the inner flags
# octet (any: tests seal reserved bits too), by its value.
_MAC_AND_FLAGS = tuple(bytes(16) + bytes((f,)) for f in range(256))
_unpack_nonce = struct.Struct(">Q").unpack
# The one transient key pair every connection uses under the curve_transient_reused knob.
_REUSED_TRANSIENT = PrivateKey.generate()


class CookieKeys:
    """A server's rotating cookie keys, shared by the connections that are given the same object.

    `clock` (seconds, monotonic) is the I/O layer's: with it, a key older than `lifetime`
    is replaced when next used; without it, keys change only when `rotate` is called.
    """

    def __init__(self, clock: Callable[[], float] | None = None, lifetime: float = COOKIE_KEY_LIFETIME) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._current = SecretBox(os.urandom(32))
        self._previous: SecretBox | None = None
        self._since = clock() if clock is not None else 0.0
        # Cookies a valid INITIATE has used, by their nonce, for each key that can still open them: RFC 26
        # has a server discard the cookie key once a valid INITIATE used it. The key here serves many
        # connections, so what is discarded is the cookie: the same INITIATE replayed on a new
        # connection opens its cookie but is refused as spent.
        self._spent: set[bytes] = set()
        self._spent_previous: set[bytes] = set()

    def current(self) -> SecretBox:
        if self._clock is not None and self._clock() - self._since > self.lifetime:
            self.rotate()
        return self._current

    def rotate(self) -> None:
        self._previous, self._current = self._current, SecretBox(os.urandom(32))
        self._spent_previous, self._spent = self._spent, set()
        if self._clock is not None:
            self._since = self._clock()

    def open(self, nonce: bytes, box: bytes) -> bytes:
        for key in (self.current(), self._previous):
            if key is None:
                continue
            try:
                return key.decrypt(box, nonce)
            except CryptoError:
                continue
        raise CryptoError("cookie does not open with the current or previous cookie key")

    def spend(self, nonce: bytes) -> bool:
        """Mark the cookie with this nonce as used by a valid INITIATE; False if it was used already."""
        if nonce in self._spent or nonce in self._spent_previous:
            return False
        self._spent.add(nonce)
        return True


def _box(sk: PrivateKey, pk: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    try:
        return Box(sk, PublicKey(pk)).encrypt(plaintext, nonce).ciphertext
    except CryptoError:
        # libsodium refuses a peer key whose shared secret is all zero (such as 32 zero octets): a key
        # the peer sent is malformed, and the connection must close rather than the engine fail.
        raise ProtocolError(f"peer key {pk.hex()} gives no usable shared key", clause=CLAUSE) from None


def _open(sk: PrivateKey, pk: bytes, nonce: bytes, box: bytes, what: str) -> bytes:
    try:
        return Box(sk, PublicKey(pk)).decrypt(box, nonce)
    except CryptoError:
        raise ProtocolError(f"{what} box does not open (wrong key or tampered)", clause=CLAUSE) from None


class CurveMechanism(Mechanism):
    name = "CURVE"
    encrypts = True

    def __init__(
        self,
        *,
        secret_key: bytes,
        server_key: bytes | None = None,  # the server's long-term public key (clients)
        transient: PrivateKey | None = None,  # injectable for tests
        cookie_keys: CookieKeys | None = None,  # a server's; None: keys of its own that never rotate
        keylog: Callable[[bytes, bytes], None] | None = None,  # told each transient pair (public, secret)
        **kw,  # type: ignore[no-untyped-def]
    ) -> None:
        super().__init__(**kw)
        self.long_sk = PrivateKey(secret_key)
        self.long_pk = bytes(self.long_sk.public_key)
        self.server_key = server_key
        if not self.as_server and (server_key is None or len(server_key) != 32):
            raise ValueError("a CURVE client needs the server's 32-byte public key (curve_serverkey)")
        if transient is None and self.bugs.curve_transient_reused:
            transient = _REUSED_TRANSIENT
        self.transient = transient or PrivateKey.generate()
        if keylog is not None:
            keylog(bytes(self.transient.public_key), bytes(self.transient))
        self.cookie_keys = cookie_keys if cookie_keys is not None else CookieKeys()
        self.peer_transient: bytes | None = None
        self.client_key: bytes | None = None  # the client's long-term key, on a server
        self._send_nonce = 1
        self._recv_nonce = 0
        self._state = "start"
        self._shared = b""  # transient shared key for the traffic phase, set by _finish
        self._heads: dict[int, bytes] = {}  # MESSAGE frame header and name, by plaintext size
        # MESSAGE's frame: a data frame, as libzmq reads it, or (a knob) the command frame of RFC 25.
        self._message_flags = 0x04 if self.bugs.curve_message_command_frame else 0
        self._repeat_nonce = self.bugs.curve_repeat_nonce

    def __repr__(self) -> str:
        return f"<CurveMechanism {'server' if self.as_server else 'client'} {self._state}>"

    # -- nonces ----------------------------------------------------------

    def _next_nonce(self) -> bytes:
        n = self._send_nonce
        if not self._repeat_nonce:
            self._send_nonce += 1
        return _pack_nonce(n)

    def _check_nonce(self, short: bytes) -> None:
        n = _unpack_nonce(short)[0]
        if n <= self._recv_nonce and not self.bugs.curve_nonce_unchecked:
            raise ProtocolError(
                f"short nonce {n} does not increase (last was {self._recv_nonce}): replayed or reordered",
                clause="26/CURVEZMQ#nonces",
            )
        self._recv_nonce = n

    # -- handshake -----------------------------------------------------------

    def start(self) -> None:
        if self.as_server:
            self._state = "expect-hello"
            return
        nonce = self._next_nonce()
        assert self.server_key is not None
        box = _box(self.transient, self.server_key, b"CurveZMQHELLO---" + nonce, b"\x00" * 64)
        padding = 70 if self.bugs.curve_hello_padding_70 else 72
        body = b"\x01\x00" + b"\x00" * padding + bytes(self.transient.public_key) + nonce + box
        self.outgoing.append(encode_command(HELLO, body))
        self._state = "expect-welcome"

    def receive_command(self, name: bytes, data: bytes) -> None:
        self.check_error(name, data)
        handler = {
            ("expect-hello", HELLO): self._on_hello,
            ("expect-welcome", WELCOME): self._on_welcome,
            ("expect-initiate", INITIATE): self._on_initiate,
            ("expect-ready", command.READY): self._on_ready,
        }.get((self._state, name))
        if handler is None:
            raise ProtocolError(
                f"unexpected {name.decode()} command in the CURVE handshake ({self._state})", clause=CLAUSE
            )
        handler(data)

    def _on_hello(self, data: bytes) -> None:
        if len(data) != 194:
            raise ProtocolError(f"HELLO is {len(data) + 6} octets; CURVE's is exactly 200", clause=CLAUSE)
        if data[0:2] != b"\x01\x00":
            raise ProtocolError(f"HELLO version {data[0]}.{data[1]}; this server speaks CurveZMQ 1.0", clause=CLAUSE)
        c_prime = data[74:106]
        short = data[106:114]
        self._check_nonce(short)
        plain = _open(self.long_sk, c_prime, b"CurveZMQHELLO---" + short, data[114:194], "HELLO")
        if plain != b"\x00" * 64:
            raise ProtocolError("HELLO signature box does not hold 64 zero octets", clause=CLAUSE)
        # WELCOME: S' and a cookie holding C' and s'; then forget both (statelessness).
        cookie_nonce = os.urandom(16)
        cookie = (
            cookie_nonce
            + self.cookie_keys.current().encrypt(c_prime + bytes(self.transient), b"COOKIE--" + cookie_nonce).ciphertext
        )
        long_nonce = bytes(16) if self.bugs.curve_welcome_nonce_fixed else os.urandom(16)
        box = _box(self.long_sk, c_prime, b"WELCOME-" + long_nonce, bytes(self.transient.public_key) + cookie)
        self.outgoing.append(encode_command(WELCOME, long_nonce + box))
        self.transient = None  # type: ignore[assignment]
        self._state = "expect-initiate"

    def _on_welcome(self, data: bytes) -> None:
        if len(data) != 160:
            raise ProtocolError(f"WELCOME is {len(data) + 8} octets; CURVE's is exactly 168", clause=CLAUSE)
        assert self.server_key is not None
        plain = _open(self.transient, self.server_key, b"WELCOME-" + data[:16], data[16:], "WELCOME")
        s_prime, cookie = plain[:32], plain[32:]
        self.peer_transient = s_prime
        vouch_nonce = bytes(16) if self.bugs.curve_vouch_nonce_fixed else os.urandom(16)
        vouch = vouch_nonce + _box(
            self.long_sk,
            self.server_key if self.bugs.curve_vouch_wrong_key else s_prime,
            b"VOUCH---" + vouch_nonce,
            bytes(self.transient.public_key) + self.server_key,
        )
        nonce = self._next_nonce()
        inner = self.long_pk + vouch + encode_properties(self.local_metadata)
        box = _box(self.transient, s_prime, b"CurveZMQINITIATE" + nonce, inner)
        self.outgoing.append(encode_command(INITIATE, cookie + nonce + box))
        self._state = "expect-ready"

    def _on_initiate(self, data: bytes) -> None:
        if len(data) < 248:
            raise ProtocolError(f"INITIATE is {len(data) + 9} octets; CURVE's is at least 257", clause=CLAUSE)
        cookie, short, box = data[:96], data[96:104], data[104:]
        try:
            keys = self.cookie_keys.open(b"COOKIE--" + cookie[:16], cookie[16:])
        except CryptoError:
            raise ProtocolError("INITIATE cookie does not open: forged, tampered or expired", clause=CLAUSE) from None
        c_prime, s_prime_secret = keys[:32], PrivateKey(keys[32:])
        self._check_nonce(short)
        plain = _open(s_prime_secret, c_prime, b"CurveZMQINITIATE" + short, box, "INITIATE")
        if len(plain) < 128:
            raise ProtocolError("INITIATE box is too short for the client key and vouch", clause=CLAUSE)
        client_key, vouch_nonce, vouch_box = plain[:32], plain[32:48], plain[48:128]
        vouch = _open(s_prime_secret, client_key, b"VOUCH---" + vouch_nonce, vouch_box, "vouch")
        if vouch != c_prime + self.long_pk:
            raise ProtocolError("vouch does not bind the client's transient key to this server", clause=CLAUSE)
        if not self.cookie_keys.spend(cookie[:16]) and not self.bugs.curve_cookie_replay_accepted:
            raise ProtocolError("INITIATE carries a cookie an earlier INITIATE used: a replay", clause=CLAUSE)
        self.transient, self.peer_transient, self.client_key = s_prime_secret, c_prime, client_key
        self.accept_metadata(decode_properties(plain[128:], command="INITIATE"))
        if self.zap is not None:
            self._state = "zap"
            self.request_zap((client_key,))
            return
        self.zap_accepted()

    def zap_accepted(self) -> None:
        self._state = "serving"
        self.answer_when_served(self._answer_ready)

    def _answer_ready(self) -> None:
        assert self.peer_transient is not None
        nonce = self._next_nonce()
        box = _box(
            self.transient, self.peer_transient, b"CurveZMQREADY---" + nonce, encode_properties(self.local_metadata)
        )
        self.outgoing.append(encode_command(command.READY, nonce + box))
        self._finish()

    def _on_ready(self, data: bytes) -> None:
        if len(data) < 24:
            raise ProtocolError(f"READY is {len(data) + 6} octets; CURVE's is at least 30", clause=CLAUSE)
        self._check_nonce(data[:8])
        assert self.peer_transient is not None
        plain = _open(self.transient, self.peer_transient, b"CurveZMQREADY---" + data[:8], data[8:], "READY")
        self.accept_metadata(decode_properties(plain))
        self._finish()

    def _finish(self) -> None:
        assert self.peer_transient is not None
        # The traffic phase calls libsodium directly with the precomputed
        # shared key: a Box object's per-call wrapping costs more than the
        # cryptography for small messages.
        self._shared = crypto_box_beforenm(self.peer_transient, bytes(self.transient))
        self._out_prefix = b"CurveZMQMESSAGES" if self.as_server else b"CurveZMQMESSAGEC"
        self._in_prefix = b"CurveZMQMESSAGEC" if self.as_server else b"CurveZMQMESSAGES"
        self._state = "traffic"
        self.complete = True

    # -- traffic ---------------------------------------------------------------

    def encrypt(self, flags: int, body: bytes) -> bytes | bytearray:
        """One frame (flags: MORE 01, COMMAND 02, as inside the box) as a MESSAGE command.

        Built in one buffer: frame header, MESSAGE name, short nonce, then the box, which
        libsodium writes over the plaintext placed just after its MAC (in-place encryption
        is part of the crypto_box_easy contract). For a 1 KiB frame the Python around the
        call costs half as much as the cipher, hence the buffer in two steps (one resize)
        and cffi's default char[] view (naming the type costs a lookup per call).
        """
        if _lib is None:
            return self._encrypt_portable(flags, body)
        n = self._send_nonce
        if not self._repeat_nonce:
            self._send_nonce = n + 1
        nonce = _pack_nonce(n)
        mlen = len(body) + 1
        head = self._heads.get(mlen)
        if head is None:
            head = self._head(mlen)
        out = bytearray(head + nonce + _MAC_AND_FLAGS[flags])
        out += body
        box_at = len(head) + 8
        ptr = _ffi.from_buffer(out)
        if _lib.crypto_box_easy_afternm(
            ptr + box_at, ptr + (box_at + 16), mlen, self._out_prefix + nonce, self._shared
        ):
            raise ProtocolError("libsodium could not seal a MESSAGE box", clause=CLAUSE)
        return out

    def _head(self, mlen: int) -> bytes:
        heads = self._heads
        if len(heads) > 256:
            heads.clear()
        # name (8) + short nonce (8) + MAC (16) + flags and body. A data frame (flags 00):
        # libzmq treats a MESSAGE that arrives in a command frame as a command and drops
        # the data in it, though RFC 25 calls MESSAGE a command. We send what libzmq
        # reads and accept both forms (see Connection._decrypt).
        head = heads[mlen] = frame_header(32 + mlen, self._message_flags) + b"\x07MESSAGE"
        return head

    def _encrypt_portable(self, flags: int, body: bytes) -> bytes:
        """`encrypt` through PyNaCl's public binding (the same libsodium call, more copies)."""
        nonce = self._next_nonce()
        box = crypto_box_easy_afternm(bytes((flags,)) + body, self._out_prefix + nonce, self._shared)
        payload = b"\x07MESSAGE" + nonce + box
        return frame_header(len(payload), self._message_flags) + payload  # as in `encrypt`

    def open_message(self, body: bytes) -> tuple[int, bytes]:
        """A MESSAGE command's (inner flags, frame), from the whole command body (name included).

        The box is opened from where it lies, into a buffer of the plaintext's size: one copy
        (the frame out of it) where slicing the command apart would make three.
        """
        if _lib is None or len(body) < 33:
            return self.decrypt(MESSAGE, body[8:])
        short = body[8:16]
        n = _unpack_nonce(short)[0]
        if n <= self._recv_nonce:
            self._check_nonce(short)  # raises, with the message (unless curve_nonce_unchecked)
        self._recv_nonce = n
        clen = len(body) - 16
        out = bytearray(clen - 16)
        if _lib.crypto_box_open_easy_afternm(
            _ffi.from_buffer("unsigned char[]", out),
            _ffi.from_buffer("unsigned char[]", body) + 16,
            clen,
            self._in_prefix + short,
            self._shared,
        ):
            raise ProtocolError("MESSAGE box does not open (tampered)", clause=CLAUSE)
        flags = out[0]
        if flags & ~(MSG_MORE | MSG_COMMAND):
            raise ProtocolError(f"MESSAGE flags 0x{flags:02x} set reserved bits", clause=CLAUSE)
        with memoryview(out) as view:
            return flags, bytes(view[1:])

    def open_window(
        self,
        data: bytes,
        spans: list[tuple[int, int, int]],
        other: Callable[[int, bytes], tuple[int, bytes]],
    ) -> Iterator[tuple[int, bytes]]:
        """Each frame of one window of the stream (FrameDecoder.read_spans) as (frame flags,
        frame): the MORE and COMMAND of its box's inner flags, and its plaintext. Boxes are
        opened from where they lie, one at a time as the caller asks, so that what the caller
        does with a frame (answer a PING) happens before the next box is opened, as frame by
        frame. A frame that is not a MESSAGE in a data frame of at least 33 octets goes to
        `other(flags, body)` (the caller's general path) in its turn.

        One pointer to the window and one buffer for the plaintexts serve all its frames:
        per small frame, cffi's from_buffer and a fresh buffer cost about as much as the
        cipher. The caller iterates this generator directly: a layer of its own between
        would cost a tenth of a 1 KiB frame's time.
        """
        if _lib is None:
            for flags, start, end in spans:
                yield other(flags, data[start:end])
            return
        src = _ffi.from_buffer(data)
        plain = bytearray(len(data))  # every plaintext is shorter than its frame
        dst = _ffi.from_buffer(plain)
        at = 0
        open_box = _lib.crypto_box_open_easy_afternm
        prefix, key = self._in_prefix, self._shared
        with memoryview(plain) as view:
            for flags, start, end in spans:
                if flags & ~LONG_FLAG or end - start < 33 or not data.startswith(b"\x07MESSAGE", start):
                    yield other(flags, data[start:end])
                    continue
                short = data[start + 8 : start + 16]
                n = _unpack_nonce(short)[0]
                if n <= self._recv_nonce:
                    self._check_nonce(short)  # raises, with the message (unless curve_nonce_unchecked)
                self._recv_nonce = n
                clen = end - start - 16
                if open_box(dst + at, src + (start + 16), clen, prefix + short, key):
                    raise ProtocolError("MESSAGE box does not open (tampered)", clause=CLAUSE)
                inner = plain[at]
                if inner & ~(MSG_MORE | MSG_COMMAND):
                    raise ProtocolError(f"MESSAGE flags 0x{inner:02x} set reserved bits", clause=CLAUSE)
                size = clen - 16
                yield FRAME_FLAGS[inner], bytes(view[at + 1 : at + size])
                at += size

    def decrypt(self, name: bytes, data: bytes) -> tuple[int, bytes]:
        """A MESSAGE command's (inner flags, body)."""
        if name != MESSAGE:
            raise ProtocolError(
                f"cleartext {name.decode()} command after the CURVE handshake; everything travels in MESSAGE",
                clause="23/ZMTP#wire-analysis",
            )
        if len(data) < 25:
            raise ProtocolError(f"MESSAGE is {len(data) + 8} octets; CURVE's is at least 33", clause=CLAUSE)
        self._check_nonce(data[:8])
        try:
            plain = crypto_box_open_easy_afternm(data[8:], self._in_prefix + data[:8], self._shared)
        except CryptoError:
            raise ProtocolError("MESSAGE box does not open (tampered)", clause=CLAUSE) from None
        flags = plain[0]
        if flags & ~(MSG_MORE | MSG_COMMAND):
            raise ProtocolError(f"MESSAGE flags 0x{flags:02x} set reserved bits", clause=CLAUSE)
        return flags, plain[1:]
