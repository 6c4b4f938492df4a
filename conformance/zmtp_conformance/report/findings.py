"""Findings: the distinct ways each implementation fails, for the people who maintain it.

Read from matrix.json (so a merged CI run works as well as a local one). A
failed or deviating cell counts against the implementation(s) that played in
it other than the reference (impl) and the raw peer; cells that fail the same
way (same scenario, same side, same step) are one finding, with every peer it
was seen against, whether it also breaks interop with libzmq, the bytes the
harness saw, and a command that reproduces it.
"""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..vocabulary import Outcome

REFERENCE = "impl"
RAW = "raw"
# A failed cell whose capture shows this implementation connect and then send nothing, not even
# the greeting (wire.py's `silent`), failed for that one reason whatever the scenario: one finding.
STALL = "stalled-before-greeting"
STALL_TITLE = "connected, then sent nothing, not even its greeting, though the server's signature arrived"
STALL_CLAUSE = "37/ZMTP#version-negotiation"


@dataclass
class Finding:
    implementation: str  # family
    scenario: str
    title: str
    rfc: list[str]
    level: str
    side: str  # the side the implementation played
    step: str
    action: str
    outcome: str  # failed, or deviates (then `deviation` names the reviewed entry)
    reason: str
    expected: str | None
    seen: str | None
    wire: str = ""  # the first validator finding about its bytes, with the octets
    deviation: str = ""
    peers: set[str] = field(default_factory=set)  # the versions of the implementation seen failing
    against: set[str] = field(default_factory=set)
    cells: list[str] = field(default_factory=list)
    seens: list[str] = field(default_factory=list)  # what each cell saw, for a signature that fits them all
    breaks_libzmq: bool = False
    backend: str = "local"

    @property
    def reproduce(self) -> str:
        peer = sorted(self.peers)[0]
        other = sorted(self.against)[0]
        peers = peer if other == RAW else f"{peer},{other}"
        return f"zmtp-conformance run --backend {self.backend} --peers {peers} --scenario {self.scenario}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "implementation": self.implementation,
            "scenario": self.scenario,
            "title": self.title,
            "rfc": self.rfc,
            "level": self.level,
            "side": self.side,
            "step": self.step,
            "action": self.action,
            "outcome": self.outcome,
            "deviation": self.deviation or None,
            "reason": self.reason,
            "expected": self.expected,
            "seen": self.seen,
            "wire": self.wire or None,
            "peers": sorted(self.peers),
            "against": sorted(self.against),
            "cells": len(self.cells),
            "breaks_libzmq": self.breaks_libzmq,
            "reproduce": self.reproduce,
        }


def _family(side: dict[str, Any]) -> str:
    return side.get("family") or side["peer"]


def _wire(record: dict[str, Any], peer: str) -> str:
    for v in (record.get("capture") or {}).get("violations") or []:
        if v.get("peer") == peer and not v.get("deviation"):
            return f"{v['check']} [{v['clause']}]: {v['message']} ({v['octets'][:64]})"
    return ""


def collect(records: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> dict[str, list[Finding]]:
    """Findings by implementation (family), most cells first."""
    backend = (meta or {}).get("backend", "local")
    provisional = set((meta or {}).get("provisional_peers") or {})
    found: dict[tuple[str, ...], Finding] = {}
    for r in records:
        if r["outcome"] not in (Outcome.FAILED, Outcome.DEVIATES):
            continue
        # Between two implementations under test, a newcomer (provisional) that fails against an
        # established peer is the suspect, not the peer that passes everywhere else.
        newcomers = {r[s]["peer"] for s in ("server", "client")} & provisional
        for side, other in (("server", "client"), ("client", "server")):
            me, them = r[side], r[other]
            family = _family(me)
            if me["peer"] == RAW or family == REFERENCE:
                continue
            if len(newcomers) == 1 and me["peer"] not in newcomers:
                continue
            dev = (r.get("deviation") or {}).get("id") or ""
            key = (family, r["scenario"], side, str(r.get("step")), str(r.get("action")), dev)
            stalled = r["outcome"] == Outcome.FAILED and me["peer"] in ((r.get("capture") or {}).get("silent") or [])
            if stalled:
                key = (family, STALL, side)
            f = found.get(key)
            if f is None and stalled:
                f = found[key] = Finding(
                    implementation=family,
                    scenario=r["scenario"],
                    title=STALL_TITLE,
                    rfc=[STALL_CLAUSE],
                    level="SHALL",
                    side=side,
                    step="",
                    action="connect",
                    outcome=Outcome.FAILED,
                    reason=f"{STALL_TITLE}; each cell's step then waited in vain (first: {r.get('reason', '')})",
                    expected="the greeting (RFC 37: after making a connection the peer SHALL send its greeting)",
                    seen="0 octets after the TCP connection (see the capture)",
                    backend=backend,
                )
            elif f is None:
                f = found[key] = Finding(
                    implementation=family,
                    scenario=r["scenario"],
                    title=r.get("title", ""),
                    rfc=list(r.get("rfc") or []),
                    level=r.get("level", ""),
                    side=side,
                    step=str(r.get("step") or ""),
                    action=str(r.get("action") or ""),
                    outcome=r["outcome"],
                    reason=r.get("reason", ""),
                    expected=r.get("expected"),
                    seen=r.get("seen"),
                    wire=_wire(r, me["peer"]),
                    deviation=dev,
                    backend=backend,
                )
            f.peers.add(me["peer"])
            f.against.add(them["peer"])
            f.cells.append(r["id"])
            f.seens.append(r.get("seen") or "")
            if _family(them) == "libzmq":
                f.breaks_libzmq = True
    out: dict[str, list[Finding]] = defaultdict(list)
    for f in found.values():
        out[f.implementation].append(f)
    for fs in out.values():
        fs.sort(key=lambda f: (f.outcome != Outcome.FAILED, -len(f.cells), f.scenario))
    return dict(sorted(out.items()))


@dataclass
class StallRate:
    """How often one peer stalled before its greeting in a run: attempts whose capture shows it
    connect and send nothing, over the attempts of the cells where it connected (as the client,
    with a capture). A declared stall's fix upstream shows as zero, a regression as a rise."""

    peer: str
    declared: list[str]  # its known_stalls ids (empty: it stalled without declaring one)
    stalled: int = 0
    attempts: int = 0
    cells: int = 0
    rescued: int = 0  # cells that passed on a rerun after stalling
    failed: int = 0  # cells that stalled on every attempt

    @property
    def rate(self) -> float:
        return self.stalled / self.attempts if self.attempts else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "rate": round(self.rate, 4)}

    def __str__(self) -> str:
        what = f"known stall {', '.join(self.declared)}" if self.declared else "no stall declared"
        return (
            f"{self.peer} ({what}): {self.stalled} stalled attempt(s) of {self.attempts} in the {self.cells} cell(s) "
            f"where it connected ({self.rate:.1%}); {self.rescued} cell(s) passed on a rerun, "
            f"{self.failed} stalled on every attempt"
        )


def stall_rates(
    records: list[dict[str, Any]], meta: dict[str, Any] | None = None, implementations: list[str] | None = None
) -> list[StallRate]:
    """Each peer that declares a stall (meta.known_stalls) or stalled in this run, by name; with
    `implementations`, only the peers of those families (a rate is per peer, that is per version).
    Cells without a capture (--pcap off) cannot show a stall and are not counted."""

    def connected(r: dict[str, Any]) -> bool:
        # A cell rerun after a stall connected, whatever its last attempt ended as (unsupported too).
        if r.get("stall"):
            return True
        cap = r.get("capture") or {}
        return (
            r["client"]["peer"] != RAW
            and bool(cap.get("streams"))
            and not cap.get("error")
            and r["outcome"] not in (Outcome.UNSUPPORTED, Outcome.SKIPPED)
        )

    def stalled(r: dict[str, Any]) -> int:
        if r.get("stall"):
            return int(r.get("stalled_attempts") or 0)
        return int(r["client"]["peer"] in ((r.get("capture") or {}).get("silent") or []))

    ran = [r for r in records if connected(r)]
    declared = {p: list(ids) for p, ids in ((meta or {}).get("known_stalls") or {}).items()}
    rates = {p: StallRate(p, ids) for p, ids in declared.items()}
    for r in ran:
        if stalled(r):
            rates.setdefault(r["client"]["peer"], StallRate(r["client"]["peer"], []))
    for r in ran:
        rate = rates.get(r["client"]["peer"])
        if rate is None:
            continue
        rate.cells += 1
        rate.attempts += int(r.get("attempts") or 1)
        rate.stalled += stalled(r)
        if r.get("stall"):
            rate.rescued += r["outcome"] == Outcome.PASSED
            rate.failed += r.get("stalled_attempts") == r.get("attempts")
    if implementations:
        family = {r[side]["peer"]: r[side].get("family") for r in records for side in ("server", "client")}
        rates = {p: rate for p, rate in rates.items() if family.get(p, p) in implementations}
    return [rates[p] for p in sorted(rates)]


def _common_prefix(texts: list[str]) -> str:
    if not texts:
        return ""
    first, last = min(texts), max(texts)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def propose(findings: dict[str, list[Finding]]) -> str:
    """Deviation entries (deviations.yaml) for the open findings, with signatures that fit every cell
    seen: to be reviewed, given a reason and the upstream cause, never pasted blind."""
    import re

    import yaml

    entries = []
    for impl, fs in findings.items():
        for f in fs:
            if f.outcome != Outcome.FAILED or not f.step:
                continue
            fails: dict[str, Any] = {"step": int(f.step) if f.step.isdigit() else f.step, "action": f.action}
            if f.expected:
                fails["expected"] = "^" + re.escape(f.expected) + "$"
            seen = _common_prefix(f.seens)[:60]
            if seen:
                fails["seen"] = "^" + re.escape(seen)
            if "expected" not in fails and "seen" not in fails:
                # A failed send or a missing event sees nothing: its reason is the signature.
                fails["reason"] = "^" + re.escape(_common_prefix([f.reason])[:60])
            entries.append(
                {
                    "id": f"{impl}-{f.scenario.replace('/', '-')}-{f.side}",
                    "peer": impl,
                    "side": f.side,
                    "scenarios": [f.scenario],
                    "fails": fails,
                    "clause": ", ".join(f.rfc),
                    "upstream": "TO REVIEW: file and function in the implementation",
                    "reason": f"TO REVIEW: {f.reason}",
                }
            )
    return yaml.safe_dump({"deviations": entries}, sort_keys=False, width=120, allow_unicode=True)


def text(findings: dict[str, list[Finding]]) -> str:
    lines = []
    for impl, fs in findings.items():
        open_ = [f for f in fs if f.outcome == Outcome.FAILED]
        lines.append(f"== {impl}: {len(open_)} open finding(s), {len(fs) - len(open_)} reviewed deviation(s)")
        for f in fs:
            mark = "FAILED " if f.outcome == Outcome.FAILED else f"known ({f.deviation}) "
            lines.append(f"  {mark}{f.scenario} [{f.level}] as {f.side}, step {f.step} {f.action}: {f.reason}")
            lines.append(
                f"      rfc: {', '.join(f.rfc)}; against {', '.join(sorted(f.against))}; {len(f.cells)} cell(s)"
                + ("; breaks interop with libzmq" if f.breaks_libzmq else "")
            )
            if f.expected or f.seen:
                lines.append(f"      expected: {f.expected}")
                lines.append(f"      seen:     {(f.seen or '')[:160]}")
            if f.wire:
                lines.append(f"      wire:     {f.wire}")
            lines.append(f"      reproduce: {f.reproduce}")
    return "\n".join(lines) if lines else "no findings: every cell of every implementation passed or is unsupported"


def write_html(
    path: Path,
    findings: dict[str, list[Finding]],
    meta: dict[str, Any],
    records: list[dict[str, Any]] | None = None,
    claim_verdicts: list[Any] | None = None,
) -> None:
    """The findings page; given the run's records, it also holds each README's claims against them
    (judged here unless the caller passes the verdicts it already has)."""
    e = html.escape
    parts = [
        "<!doctype html><meta charset='utf-8'><title>ZMTP conformance findings</title>",
        "<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:80em}"
        "table{border-collapse:collapse;width:100%;margin-bottom:2em}td,th{border:1px solid #ccc;padding:.3em .5em;"
        "vertical-align:top;text-align:left}th{background:#f4f4f4}.failed{background:#fde2e2}"
        ".deviates{background:#fff4d6}code{font-size:12px;word-break:break-all}</style>",
        "<h1>Findings by implementation</h1>",
        f"<p>From the run of {e(str(meta.get('generated', '?')))} ({e(str(meta.get('backend', '?')))} backend). "
        "A <b>failed</b> row is an open finding; a <b>known</b> row failed exactly as a reviewed entry of "
        "conformance/deviations.yaml says. <a href='matrix.html'>The matrix</a>.</p>",
    ]
    if not findings:
        parts.append("<p>No findings: every cell passed or is unsupported.</p>")
    # Most open findings first: the summary is what a maintainer reads before scrolling.
    order = sorted(findings, key=lambda i: (-sum(f.outcome == Outcome.FAILED for f in findings[i]), i))
    if findings:
        parts.append(
            "<table id='summary'><tr><th>implementation</th><th>open findings</th><th>known</th><th>cells</th></tr>"
        )
        for impl in order:
            fs = findings[impl]
            open_ = sum(1 for f in fs if f.outcome == Outcome.FAILED)
            provisional = (meta.get("provisional_peers") or {}).keys() & {p for f in fs for p in f.peers}
            note = " (provisional)" if provisional else ""
            parts.append(
                f"<tr class='{'failed' if open_ else 'deviates'}'><td><a href='#{e(impl)}'>{e(impl)}</a>{note}</td>"
                f"<td>{open_}</td><td>{len(fs) - open_}</td><td>{sum(len(f.cells) for f in fs)}</td></tr>"
            )
        parts.append("</table>")
    rates = stall_rates(records, meta) if records is not None else []
    if rates:
        parts.append(
            "<h2 id='stalls'>Stalls before the greeting</h2><p>Attempts in which the peer connected and sent "
            "nothing, of the attempts of the cells where it connected with a capture. A failed cell that stalled "
            "in a way its peer declares (<code>known_stalls</code>) is run again, at most twice; a stall is never "
            "excused.</p><table><tr><th>peer</th><th>declared</th><th>stalled attempts</th><th>attempts</th>"
            "<th>cells</th><th>rate</th><th>passed on a rerun</th><th>stalled every time</th></tr>"
        )
        for sr in rates:
            parts.append(
                f"<tr class='{'failed' if sr.stalled else 'deviates'}'><td>{e(sr.peer)}</td>"
                f"<td>{e(', '.join(sr.declared) or 'none')}</td><td>{sr.stalled}</td><td>{sr.attempts}</td>"
                f"<td>{sr.cells}</td><td>{sr.rate:.1%}</td><td>{sr.rescued}</td><td>{sr.failed}</td></tr>"
            )
        parts.append("</table>")
    if records is not None:
        from . import claims

        parts.append(claims.section(records, verdicts=claim_verdicts))
    for impl in order:
        fs = findings[impl]
        open_ = sum(1 for f in fs if f.outcome == Outcome.FAILED)
        parts.append(f"<h2 id='{e(impl)}'>{e(impl)}: {open_} open, {len(fs) - open_} known</h2>")
        parts.append(
            "<table><tr><th>scenario</th><th>RFC, level</th><th>as</th><th>what failed</th>"
            "<th>expected / seen</th><th>against</th><th>reproduce</th></tr>"
        )
        for f in fs:
            cls = "failed" if f.outcome == Outcome.FAILED else "deviates"
            status = "failed" if f.outcome == Outcome.FAILED else f"known: {f.deviation}"
            libzmq = "<br><b>breaks interop with libzmq</b>" if f.breaks_libzmq else ""
            wire = f"<br>wire: <code>{e(f.wire)}</code>" if f.wire else ""
            parts.append(
                f"<tr class='{cls}'><td>{e(f.scenario)}<br><small>{e(f.title)}</small></td>"
                f"<td>{e(', '.join(f.rfc))}<br>{e(f.level)}</td><td>{e(f.side)}</td>"
                f"<td>{e(status)}<br>step {e(f.step)} {e(f.action)}: {e(f.reason)}{libzmq}</td>"
                f"<td><code>{e(str(f.expected))}</code><br><code>{e((f.seen or '')[:300])}</code>{wire}</td>"
                f"<td>{e(', '.join(sorted(f.against)))}<br><small>{len(f.cells)} cell(s)</small></td>"
                f"<td><code>{e(f.reproduce)}</code></td></tr>"
            )
        parts.append("</table>")
    path.write_text("\n".join(parts))


def fuzz_text(found: dict[str, list[dict[str, Any]]]) -> str:
    """The peer fuzzer's findings (fuzz.findings.load: one record per minimised reproducer), by peer."""
    lines = []
    for peer, records in sorted(found.items()):
        causes = {(r["oracle"], r["detail"][:80]) for r in records}
        lines.append(f"== {peer}: {len(records)} fuzz finding(s), {len(causes)} distinct failure(s)")
        for r in sorted(records, key=lambda r: (r["oracle"], r["mechanism"], r["family"])):
            lines.append(
                f"  {r['oracle']} after {r['family']} [{r['mechanism']}, peer as {r['side']}]: {r['detail'][:160]}"
            )
            lines.append(f"      input: {r['summary'][:160]}")
            lines.append(f"      reproducer: {r['file']}")
    return "\n".join(lines) if lines else "no fuzz findings"
