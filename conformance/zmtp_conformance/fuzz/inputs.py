"""One fuzz input: a short script of raw-peer steps, and where it came from.

Steps are what the raw peer does on one connection, in order:

- ("handshake", None): greet and complete the handshake with the campaign's mechanism
  (rawcodec's own client or NULL server side), as the partner of the agent's socket type;
- ("raw", bytes): write these octets (one write; a split is several raw steps with waits between);
- ("wait", seconds);
- ("serve", {"stage": "welcome"|"ready", "fault": ...}): against a PLAIN or CURVE client, the raw
  peer's server handshake up to its answer at that stage, which it sends broken as the fault says
  FAULTS); made at run time, since CURVE answers are boxes for the client's keys;
- ("curve", {"kind": ..., "frames": [...]}): after a CURVE handshake, a MESSAGE box made with the
  session's keys at run time (kind says what is wrong with it, or "good"), since its bytes cannot be
  fixed in advance.

The family names the generator or mutation that made the input: a finding is distinct by its oracle
and its family.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# The agent's socket for an input, and what the raw peer plays against it.
PARTNER = {"PULL": "PUSH", "ROUTER": "DEALER", "PUB": "SUB"}

Step = tuple[str, Any]

# What a broken server may answer a client's HELLO (stage welcome) or INITIATE (stage ready) with.
FAULTS = (
    "truncated",  # the command's body cut short
    "extended",  # octets after the body
    "flipped",  # one bit of the body flipped (under CURVE: a box that does not open)
    "name",  # the command's name misspelt
    "empty",  # the command with no body
    "error",  # ERROR instead of the answer
    "other",  # the other stage's command instead (READY for WELCOME, WELCOME for READY)
    "twice",  # the answer twice
    "huge",  # a long command frame declaring 2^63-1 octets, then the answer's first octets
    "no_socket_type",  # metadata without Socket-Type (stage ready; under CURVE inside a good box)
    "bad_socket_type",  # metadata naming a socket type the client's does not accept
    "props_truncated",  # metadata whose last property is cut short
    "wrong_key",  # CURVE: the box made with a key the client does not know
    "zero_transient",  # CURVE: WELCOME naming an all-zero server transient key
    "bad_cookie",  # CURVE: WELCOME's cookie replaced by random octets
    "nonce_zero",  # CURVE: READY with a short nonce of 0
    "nonce_max",  # CURVE: READY with a short nonce of 2^64-1, leaving no nonce for messages
)


@dataclass
class FuzzInput:
    family: str
    socket_type: str  # the agent's socket: PULL, ROUTER or PUB (see PARTNER)
    steps: list[Step]
    clause: str = "23/ZMTP#framing"  # the RFC section the input attacks
    must_close: bool = False  # the RFC says the peer MUST close on this input
    note: str = ""  # what the generator did, for people

    @property
    def partner(self) -> str:
        return PARTNER[self.socket_type]

    @property
    def handshakes(self) -> bool:
        return any(kind == "handshake" for kind, _ in self.steps)

    def raw_bytes(self) -> bytes:
        return b"".join(arg for kind, arg in self.steps if kind == "raw")

    def size(self) -> int:
        """What the minimiser makes smaller: steps first, then octets."""
        return len(self.steps) * 1000 + len(self.raw_bytes())

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "socket_type": self.socket_type,
            "clause": self.clause,
            "must_close": self.must_close,
            "note": self.note,
            "steps": [[kind, _jsonable(kind, arg)] for kind, arg in self.steps],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FuzzInput:
        steps: list[Step] = []
        for kind, arg in data["steps"]:
            if kind == "raw":
                arg = bytes.fromhex(arg)
            elif kind == "curve":
                arg = {"kind": arg["kind"], "frames": [bytes.fromhex(f) for f in arg["frames"]]}
            steps.append((kind, arg))
        return cls(
            family=data["family"],
            socket_type=data["socket_type"],
            steps=steps,
            clause=data.get("clause", "23/ZMTP#framing"),
            must_close=bool(data.get("must_close")),
            note=data.get("note", ""),
        )

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:10]

    def summary(self) -> str:
        parts = []
        for kind, arg in self.steps:
            if kind == "raw":
                parts.append(f"raw {len(arg)} octets {arg[:24].hex(' ')}{' ...' if len(arg) > 24 else ''}")
            elif kind == "wait":
                parts.append(f"wait {arg:g}s")
            elif kind == "curve":
                parts.append(f"curve box {arg['kind']}")
            elif kind == "serve":
                parts.append(f"serve with a broken {arg['stage']}: {arg['fault']}")
            else:
                parts.append(f"handshake as {self.partner}")
        return "; ".join(parts)


def _jsonable(kind: str, arg: Any) -> Any:
    if kind == "raw":
        return arg.hex()
    if kind == "curve":
        return {"kind": arg["kind"], "frames": [f.hex() for f in arg["frames"]]}
    return arg


@dataclass
class Context:
    """What a generator needs to know about the campaign."""

    mechanism: str = "NULL"
    side: str = "server"  # the side the peer under test plays
    seeds: list[bytes] = field(default_factory=list)  # client-to-server streams of real exchanges
