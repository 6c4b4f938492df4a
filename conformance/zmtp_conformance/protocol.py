"""The agent control protocol: JSON lines on the agent's stdin and stdout.

Each request is one JSON object on one line with an integer "id" and an "op";
each response is one line with the same "id" and "ok". Frames travel as hex
strings. See docs/agent-protocol.md for the whole contract.
"""

from __future__ import annotations

import json
from typing import Any

PROTOCOL_VERSION = 1

OPS = ("hello", "socket", "bind", "connect", "send", "recv", "subscribe", "unsubscribe", "close", "quit")

# Error kinds an agent may answer with.
TIMEOUT = "timeout"  # recv saw nothing within its timeout
UNSUPPORTED = "unsupported"  # the implementation has no such feature (shown as such, not as a failure)
INVALID = "invalid"  # the request itself was malformed
FAILED = "failed"  # the implementation raised an error (message says which)
ERROR_KINDS = (TIMEOUT, UNSUPPORTED, INVALID, FAILED)


def encode_frames(frames: list[bytes]) -> list[str]:
    return [bytes(f).hex() for f in frames]


def decode_frames(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def dump(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def ok(req_id: int, **fields: Any) -> dict[str, Any]:
    return {"id": req_id, "ok": True, **fields}


def error(req_id: int | None, kind: str, message: str) -> dict[str, Any]:
    assert kind in ERROR_KINDS
    return {"id": req_id, "ok": False, "error": {"kind": kind, "message": message}}


class AgentError(Exception):
    """An agent answered ok=false."""

    def __init__(self, kind: str, message: str, peer: str = "") -> None:
        self.kind = kind
        self.message = message
        self.peer = peer
        super().__init__(f"{peer + ': ' if peer else ''}{kind}: {message}")
