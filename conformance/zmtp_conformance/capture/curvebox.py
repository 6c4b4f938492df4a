"""Opening the CURVE boxes of a captured stream, given the keys (RFC 26).

Which boxes open depends on what is known:
- the client's transient secret c' (key log) and the server's long-term
  public key S: WELCOME (giving S'), then INITIATE, READY and every MESSAGE;
- the server's transient secret s' (key log, found by trying it against
  INITIATE, since S' is only ever sent inside a box) and C' from HELLO:
  INITIATE, READY and every MESSAGE;
- the server's long-term secret s: HELLO and WELCOME only.

What opens is added to the items' fields: `server_transient` on WELCOME,
`client_key` and `properties` on INITIATE, `properties` on READY, and on
each MESSAGE `inner_flags` (01 MORE, 02 COMMAND) and `plaintext`. The crypto
is PyNaCl's (libsodium); nothing here is hand-rolled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nacl.exceptions import CryptoError
from nacl.public import Box, PrivateKey, PublicKey

from .dissect import Decoder, Item, decode_properties


@dataclass
class CurveKeys:
    transient: dict[bytes, bytes] = field(default_factory=dict)  # public -> secret, from key logs
    server_public: bytes | None = None  # S
    server_secret: bytes | None = None  # s


@dataclass
class Opened:
    """What was opened in one stream: counts, and why the rest did not open."""

    boxes: int = 0
    failed: int = 0
    note: str = ""


def _open(box: Box, nonce: bytes, ciphertext: bytes) -> bytes | None:
    try:
        return box.decrypt(bytes(ciphertext), bytes(nonce))
    except CryptoError:
        return None


def _box(secret: bytes, public: bytes) -> Box | None:
    """A box between these keys, or None when libsodium refuses the pair: a key read off the wire may be
    one no shared key can be made with (all zeros, as a hostile WELCOME or HELLO can carry)."""
    try:
        return Box(PrivateKey(secret), PublicKey(public))
    except CryptoError:
        return None


def _command(dec: Decoder, name: str) -> Item | None:
    return next((it for it in dec.items if it.kind == "command" and it.name == name), None)


def open_stream(client: Decoder, server: Decoder, keys: CurveKeys) -> Opened:
    """Open what the keys allow in one CURVE stream's items (client's and server's decoders)."""
    out = Opened()
    if client.mechanism != "CURVE" or server.mechanism != "CURVE":
        out.note = "not a CURVE stream"
        return out
    hello, welcome = _command(client, "HELLO"), _command(server, "WELCOME")
    initiate, ready = _command(client, "INITIATE"), _command(server, "READY")
    if hello is None or len(hello.body) < 194:
        out.note = "no HELLO: the client's transient key is unknown"
        return out
    c_pub = bytes(hello.body[74:106])
    c_sec = keys.transient.get(c_pub)
    s_pub: bytes | None = None
    if welcome is not None and len(welcome.body) >= 160:
        opener = None
        if c_sec is not None and keys.server_public is not None:
            opener = _box(c_sec, keys.server_public)
        elif keys.server_secret is not None:
            opener = _box(keys.server_secret, c_pub)
        if opener is not None:
            plain = _open(opener, b"WELCOME-" + bytes(welcome.body[:16]), welcome.body[16:160])
            if plain is None:
                out.failed += 1
            else:
                out.boxes += 1
                s_pub = plain[:32]
                welcome.fields["server_transient"] = s_pub.hex()
    shared: Box | None = None
    if c_sec is not None and s_pub is not None:
        shared = _box(c_sec, s_pub)
        if shared is None:
            out.note = f"WELCOME names a server transient key no shared key can be made with: {s_pub.hex()}"
            return out
    elif initiate is not None and len(initiate.body) >= 104:
        # Try each known transient secret as s'; the one that opens INITIATE is the server's.
        nonce, box = b"CurveZMQINITIATE" + bytes(initiate.body[96:104]), initiate.body[104:]
        if s_pub is not None and s_pub in keys.transient:
            candidates = [keys.transient[s_pub]]
        else:
            candidates = [sec for pub, sec in keys.transient.items() if pub != c_pub]
        for sec in candidates:
            b = _box(sec, c_pub)
            if b is not None and _open(b, nonce, box) is not None:
                shared = b
                break
    if shared is None:
        out.note = "the transient keys of this connection are not in the key log"
        return out
    if initiate is not None and len(initiate.body) >= 104:
        plain = _open(shared, b"CurveZMQINITIATE" + bytes(initiate.body[96:104]), initiate.body[104:])
        if plain is None or len(plain) < 128:
            out.failed += 1
        else:
            out.boxes += 1
            initiate.fields["client_key"] = plain[:32].hex()
            initiate.fields["properties"], _ = decode_properties(plain[128:])
    if ready is not None and len(ready.body) >= 8:
        plain = _open(shared, b"CurveZMQREADY---" + bytes(ready.body[:8]), ready.body[8:])
        if plain is None:
            out.failed += 1
        else:
            out.boxes += 1
            ready.fields["properties"], _ = decode_properties(plain)
    for dec, prefix in ((client, b"CurveZMQMESSAGEC"), (server, b"CurveZMQMESSAGES")):
        for it in dec.items:
            if it.name != "MESSAGE" or it.kind not in ("frame", "command"):
                continue
            data = it.body[8:] if it.kind == "frame" else it.body  # a data frame carries the name too
            if len(data) < 25:
                continue
            plain = _open(shared, prefix + bytes(data[:8]), data[8:])
            if plain is None:
                out.failed += 1
                continue
            out.boxes += 1
            it.fields["inner_flags"] = plain[0]
            it.fields["plaintext"] = plain[1:]
    return out
