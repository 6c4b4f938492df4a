"""What counts as a failure after one input. Each oracle has one name, used in summaries, findings
and file names:

- crash: the agent process (and with it the implementation) died;
- hang: the agent stopped answering its control channel;
- sanity: a fresh connection with a good handshake no longer gets a message through;
- rss: the agent's resident memory (with its children) grew past the limit over its baseline;
- phantom: the application received a message the wire did not carry (or more copies than it did);
- must-close: the RFC requires the peer to close the connection on this input, and it did not.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .target import Played, Sanity

ORACLES = ("crash", "hang", "sanity", "rss", "phantom", "must-close")


@dataclass(frozen=True)
class Failure:
    oracle: str
    detail: str


def phantom(received: list[list[bytes]], evidence: list[Played], mechanism: str) -> str | None:
    """Why a received message cannot have come from the inputs in `evidence`, or None.

    Under CURVE the only messages the wire carried are those in good boxes, counted. Otherwise every
    non-empty frame of a received message must appear in the octets written, and a message cannot
    arrive more often than its longest frame was written.
    """
    if not received:
        return None
    if mechanism == "CURVE":
        carried = Counter(tuple(m) for p in evidence for m in p.boxed)
        got = Counter(tuple(m) for m in received)
        for msg, n in got.items():
            if n > carried[msg]:
                return f"{_show(list(msg))} received {n} time(s), {carried[msg]} carried in good boxes"
        return None
    wire = b"\x00".join(p.wire for p in evidence)
    got = Counter(tuple(m) for m in received)
    for msg, n in got.items():
        for part in msg:
            if part and part not in wire:
                return f"{_show(list(msg))}: the frame {part[:32].hex(' ')} was never written"
        longest = max(msg, key=len, default=b"")
        if longest and n > wire.count(longest):
            return f"{_show(list(msg))} received {n} times, written {wire.count(longest)}"
    return None


def _show(msg: list[bytes]) -> str:
    return "[" + ", ".join(f.hex(" ")[:48] for f in msg) + "]"


def judge(
    *,
    alive: bool,
    exit_detail: str,
    hung: bool,
    sanity: Sanity,
    received: list[list[bytes]],
    rss: int,
    rss_baseline: int,
    rss_limit: int,
    played: Played | None,
    evidence: list[Played],
    mechanism: str,
) -> list[Failure]:
    """Every oracle's verdict on one input (empty: it passed them all). `received` and `evidence` are
    everything the application received and the wire carried since the agent started."""
    out: list[Failure] = []
    if hung:
        out.append(Failure("hang", sanity.detail))
    elif not alive:
        out.append(Failure("crash", exit_detail))
    elif not sanity.ok:
        out.append(Failure("sanity", sanity.detail))
    if alive and rss_baseline and rss > rss_baseline + rss_limit:
        mib = 1 << 20
        out.append(
            Failure("rss", f"resident memory {rss // mib} MiB, {(rss - rss_baseline) // mib} MiB over its baseline")
        )
    why = phantom(received, evidence, mechanism) if sanity.received else None
    if why:
        out.append(Failure("phantom", why))
    if played is not None and played.stayed_open:
        out.append(Failure("must-close", f"the connection stayed open for {1.5:g}s after the input"))
    return out
