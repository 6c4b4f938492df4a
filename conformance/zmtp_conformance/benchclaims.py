"""Published performance claims held next to the ratios a bench run measured on this machine.

Each claim is a ratio to libzmq that an implementation's own documents state
(or that follows from two figures they print side by side), with the runtime
backend and the mode it was measured in. `table` puts our ratio for the same
row next to it: the implementation paired with itself against the run's
reference paired with itself, the way the documents compare them. A claim
measured under another runtime backend, or in a mode our agent's loop does
not use, gets no figure of ours, and says why.

These are not feature claims: conformance/claims.yaml (report/claims.py) is
judged by matrix cells, these by bench rows, so they are kept apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .bench import SUBSCRIBERS, load_rows, ratios, reference_of

MONOCOQUE_BENCH = "monocoque-rs 0.4.2 BENCHMARKS.md"
MONOCOQUE_README = "monocoque-rs 0.4.2 README.md"


@dataclass(frozen=True)
class PublishedClaim:
    family: str  # the peer family whose same-peer row answers the claim
    source: str  # document and section
    says: str  # the claim in our words, with the figures it rests on
    kind: str
    pattern: str
    size: int
    runtime: str  # the backend the figures were measured with ("" when the document does not say)
    low: float | None  # the claimed ratio to libzmq, higher is better (a range, or low == high)
    high: float | None
    transport: str = "tcp"
    mechanism: str = "NULL"
    unmeasured: str = ""  # why no row of ours answers it, when our loop is not what was measured


def _r(ours: float, theirs: float) -> float:
    return round(ours / theirs, 2)


CLAIMS = (
    PublishedClaim(
        family="monocoque",
        source=f"{MONOCOQUE_BENCH}, Latency (cargo bench --bench latency)",
        says="REQ/REP steady-state round trip 64 B: 9.8 us on tokio vs 33.8 us for rust-zmq (libzmq); "
        "'~2.5-4x lower round-trip latency than libzmq's ~34 us'",
        kind="latency",
        pattern="REQ/REP",
        size=64,
        runtime="tokio",
        low=_r(33.8, 9.8),
        high=_r(33.8, 9.8),
    ),
    PublishedClaim(
        family="monocoque",
        source=f"{MONOCOQUE_BENCH}, Latency (cargo bench --bench latency)",
        says="REQ/REP steady-state round trip 64 B: 8.4 us on compio vs 33.8 us for rust-zmq (libzmq)",
        kind="latency",
        pattern="REQ/REP",
        size=64,
        runtime="compio",
        low=_r(33.8, 8.4),
        high=_r(33.8, 8.4),
    ),
    PublishedClaim(
        family="monocoque",
        source=f"{MONOCOQUE_BENCH}, Latency (cargo bench --bench latency)",
        says="REQ/REP steady-state round trip 1 KiB: 9.7 us on tokio vs 34.4 us for rust-zmq (libzmq)",
        kind="latency",
        pattern="REQ/REP",
        size=1024,
        runtime="tokio",
        low=_r(34.4, 9.7),
        high=_r(34.4, 9.7),
    ),
    PublishedClaim(
        family="monocoque",
        source=f"{MONOCOQUE_README}, Performance (zmq-arena run of 2026-08-21)",
        says="REQ/REP p50 64 B over TCP: 14.03 us on tokio vs 37.70 us for libzmq 4.3.5",
        kind="latency",
        pattern="REQ/REP",
        size=64,
        runtime="tokio",
        low=_r(37.70, 14.03),
        high=_r(37.70, 14.03),
    ),
    PublishedClaim(
        family="monocoque",
        source=f"{MONOCOQUE_BENCH}, Throughput, eager (the default, one kernel write per send)",
        says="PUSH/PULL 64 B: 520 K msg/s on tokio vs 4.67 M for rust-zmq (libzmq)",
        kind="throughput",
        pattern="PUSH/PULL",
        size=64,
        runtime="tokio",
        low=_r(520e3, 4.67e6),
        high=_r(520e3, 4.67e6),
    ),
    PublishedClaim(
        family="monocoque",
        source=f"{MONOCOQUE_BENCH}, Throughput, eager (the default, one kernel write per send)",
        says="PUSH/PULL 1 KiB: 479 K msg/s on tokio vs 1.06 M for rust-zmq (libzmq)",
        kind="throughput",
        pattern="PUSH/PULL",
        size=1024,
        runtime="tokio",
        low=_r(479e3, 1.06e6),
        high=_r(479e3, 1.06e6),
    ),
    PublishedClaim(
        family="monocoque",
        source=f"{MONOCOQUE_BENCH}, Throughput, coalesced (with_write_coalescing(true))",
        says="PUSH/PULL 64 B with write coalescing: 14.1 M (compio) to 18.0 M (tokio) msg/s vs 4.67 M for rust-zmq",
        kind="throughput",
        pattern="PUSH/PULL",
        size=64,
        runtime="",
        low=_r(14.1e6, 4.67e6),
        high=_r(18.0e6, 4.67e6),
        unmeasured="the agent's bench_send sends eagerly (one send per message, coalescing off)",
    ),
    PublishedClaim(
        family="monocoque",
        source=f"{MONOCOQUE_README}, Roadmap (per-subscriber concurrent writes)",
        says="'PUB fan-out throughput now exceeds libzmq' (no figure; BENCHMARKS.md lists N-subscriber fan-out "
        "as not yet benchmarked)",
        kind="throughput",
        pattern=f"PUB/SUB x{SUBSCRIBERS}",
        size=64,
        runtime="",
        low=1.0,
        high=None,
    ),
)


def _claimed(c: PublishedClaim) -> str:
    if c.low is None:
        return "?"
    if c.high is None:
        return f"> {c.low:.2f}x"
    return f"{c.low:.2f}x" if c.low == c.high else f"{c.low:.2f}-{c.high:.2f}x"


def table(doc: dict[str, Any], claims: tuple[PublishedClaim, ...] = CLAIMS) -> list[dict[str, Any]]:
    """One entry per claim: what was claimed, what this run measured for the same row, and how."""
    reference = reference_of(doc)
    meta = doc.get("meta", {})
    rows = load_rows(doc)
    q = ratios(rows, reference)
    by_key = {r.key: r for r in rows}
    families = meta.get("families", {})
    out = []
    for c in claims:
        peers = [p for p in meta.get("peer_versions", {}) if families.get(p, p) == c.family]
        entry: dict[str, Any] = {
            "family": c.family, "source": c.source, "says": c.says, "row": f"{c.pattern} {c.kind} {c.size} B "
            f"{c.transport} {c.mechanism}", "claimed": _claimed(c), "claimed_runtime": c.runtime or "not stated",
            "measured": None, "how": "",
        }  # fmt: skip
        if c.unmeasured:
            entry["how"] = f"not measured: {c.unmeasured}"
        elif not peers:
            entry["how"] = f"not measured: no {c.family} peer in this run"
        else:
            peer = peers[0]
            loop = meta.get("loops", {}).get(peer, "")
            key = f"{c.kind}|{c.pattern}|{peer}|{peer}|{c.transport}|{c.mechanism}|{c.size}"
            ref_key = f"{c.kind}|{c.pattern}|{reference}|{reference}|{c.transport}|{c.mechanism}|{c.size}"
            row, ref = by_key.get(key), by_key.get(ref_key)
            versus = meta.get("reference_is", reference)
            if c.runtime and c.runtime not in loop:
                entry["how"] = f"not measured: claimed on {c.runtime}; this run's agent ran {loop or 'unknown'}"
            elif row is None or ref is None or key not in q:
                why = (row and row.error) or (ref and ref.error) or "the row is not in this run's plan"
                entry["how"] = f"not measured: {why}"
            else:
                entry["measured"] = round(q[key], 2)
                unit = "msgs/s" if c.kind == "throughput" else "us p50"
                entry["how"] = (
                    f"{peer} -> {peer} ({loop}) {row.figure():,.1f} {unit} vs {reference} -> {reference} "
                    f"({versus}) {ref.figure():,.1f} {unit}; medians of {len(row.reps)} repetitions"
                )
        out.append(entry)
    return out


def text(entries: list[dict[str, Any]]) -> list[str]:
    """The table as lines for a terminal."""
    lines = []
    for e in entries:
        ours = f"{e['measured']:.2f}x" if e["measured"] is not None else "-"
        lines.append(
            f"  {e['family']} {e['row']}: claimed {e['claimed']} ({e['claimed_runtime']}), measured {ours}"
            f"\n      claim: {e['says']} [{e['source']}]\n      ours:  {e['how']}"
        )
    return lines
