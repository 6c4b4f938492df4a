"""Inputs mutated from real exchanges: the golden captures (captures/) are the seed corpus.

A seed is what one real client sent one real server on one connection, start to end (read with the
harness's own pcap reader and TCP reassembly). Replayed whole it is a handshake with stale keys and
cookies, a socket type the target may not accept, messages it may or may not take; mutated, it is the
kind of almost-right input that parsers trust too far.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import yaml

from ..capture import pcap, tcp
from .inputs import Context, FuzzInput, Step

CAPTURES = Path(__file__).resolve().parents[3] / "captures"
INTERESTING = [0x00, 0x01, 0x02, 0x04, 0x7F, 0x80, 0xFE, 0xFF]


def load_seeds(mechanism: str, directory: Path = CAPTURES, side: str = "server") -> list[bytes]:
    """The streams the raw peer's part sent in the golden captures made under `mechanism`, in file
    order: client-to-server when the peer under test is the server, server-to-client when it is the
    client."""
    try:
        manifest = yaml.safe_load((directory / "manifest.yaml").read_text()) or {}
    except OSError:
        return []
    out = []
    for entry in manifest.get("captures") or []:
        if entry.get("mechanism") != mechanism:
            continue
        try:
            header, records = pcap.read(directory / entry["file"])
        except (OSError, pcap.PcapError):
            continue
        for stream in tcp.streams(records, header.linktype):
            data = stream.to_server.data if side == "server" else stream.to_client.data
            if len(data) >= 64:
                out.append(bytes(data))
    return out


def _flip(rng: random.Random, data: bytearray) -> str:
    i = rng.randrange(len(data))
    data[i] ^= 1 << rng.randrange(8)
    return f"bit flip at {i}"


def _interesting(rng: random.Random, data: bytearray) -> str:
    i = rng.randrange(len(data))
    data[i] = rng.choice(INTERESTING)
    return f"octet {i} set to {data[i]:#04x}"


def _size(rng: random.Random, data: bytearray) -> str:
    """Overwrite what may be a frame header after the greeting with a long header of a huge size."""
    i = rng.randrange(64, len(data)) if len(data) > 64 else rng.randrange(len(data))
    head = bytes((rng.choice([0x02, 0x06, 0x03]),)) + struct.pack("!Q", rng.choice([2**63 - 1, 2**32, 2**64 - 1]))
    data[i : i + 9] = head
    return f"long header at {i}"


def _insert(rng: random.Random, data: bytearray) -> str:
    i = rng.randrange(len(data) + 1)
    n = rng.choice([1, 2, 8, 64])
    data[i:i] = rng.randbytes(n)
    return f"{n} octets inserted at {i}"


def _delete(rng: random.Random, data: bytearray) -> str:
    i = rng.randrange(len(data))
    n = rng.choice([1, 2, 8, 64])
    del data[i : i + n]
    return f"{n} octets deleted at {i}"


def _duplicate(rng: random.Random, data: bytearray) -> str:
    i = rng.randrange(len(data))
    n = rng.choice([2, 9, 64, len(data)])
    data[i:i] = data[i : i + n]
    return f"{n} octets at {i} repeated"


def _truncate(rng: random.Random, data: bytearray) -> str:
    if len(data) < 2:
        return "too short to cut"
    n = rng.randrange(1, len(data))
    del data[n:]
    return f"cut at {n}"


MUTATIONS = {
    "flip": _flip,
    "interesting": _interesting,
    "size": _size,
    "insert": _insert,
    "delete": _delete,
    "duplicate": _duplicate,
    "truncate": _truncate,
}


def mutated(rng: random.Random, ctx: Context) -> FuzzInput | None:
    """A seed with one to three mutations, written in one piece or split across reads."""
    if not ctx.seeds:
        return None
    seed = rng.randrange(len(ctx.seeds))
    data = bytearray(ctx.seeds[seed])
    names, notes = [], []
    for _ in range(rng.choice([1, 1, 2, 3])):
        name = rng.choice(sorted(MUTATIONS))
        if not data:
            break
        notes.append(MUTATIONS[name](rng, data))
        names.append(name)
    raw = bytes(data)
    steps: list[Step]
    if rng.random() < 0.3 and len(raw) > 2:
        cut = rng.randrange(1, len(raw))
        steps = [("raw", raw[:cut]), ("wait", 0.005), ("raw", raw[cut:])]
        names.append("split")
    else:
        steps = [("raw", raw)]
    family = "mutate." + "+".join(sorted(set(names)))
    socket_type = "PULL" if ctx.side == "client" else rng.choice(["PULL", "ROUTER"])
    return FuzzInput(family, socket_type, steps, "23/ZMTP#framing", note=f"seed {seed}: " + ", ".join(notes))
