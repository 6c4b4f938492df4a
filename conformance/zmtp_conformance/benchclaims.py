"""Published performance claims held next to the ratios a bench run measured on this machine.

The claims are data (conformance/bench-claims.yaml): each is a ratio to
libzmq that an implementation's own documents state (or that follows from two
figures they print side by side), with the runtime backend and the mode it
was measured in. `table` puts our ratio for the same row next to it: the
implementation paired with itself against the run's reference paired with
itself, the way the documents compare them. A claim measured under another
runtime backend, or in a mode our agent's loop does not use, gets no figure
of ours, and says why.

These are not feature claims: conformance/claims.yaml (report/claims.py) is
judged by matrix cells, these by bench rows, so they are kept apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bench import SUBSCRIBERS, load_rows, ratios, reference_of

TABLE = Path(__file__).resolve().parents[1] / "bench-claims.yaml"
KINDS = ("latency", "throughput")
PATTERNS = ("PUSH/PULL", f"PUB/SUB x{SUBSCRIBERS}", "REQ/REP", "DEALER/ROUTER")
CLAIM_KEYS = {"source", "says", "row", "runtime", "figures", "at_least", "unmeasured"}


class BenchClaimsError(Exception):
    """bench-claims.yaml cannot be used; the message names the file, the line and the problem."""


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


def _span(value: Any) -> tuple[float, float]:
    if isinstance(value, list) and len(value) == 2:
        return float(value[0]), float(value[1])
    return float(value), float(value)


def _ratio(kind: str, figures: dict[str, Any]) -> tuple[float, float]:
    """The claimed ratio to libzmq, higher is better: libzmq's time over ours for latency, our rate
    over libzmq's for throughput."""
    lo, hi = _span(figures["it"])
    ref_lo, ref_hi = _span(figures["libzmq"])
    if kind == "latency":
        return round(ref_lo / hi, 2), round(ref_hi / lo, 2)
    return round(lo / ref_hi, 2), round(hi / ref_lo, 2)


def load(path: Path = TABLE) -> tuple[PublishedClaim, ...]:
    """The claims of bench-claims.yaml, checked: an unknown key, kind or pattern, or figures that
    do not give both sides, is an error naming the file and line."""
    from .scenario import read_with_lines

    doc, lines = read_with_lines(path, BenchClaimsError)
    out = []
    for family, entry in (doc.get("implementations") or {}).items():
        documents = entry.get("documents") or {}
        for i, c in enumerate(entry.get("claims") or []):
            where = f"{path}:{lines.get(('implementations', family, 'claims', i), 0)}"
            unknown = set(c) - CLAIM_KEYS
            if unknown:
                raise BenchClaimsError(
                    f"{where}: unknown key {', '.join(sorted(unknown))} (known: {', '.join(sorted(CLAIM_KEYS))})"
                )
            doc_key, section = [*(c.get("source") or []), None, None][:2]
            if doc_key not in documents:
                raise BenchClaimsError(
                    f"{where}: source names document {doc_key!r}, not one of {', '.join(documents) or 'none'} (documents:)"
                )
            row = c.get("row") or {}
            if (
                row.get("kind") not in KINDS
                or row.get("pattern") not in PATTERNS
                or not isinstance(row.get("size"), int)
            ):
                raise BenchClaimsError(
                    f"{where}: row needs kind ({', '.join(KINDS)}), pattern ({', '.join(PATTERNS)}) and size in octets, got {row}"
                )
            figures, at_least = c.get("figures"), c.get("at_least")
            if (figures is None) == (at_least is None):
                raise BenchClaimsError(f"{where}: give figures {{it, libzmq}} or at_least, exactly one of them")
            if figures is not None:
                if set(figures) != {"it", "libzmq"}:
                    raise BenchClaimsError(f"{where}: figures needs `it` and `libzmq`, got {', '.join(figures)}")
                low, high = _ratio(row["kind"], figures)
            else:
                low, high = float(at_least), None
            if not c.get("says"):
                raise BenchClaimsError(f"{where}: a claim needs `says`, the claim in our words")
            out.append(
                PublishedClaim(
                    family=family, source=f"{documents[doc_key]}, {section}", says=c["says"], kind=row["kind"],
                    pattern=row["pattern"], size=row["size"], runtime=str(c.get("runtime") or ""), low=low,
                    high=high, transport=row.get("transport", "tcp"), mechanism=row.get("mechanism", "NULL"),
                    unmeasured=str(c.get("unmeasured") or ""),
                )
            )  # fmt: skip
    return tuple(out)


def _claimed(c: PublishedClaim) -> str:
    if c.low is None:
        return "?"
    if c.high is None:
        return f"> {c.low:.2f}x"
    return f"{c.low:.2f}x" if c.low == c.high else f"{c.low:.2f}-{c.high:.2f}x"


def table(doc: dict[str, Any], claims: tuple[PublishedClaim, ...] | None = None) -> list[dict[str, Any]]:
    """One entry per claim (bench-claims.yaml unless given): what was claimed, what this run measured
    for the same row, and how."""
    if claims is None:
        claims = load()
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
