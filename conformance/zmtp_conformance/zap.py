"""Judging the ZAP requests (RFC 27) a server under test sends to its handler.

The handler is the harness's own, inside each agent (docs/agent-protocol.md, ops `zap` and
`zap_requests`); the agent only hands over each request's frames as its handler socket
delivered them. Whether those frames are what RFC 27 asks of the *server* is decided here,
without impl's code: the judge shares nothing with the judged.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from .matchers import describe_matchers, match

VERSION = b"1.0"
# How an agent's handler gets the requests, as the `zap_requests` op says:
ROUTER = "ROUTER"  # frames start with the routing id the handler socket adds, then the server's delimiter
REP = "REP"  # the handler socket took the envelope (routing id and delimiter) off
CALLBACK = "callback"  # the implementation hands over the fields; the agent lists them in the RFC's frame order
HANDLERS = (ROUTER, REP, CALLBACK)
# The fields of a request after its envelope, in order (RFC 27, "Message Format").
FIELDS = ("version", "request id", "domain", "address", "identity", "mechanism")
# Credentials frames per mechanism (RFC 27, "The NULL/PLAIN/CURVE Mechanism"): (count, octets of each or None).
CREDENTIALS = {
    "NULL": (0, None, "27/the-null-mechanism/2"),
    "PLAIN": (2, None, "27/the-plain-mechanism/2"),
    "CURVE": (1, 32, "27/the-curve-mechanism/2"),
}


@dataclass(frozen=True)
class Mismatch:
    """One way a request departs from RFC 27 or from what the scenario expects."""

    request: int  # 1-based, in the order the handler got them
    frame: int | None  # 1-based index into the frames as the agent reported them; None: the request as a whole
    field: str
    expected: str
    seen: str
    rule: str = ""  # the requirement id, for a rule of RFC 27 rather than a value the scenario chose

    def __str__(self) -> str:
        where = f"ZAP request {self.request}" + (f", frame {self.frame}" if self.frame else "")
        why = f" ({self.rule})" if self.rule else ""
        return f"{where} ({self.field}): expected {self.expected}, seen {self.seen}{why}"


def _show(frame: bytes) -> str:
    if not frame:
        return "(empty)"
    if all(32 <= b < 127 for b in frame):
        return repr(frame.decode())
    return f"hex {frame.hex()} ({len(frame)} octets)"


def _string(frame: bytes) -> bool:
    """RFC 27: "All string fields are at most 255 characters and are ASCII only"."""
    return len(frame) <= 255 and all(b < 128 for b in frame)


def canonical_ip(text: str) -> bool:
    """An IPv4 dotted string or the canonical text of an IPv6 address (RFC 5952), nothing else."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    return str(addr) == text


def split_envelope(frames: list[bytes], handler: str) -> tuple[list[bytes], int, list[Mismatch]]:
    """The request's body (version onwards), the number of frames before it, and envelope problems."""
    if handler != ROUTER:
        return frames, 0, []
    if len(frames) < 2 or frames[1] != b"":
        seen = _show(frames[1]) if len(frames) > 1 else "no frame"
        # The routing id is the handler socket's; the frame after it is the server's delimiter.
        return frames[1:], 1, [Mismatch(0, 2, "address delimiter", "an empty frame", seen, "27/message-format/3")]
    return frames[2:], 2, []


def check_request(
    frames: list[bytes], handler: str, spec: dict[str, Any], vars: dict[str, bytes], over_ip: bool
) -> list[Mismatch]:
    """Everything wrong with one request: RFC 27's format always, the scenario's values where given.

    `spec` may name mechanism, domain, address (text), identity and request_id (frame matchers)
    and credentials (a list of frame matchers). `over_ip`: the client came over TCP, so the
    address frame must be its IP address.
    """
    body, skip, out = split_envelope(frames, handler)
    if len(body) < len(FIELDS):
        out.append(
            Mismatch(
                0,
                None,
                "frames",
                f"at least {len(FIELDS)} after the envelope ({', '.join(FIELDS)}, then credentials)",
                f"{len(body)}: {', '.join(_show(f) for f in body) or 'none'}",
                "27/message-format/2",
            )
        )
        return out
    version, request_id, domain, address, identity, mechanism = body[:6]
    credentials = body[6:]

    def at(i: int) -> int:
        return skip + i + 1

    if version != VERSION:
        out.append(Mismatch(0, at(0), "version", "'1.0'", _show(version), "27/message-format/4"))
    if not domain or not _string(domain):
        out.append(Mismatch(0, at(2), "domain", "a non-empty ASCII string", _show(domain), "27/message-format/6"))
    if over_ip and not canonical_ip(address.decode("ascii", "replace")):
        out.append(
            Mismatch(
                0, at(3), "address", "an IPv4 dotted or IPv6 canonical string", _show(address), "27/message-format/18"
            )
        )
    if len(identity) > 255:
        out.append(
            Mismatch(0, at(4), "identity", "at most 255 octets", f"{len(identity)} octets", "27/message-format/19")
        )
    if not mechanism or not _string(mechanism):
        out.append(
            Mismatch(0, at(5), "mechanism", "a non-empty ASCII string", _show(mechanism), "27/message-format/20")
        )
    name = mechanism.decode("ascii", "replace")
    if name in CREDENTIALS:
        count, size, rule = CREDENTIALS[name]
        sizes = [len(c) for c in credentials]
        if len(credentials) != count or (size is not None and any(n != size for n in sizes)):
            want = f"{count} credentials frame(s)" + (f" of {size} octets" if size else "")
            seen = f"{len(credentials)} frame(s)" + (f" of {', '.join(map(str, sizes))} octets" if sizes else "")
            out.append(Mismatch(0, at(6) if credentials else None, "credentials", want, seen, rule))

    if "mechanism" in spec and mechanism != spec["mechanism"].encode():
        out.append(Mismatch(0, at(5), "mechanism", repr(spec["mechanism"]), _show(mechanism)))
    if "domain" in spec and domain != spec["domain"].encode():
        out.append(Mismatch(0, at(2), "domain", repr(spec["domain"]), _show(domain)))
    if "address" in spec and address != spec["address"].encode():
        out.append(Mismatch(0, at(3), "address", repr(spec["address"]), _show(address)))
    for key, frame, i in (("identity", identity, 4), ("request_id", request_id, 1)):
        if key in spec and not match([spec[key]], [frame], vars):
            out.append(Mismatch(0, at(i), key.replace("_", " "), describe_matchers([spec[key]]), _show(frame)))
    if "credentials" in spec and not match(spec["credentials"], credentials, vars):
        out.append(
            Mismatch(
                0,
                at(6) if credentials else None,
                "credentials",
                describe_matchers(spec["credentials"]),
                "[" + ", ".join(_show(c) for c in credentials) + "]",
            )
        )
    return out


def check_requests(
    requests: list[list[bytes]],
    handler: str,
    spec: dict[str, Any],
    vars: dict[str, bytes],
    over_ip: bool,
) -> list[Mismatch]:
    """The requests the handler got since the last look: `spec["count"]` of them (default 1),
    each checked by check_request."""
    if handler not in HANDLERS:
        return [Mismatch(0, None, "handler", f"one of {', '.join(HANDLERS)}", repr(handler))]
    want = spec.get("count", 1)
    out: list[Mismatch] = []
    if len(requests) != want:
        out.append(
            Mismatch(
                0,
                None,
                "requests",
                f"{want} (one per handshake)",
                str(len(requests)),
                "27/message-format/1" if len(requests) > want else "",
            )
        )
    for n, frames in enumerate(requests, 1):
        for m in check_request(frames, handler, spec, vars, over_ip):
            out.append(Mismatch(n, m.frame, m.field, m.expected, m.seen, m.rule))
    return out


def describe(frames: list[bytes], handler: str) -> str:
    """One request for the transcript: its fields by name."""
    body, _, _ = split_envelope(frames, handler)
    names = [*FIELDS, *(f"credential {i}" for i in range(1, len(body) - len(FIELDS) + 1))]
    return ", ".join(f"{name}={_show(frame)}" for name, frame in zip(names, body, strict=False))
