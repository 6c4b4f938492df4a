"""Inputs generated from the ZMTP grammar (RFC 23/37, 24, 26): each generator takes a well-formed
exchange and breaks one thing in it, the way a hostile or broken peer would.

All bytes come from rawcodec (the raw peer's own codec); CURVE boxes are PyNaCl's, with transient
keys drawn from the campaign's random generator so that an input is the same for the same seed.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

from nacl.public import Box, PrivateKey, PublicKey

from .. import rawcodec
from ..credentials import CURVE_SERVER_PUBLIC, PLAIN_PASSWORD, PLAIN_USER, z85_decode
from ..rawcodec import COMMAND, LONG, MORE
from .inputs import FAULTS, Context, FuzzInput, Step

GREETING = "37/ZMTP#version-negotiation"
FRAMING = "23/ZMTP#framing"
NULL_MECH = "37/ZMTP#the-null-security-mechanism"
SOCKET_TYPE = "37/ZMTP#the-socket-type-property"
HEARTBEAT = "37/ZMTP#connection-heartbeating"
PUBSUB = "37/ZMTP#the-publish-subscribe-pattern"
ERRORS = "37/ZMTP#error-handling"
SECURITY = "23/ZMTP#authentication-and-confidentiality"

# Declared sizes that have broken real parsers: the top bit, 2^32 and around, the largest values.
HUGE_SIZES = [2**63 - 1, 2**64 - 1, 2**63, 2**32, 2**32 - 1, 2**31, 2**31 - 1, 2**40, 2**24 + 1]


def _partner(socket_type: str) -> str:
    return {"PULL": "PUSH", "ROUTER": "DEALER", "PUB": "SUB"}[socket_type]


def _metadata(socket_type: str) -> list[tuple[str, bytes]]:
    pairs = [("Socket-Type", _partner(socket_type).encode())]
    if socket_type == "ROUTER":
        pairs.append(("Identity", b""))
    return pairs


def curve_hello(rng: random.Random, *, version: bytes = b"\x01\x00", nonce: int = 1, key: bytes | None = None) -> bytes:
    """A CURVE HELLO body (RFC 26) with a transient key drawn from `rng`."""
    transient = PrivateKey(rng.randbytes(32))
    server = PublicKey(key if key is not None else z85_decode(CURVE_SERVER_PUBLIC))
    short = struct.pack("!Q", nonce)
    signature = Box(transient, server).encrypt(bytes(64), b"CurveZMQHELLO---" + short).ciphertext
    return version + bytes(72) + bytes(transient.public_key) + short + signature


def opening(ctx: Context, socket_type: str, rng: random.Random) -> list[bytes]:
    """The raw peer's first writes of a good handshake under the mechanism, as far as fixed bytes go:
    the greeting, then READY (NULL); as a client HELLO and INITIATE (PLAIN) or HELLO (CURVE); as a
    server WELCOME and READY (PLAIN) or nothing (CURVE: its answers are boxes for the client's keys,
    made at run time by the "serve" step)."""
    as_server = int(ctx.side == "client" and ctx.mechanism != "NULL")
    out = [rawcodec.greeting(3, 1, ctx.mechanism, as_server)]
    if ctx.mechanism == "NULL":
        out.append(rawcodec.ready(_metadata(socket_type)))
    elif as_server and ctx.mechanism == "PLAIN":
        out += [rawcodec.command("WELCOME"), rawcodec.ready(_metadata(socket_type))]
    elif as_server:
        pass
    elif ctx.mechanism == "PLAIN":
        u, p = PLAIN_USER.encode(), PLAIN_PASSWORD.encode()
        out.append(rawcodec.command("HELLO", bytes((len(u),)) + u + bytes((len(p),)) + p))
        out.append(rawcodec.command("INITIATE", rawcodec.properties(_metadata(socket_type))))
    else:
        out.append(rawcodec.command("HELLO", curve_hello(rng)))
    return out


def _pick_type(rng: random.Random, ctx: Context) -> str:
    if ctx.side == "client":
        return "PULL"
    return rng.choice(["PULL", "PULL", "ROUTER"])


def _raw(*pieces: bytes) -> list[Step]:
    return [("raw", p) for p in pieces]


def _splits(rng: random.Random, data: bytes, pieces: int) -> list[Step]:
    cuts = sorted(rng.sample(range(1, len(data)), min(pieces - 1, len(data) - 1))) if len(data) > 1 else []
    out: list[Step] = []
    last = 0
    for c in [*cuts, len(data)]:
        out += [("raw", data[last:c]), ("wait", 0.005)]
        last = c
    return out[:-1]


def _body(rng: random.Random, n: int | None = None) -> bytes:
    return rng.randbytes(rng.choice([0, 1, 5, 32, 255, 256]) if n is None else n)


# -- before the handshake --------------------------------------------------------------------


def greeting_field(rng: random.Random, ctx: Context) -> FuzzInput:
    """A greeting with one field perturbed (signature, version, mechanism, as-server, filler)."""
    st = _pick_type(rng, ctx)
    first, *rest = opening(ctx, st, rng)
    g = bytearray(first)
    what = rng.choice(["sig0", "padding", "sig9", "major", "minor", "mechanism", "as_server", "filler", "mech_nul"])
    must_close = False
    clause = GREETING
    if what == "sig0":
        g[0] = rng.choice([0x00, 0x7F, 0xFE, 0x01])
    elif what == "padding":
        g[rng.randrange(1, 9)] = rng.randrange(1, 256)
    elif what == "sig9":
        g[9] = rng.choice([0x00, 0x7E, 0xFF, 0x80])
    elif what == "major":
        g[10] = rng.choice([0, 1, 2, 4, 0x7F, 0xFF])
    elif what == "minor":
        g[11] = rng.choice([0, 2, 9, 0xFF])
    elif what == "mechanism":
        name = rng.choice([b"null", b"", b"NULLX", b"CURVE", b"PLAIN", b"NULL", b"GSSAPI", b"X" * 20, b"\xff" * 4])
        if name.upper() == ctx.mechanism.encode():
            name = b"NONE"
        g[12:32] = name[:20].ljust(20, b"\x00")
        # RFC 23: a peer whose mechanism differs from the one it received MUST close.
        must_close, clause = True, "23/ZMTP#version-negotiation"
    elif what == "mech_nul":
        g[12:32] = (ctx.mechanism.encode() + b"\x00" + b"X").ljust(20, b"\x00")
    elif what == "as_server":
        g[32] = rng.choice([2, 0x80, 0xFF])
    else:
        g[33 + rng.randrange(31)] = rng.randrange(1, 256)
    steps = _raw(bytes(g), *rest) if rng.random() < 0.7 else _raw(bytes(g))
    return FuzzInput(f"greeting.{what}", st, steps, clause, must_close, note=f"greeting field {what} perturbed")


def greeting_split(rng: random.Random, ctx: Context) -> FuzzInput:
    """A good opening written in many small pieces (some implementations assume whole reads)."""
    st = _pick_type(rng, ctx)
    data = b"".join(opening(ctx, st, rng))
    pieces = rng.choice([2, 3, 10, len(data)])
    return FuzzInput("greeting.split", st, _splits(rng, data, pieces), GREETING, note=f"opening in {pieces} reads")


def greeting_short(rng: random.Random, ctx: Context) -> FuzzInput:
    """A handshake cut short: the opening up to an arbitrary octet, then the connection closes."""
    st = _pick_type(rng, ctx)
    data = b"".join(opening(ctx, st, rng))
    cut = rng.choice([1, 10, 11, 12, 32, 63, 64, 65, 66, rng.randrange(1, len(data))])
    return FuzzInput("handshake.cut", st, _raw(data[:cut]), GREETING, note=f"opening cut at {cut}")


def greeting_legacy(rng: random.Random, ctx: Context) -> FuzzInput:
    """Greetings of ZMTP 1.0/2.0 peers (and impostors); under PLAIN or CURVE the RFC requires a close."""
    st = _pick_type(rng, ctx)
    forms = [
        b"\x01\x00",  # ZMTP 1.0: a short identity frame
        b"\xff" + bytes(8) + b"\x7f\x01\x03\x00\x00",  # ZMTP 2.0 greeting, socket type 3
        b"\xff" + bytes(8) + b"\x7f\x00",  # revision 0 (JeroMQ once stalled on this)
        b"\x05\x00" + b"abcd",
    ]
    data = rng.choice(forms) + rng.randbytes(rng.choice([0, 4, 40]))
    must_close = ctx.mechanism != "NULL"
    return FuzzInput("greeting.legacy", st, _raw(data), "37/ZMTP#backwards-interoperability", must_close)


def _null_ready_variants(rng: random.Random, st: str) -> tuple[str, bytes]:
    partner = _partner(st).encode()
    kind = rng.choice(
        [
            "no_socket_type",
            "bad_socket_type",
            "mismatched_type",
            "empty_name",
            "name_too_long",
            "lowercase",
            "prop_name_empty",
            "prop_value_huge",
            "prop_truncated",
            "duplicate_type",
            "long_prop_name",
            "many_props",
            "empty_body",
        ]
    )
    if kind == "no_socket_type":
        return kind, rawcodec.ready([("Identity", b"x")] if rng.random() < 0.5 else [])
    if kind == "bad_socket_type":
        return kind, rawcodec.ready([("Socket-Type", rng.choice([b"", b"push", b"\x00" * 4, b"X" * 300]))])
    if kind == "mismatched_type":
        return kind, rawcodec.ready([("Socket-Type", rng.choice([b"PUB", b"REQ", b"PULL", b"ROUTER"]))])
    if kind == "empty_name":
        return kind, rawcodec.frame(b"\x00" + rawcodec.properties([("Socket-Type", partner)]), COMMAND)
    if kind == "name_too_long":
        return kind, rawcodec.frame(b"\x20READY", COMMAND)
    if kind == "lowercase":
        return kind, rawcodec.frame(b"\x05ready" + rawcodec.properties([("Socket-Type", partner)]), COMMAND)
    if kind == "prop_name_empty":
        return kind, rawcodec.command(
            "READY", b"\x00\x00\x00\x00\x01X" + rawcodec.properties([("Socket-Type", partner)])
        )
    if kind == "prop_value_huge":
        size = rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x10000, 300])
        return kind, rawcodec.command("READY", b"\x0bSocket-Type" + struct.pack("!I", size) + partner)
    if kind == "prop_truncated":
        props = rawcodec.properties([("Socket-Type", partner)])
        return kind, rawcodec.command("READY", props[: rng.randrange(1, len(props))])
    if kind == "duplicate_type":
        return kind, rawcodec.ready([("Socket-Type", partner), ("Socket-Type", b"PUB")])
    if kind == "long_prop_name":
        return kind, rawcodec.ready([("Socket-Type", partner), ("X" * 255, b"v")])
    if kind == "many_props":
        return kind, rawcodec.ready(
            [("Socket-Type", partner)] + [(f"X-{i}", b"") for i in range(rng.choice([50, 500]))]
        )
    return kind, rawcodec.frame(b"", COMMAND)


def handshake_command(rng: random.Random, ctx: Context) -> FuzzInput:
    """The mechanism's handshake commands with malformed names, lengths and properties."""
    st = _pick_type(rng, ctx)
    first, *rest = opening(ctx, st, rng)
    if ctx.mechanism == "NULL":
        kind, cmd = _null_ready_variants(rng, st)
        return FuzzInput(f"handshake.ready.{kind}", st, _raw(first, cmd), SOCKET_TYPE if "type" in kind else NULL_MECH)
    if ctx.mechanism == "PLAIN":
        u, p = PLAIN_USER.encode(), PLAIN_PASSWORD.encode()
        kind = rng.choice(["user_len", "pass_len", "empty", "no_password", "long", "initiate_first", "bad_initiate"])
        if kind == "user_len":
            body = bytes((200,)) + u + bytes((len(p),)) + p
        elif kind == "pass_len":
            body = bytes((len(u),)) + u + bytes((255,)) + p
        elif kind == "empty":
            body = b""
        elif kind == "no_password":
            body = bytes((len(u),)) + u
        elif kind == "long":
            body = b"\xff" + b"u" * 255 + b"\xff" + b"p" * 255
        else:
            body = bytes((len(u),)) + u + bytes((len(p),)) + p
        hello = rawcodec.command("HELLO", body)
        if kind == "initiate_first":
            return FuzzInput("handshake.plain.initiate_first", st, _raw(first, rest[1], hello), SECURITY)
        if kind == "bad_initiate":
            bad_kind, ready = _null_ready_variants(rng, st)
            head = 9 if ready[0] & LONG else 2
            body = ready[head:]
            if body.startswith(b"\x05READY"):
                body = b"\x08INITIATE" + body[6:]
            initiate = rawcodec.frame(body, COMMAND)
            return FuzzInput(f"handshake.plain.initiate.{bad_kind}", st, _raw(first, hello, initiate), SECURITY)
        return FuzzInput(f"handshake.plain.hello.{kind}", st, _raw(first, hello, *rest[1:]), SECURITY)
    kind = rng.choice(["short", "long", "version", "bad_box", "zero_key", "nonce_max", "initiate_first", "wrong_key"])
    if kind == "short":
        body = curve_hello(rng)[: rng.choice([0, 1, 80, 193])]
    elif kind == "long":
        body = curve_hello(rng) + rng.randbytes(rng.choice([1, 64]))
    elif kind == "version":
        body = curve_hello(rng, version=rng.choice([b"\x00\x00", b"\x02\x00", b"\x01\x01", b"\xff\xff"]))
    elif kind == "bad_box":
        b = bytearray(curve_hello(rng))
        b[rng.randrange(120, len(b))] ^= 1 << rng.randrange(8)
        body = bytes(b)
    elif kind == "zero_key":
        b = bytearray(curve_hello(rng))
        b[74:106] = bytes(32)
        body = bytes(b)
    elif kind == "nonce_max":
        body = curve_hello(rng, nonce=2**64 - 1)
    elif kind == "wrong_key":
        body = curve_hello(rng, key=bytes(PrivateKey(rng.randbytes(32)).public_key))
    else:
        initiate = rawcodec.command("INITIATE", rng.randbytes(rng.choice([0, 40, 113, 257])))
        return FuzzInput("handshake.curve.initiate_first", st, _raw(first, initiate), SECURITY)
    return FuzzInput(f"handshake.curve.hello.{kind}", st, _raw(first, rawcodec.command("HELLO", body)), SECURITY)


def handshake_order(rng: random.Random, ctx: Context) -> FuzzInput:
    """Commands and messages where the handshake does not allow them."""
    st = _pick_type(rng, ctx)
    first, *rest = opening(ctx, st, rng)
    early = rng.choice(
        [
            ("message", rawcodec.message([b"early"])),
            ("ping", rawcodec.command("PING", b"\x00\x0a")),
            ("error", rawcodec.command("ERROR", b"\x05early")),
            ("subscribe", rawcodec.command("SUBSCRIBE", b"")),
            ("welcome", rawcodec.command("WELCOME", rng.randbytes(rng.choice([0, 160])))),
            ("ready_twice", rest[0] if rest else rawcodec.ready([])),
        ]
    )
    if early[0] == "ready_twice":
        steps = _raw(first, *rest, *rest)
    elif rng.random() < 0.5:
        steps = _raw(first, early[1], *rest)
    else:
        steps = _raw(first, *rest, early[1])
    return FuzzInput(f"handshake.order.{early[0]}", st, steps, NULL_MECH)


def handshake_size(rng: random.Random, ctx: Context) -> FuzzInput:
    """A huge size in the first command frame's header (nothing of the body follows)."""
    st = _pick_type(rng, ctx)
    first, *_ = opening(ctx, st, rng)
    size = rng.choice(HUGE_SIZES)
    head = bytes((COMMAND | LONG,)) + struct.pack("!Q", size) + b"\x05READY"
    return FuzzInput("handshake.huge_size", st, _raw(first, head), FRAMING, note=f"command size {size}")


# -- after a good handshake ------------------------------------------------------------------


def _after(st: str, *pieces: bytes, family: str, clause: str = FRAMING, note: str = "") -> FuzzInput:
    return FuzzInput(family, st, [("handshake", None), *_raw(*pieces)], clause, note=note)


def frame_flags(rng: random.Random, ctx: Context) -> FuzzInput:
    """Flags octets with reserved bits, MORE on commands, LONG on short frames."""
    st = _pick_type(rng, ctx)
    body = _body(rng, rng.choice([0, 3, 16]))
    kind = rng.choice(["reserved", "more_command", "long_short", "all"])
    if kind == "reserved":
        flags = rng.choice([0x08, 0x10, 0x20, 0x40, 0x80, 0xF8]) | rng.choice([0, MORE])
        data = bytes((flags, len(body))) + body
    elif kind == "more_command":
        data = bytes((COMMAND | MORE,)) + bytes((5 + len(body),)) + b"\x04PING" + body
    elif kind == "long_short":
        data = bytes((LONG,)) + struct.pack("!Q", len(body)) + body
    else:
        data = bytes((0xFF,)) + struct.pack("!Q", len(body)) + body
    return _after(st, data, rawcodec.message([b"after"]), family=f"frame.flags.{kind}")


def frame_size(rng: random.Random, ctx: Context) -> FuzzInput:
    """Declared sizes that lie: huge, beyond what follows, or a short frame whose size octet is 0xff."""
    st = _pick_type(rng, ctx)
    kind = rng.choice(["huge", "huge", "beyond", "short_ff"])
    if kind == "huge":
        size = rng.choice(HUGE_SIZES)
        flags = rng.choice([LONG, LONG | MORE, LONG | COMMAND])
        data = bytes((flags,)) + struct.pack("!Q", size) + b"abc"
        return _after(st, data, family="frame.size.huge", note=f"declared {size}")
    if kind == "beyond":
        size = rng.choice([300, 4096, 65536, 1 << 20])
        data = bytes((LONG,)) + struct.pack("!Q", size) + rng.randbytes(rng.randrange(0, 64))
        return _after(st, data, family="frame.size.beyond", note=f"declared {size}")
    return _after(st, b"\x00\xff" + rng.randbytes(rng.randrange(0, 255)), family="frame.size.short")


def frame_split(rng: random.Random, ctx: Context) -> FuzzInput:
    """Good messages written across many reads, splitting headers and bodies."""
    st = _pick_type(rng, ctx)
    frames = [_body(rng) for _ in range(rng.choice([1, 2, 3]))]
    data = rawcodec.message(frames) * rng.choice([1, 2])
    steps: list[Step] = [("handshake", None), *_splits(rng, data, rng.choice([2, 3, 8]))]
    return FuzzInput("frame.split", st, steps, FRAMING)


def message_shape(rng: random.Random, ctx: Context) -> FuzzInput:
    """Multipart messages cut before their last frame, many empty frames, a lone MORE."""
    st = _pick_type(rng, ctx)
    kind = rng.choice(["unfinished", "empties", "many", "lone_more"])
    if kind == "unfinished":
        data = rawcodec.frame(b"part", MORE) * rng.choice([1, 3])
    elif kind == "empties":
        data = rawcodec.message([b""] * rng.choice([1, 2, 50]))
    elif kind == "many":
        data = rawcodec.message([b"f"] * rng.choice([100, 1000]))
    else:
        data = bytes((MORE, 0))
    return _after(st, data, family=f"message.{kind}", clause="37/ZMTP#messages")


def command_malformed(rng: random.Random, ctx: Context) -> FuzzInput:
    """Commands after the handshake: malformed names, unknown names, the handshake again, ERROR."""
    st = _pick_type(rng, ctx)
    kind = rng.choice(["empty", "name_len", "unknown", "ready_again", "error", "hello", "nul_name"])
    if kind == "empty":
        data = rawcodec.frame(b"", COMMAND)
    elif kind == "name_len":
        data = rawcodec.frame(bytes((rng.choice([10, 255]),)) + b"PING", COMMAND)
    elif kind == "unknown":
        data = rawcodec.command(rng.choice(["FOO", "X" * 255, "PINGX", "ping"]), _body(rng, 4))
    elif kind == "ready_again":
        data = rawcodec.ready(_metadata(st))
    elif kind == "error":
        data = rawcodec.command("ERROR", rng.choice([b"", b"\x05dying", b"\xff" + b"x" * 3]))
    elif kind == "hello":
        data = rawcodec.command("HELLO", rng.randbytes(rng.choice([0, 200])))
    else:
        data = rawcodec.frame(b"\x04\x00\x00\x00\x00", COMMAND)
    after = rawcodec.message([b"after-command"]) if rng.random() < 0.5 else b""
    clause = ERRORS if kind == "error" else FRAMING
    return _after(st, data, after, family=f"command.{kind}", clause=clause)


def traffic_after_error(rng: random.Random, ctx: Context) -> FuzzInput:
    """ERROR, then messages and commands as if nothing happened."""
    st = _pick_type(rng, ctx)
    reason = rng.randbytes(rng.choice([0, 6, 255]))
    err = rawcodec.command("ERROR", bytes((len(reason),)) + reason)
    tail = rawcodec.message([b"after-error-" + rng.randbytes(4)]) + rawcodec.command("PING", b"\x00\x01")
    return _after(st, err, tail, family="traffic.after_error", clause=ERRORS)


def replayed_handshake(rng: random.Random, ctx: Context) -> FuzzInput:
    """The whole opening again on a connection that already completed it."""
    st = _pick_type(rng, ctx)
    again = b"".join(opening(ctx, st, rng))
    after = rawcodec.message([b"after-replay-" + rng.randbytes(4)])
    return _after(st, again, after, family="handshake.replayed", clause=GREETING)


def heartbeat(rng: random.Random, ctx: Context) -> FuzzInput:
    """PING with every TTL and context length (RFC 37 caps the context at 16 octets), and stray PONGs."""
    st = _pick_type(rng, ctx)
    ttl = rng.choice([0, 1, 10, 0x7FFF, 0xFFFF])
    ctx_len = rng.choice([0, 1, 16, 17, 100, 240])
    kind = rng.choice(["ping", "ping", "short", "pong"])
    if kind == "ping":
        data = rawcodec.command("PING", struct.pack("!H", ttl) + rng.randbytes(ctx_len))
    elif kind == "short":
        data = rawcodec.command("PING", rng.choice([b"", b"\x01"]))
    else:
        data = rawcodec.command("PONG", rng.randbytes(ctx_len))
    return _after(st, data * rng.choice([1, 20]), family=f"heartbeat.{kind}", clause=HEARTBEAT, note=f"ttl {ttl}")


def subscription(rng: random.Random, ctx: Context) -> FuzzInput:
    """SUBSCRIBE and CANCEL to a PUB at the short/long frame boundary, in both the 3.1 and 3.0 forms."""
    topic_len = rng.choice([0, 1, 244, 245, 246, 253, 254, 255, 256, 1000])
    topic = rng.randbytes(topic_len)
    kind = rng.choice(["command", "legacy", "cancel", "bad_legacy"])
    if kind == "command":
        data = rawcodec.command("SUBSCRIBE", topic)
    elif kind == "legacy":
        data = rawcodec.message([b"\x01" + topic])
    elif kind == "cancel":
        data = rawcodec.command("CANCEL", topic)
    else:
        data = rawcodec.message([rng.choice([b"", b"\x02", b"\xff"]) + topic])
    return _after("PUB", data, family=f"subscription.{kind}", clause=PUBSUB, note=f"topic {topic_len} octets")


def server_answer(rng: random.Random, ctx: Context) -> FuzzInput:
    """Against a connecting PLAIN or CURVE client, the raw peer as a broken server: a WELCOME or READY
    cut, extended, flipped, misnamed, empty, doubled, huge, replaced by ERROR or by the other command;
    READY metadata without or with a wrong Socket-Type; under CURVE boxes under a wrong key, an
    all-zero server transient key, a random cookie, READY nonces of 0 and 2^64-1. Sometimes traffic
    follows, as if the handshake had gone well."""
    stage = rng.choice(["welcome", "ready"])
    curve_only = ("wrong_key", "zero_transient", "bad_cookie", "nonce_zero", "nonce_max")
    faults = [f for f in FAULTS if ctx.mechanism == "CURVE" or f not in curve_only]
    if stage == "welcome":
        faults = [f for f in faults if f not in ("no_socket_type", "bad_socket_type", "props_truncated")]
        faults = [f for f in faults if f not in ("nonce_zero", "nonce_max")]
        if ctx.mechanism == "PLAIN":  # PLAIN's WELCOME has no body to cut or empty
            faults = [f for f in faults if f not in ("truncated", "empty")]
    else:
        faults = [f for f in faults if f not in ("zero_transient", "bad_cookie")]
    fault = rng.choice(faults)
    # The variant seeds what is random in the broken answer (cut point, flipped bit, wrong key), so
    # that the input's record says all of it.
    steps: list[Step] = [("serve", {"stage": stage, "fault": fault, "variant": rng.randrange(1 << 30)})]
    after = rng.choice(["nothing", "message", "ready", "error"])
    if after == "message":
        steps.append(("raw", rawcodec.message([b"after-" + fault.encode()])))
    elif after == "ready":
        steps.append(("raw", rawcodec.ready(_metadata("PULL"))))
    elif after == "error":
        steps.append(("raw", rawcodec.command("ERROR", b"\x04late")))
    clause = "26/CURVEZMQ" if ctx.mechanism == "CURVE" else "24/ZMTP-PLAIN"
    return FuzzInput(f"server.{stage}.{fault}", "PULL", steps, clause, note=f"then {after}")


def garbage(rng: random.Random, ctx: Context) -> FuzzInput:
    """Random octets after a good handshake."""
    st = _pick_type(rng, ctx)
    return _after(st, rng.randbytes(rng.choice([1, 9, 64, 300])), family="traffic.garbage")


def curve_boxes(rng: random.Random, ctx: Context) -> FuzzInput:
    """MESSAGE boxes with bad nonces, lengths, keys and flags, and plaintext where boxes are due."""
    st = _pick_type(rng, ctx)
    kind = rng.choice(
        [
            "replay",
            "nonce_zero",
            "nonce_back",
            "truncated",
            "flipped",
            "wrong_key",
            "flags",
            "plaintext",
            "name",
            "long",
        ]
    )
    steps: list[Step] = [("handshake", None), ("curve", {"kind": "good", "frames": [b"first"]})]
    if kind == "plaintext":
        steps.append(("raw", rawcodec.message([b"plaintext"])))
    else:
        steps.append(("curve", {"kind": kind, "frames": [b"hostile-" + rng.randbytes(rng.choice([0, 4, 40]))]}))
    steps.append(("curve", {"kind": "good", "frames": [b"after"]}))
    return FuzzInput(f"curve.message.{kind}", st, steps, "26/CURVEZMQ")


Generator = Callable[[random.Random, Context], FuzzInput]
# (generator, mechanisms it applies to, sides of the peer it applies to, weight)
GENERATORS: list[tuple[Generator, tuple[str, ...], tuple[str, ...], int]] = [
    (greeting_field, ("NULL", "PLAIN", "CURVE"), ("server", "client"), 4),
    (greeting_split, ("NULL", "PLAIN", "CURVE"), ("server", "client"), 1),
    (greeting_short, ("NULL", "PLAIN", "CURVE"), ("server", "client"), 1),
    (greeting_legacy, ("NULL", "PLAIN", "CURVE"), ("server", "client"), 1),
    (handshake_command, ("NULL",), ("server", "client"), 4),
    # PLAIN's HELLO/INITIATE and CURVE's HELLO are the client's: against a client, server_answer.
    (handshake_command, ("PLAIN", "CURVE"), ("server",), 4),
    (server_answer, ("PLAIN", "CURVE"), ("client",), 6),
    (handshake_order, ("NULL", "PLAIN", "CURVE"), ("server", "client"), 2),
    (handshake_size, ("NULL", "PLAIN", "CURVE"), ("server", "client"), 1),
    (frame_flags, ("NULL", "PLAIN"), ("server", "client"), 2),
    (frame_size, ("NULL", "PLAIN"), ("server", "client"), 2),
    (frame_split, ("NULL", "PLAIN"), ("server", "client"), 1),
    (message_shape, ("NULL", "PLAIN"), ("server", "client"), 1),
    (command_malformed, ("NULL", "PLAIN", "CURVE"), ("server", "client"), 2),
    (traffic_after_error, ("NULL", "PLAIN", "CURVE"), ("server", "client"), 1),
    (replayed_handshake, ("NULL", "PLAIN", "CURVE"), ("server", "client"), 1),
    (heartbeat, ("NULL", "PLAIN"), ("server", "client"), 2),
    (subscription, ("NULL", "PLAIN"), ("server",), 1),
    (garbage, ("NULL", "PLAIN", "CURVE"), ("server", "client"), 1),
    (curve_boxes, ("CURVE",), ("server", "client"), 4),
]
