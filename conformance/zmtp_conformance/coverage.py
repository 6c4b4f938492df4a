"""Requirement coverage: which requirements of the inventory the scenarios check, and the gate on it.

A requirement is covered when a scenario lists its id in `covers:`, untestable
when the overrides say why no wire test can check it, and uncovered otherwise.
The gate (`zmtp-conformance coverage --check`) fails on an uncovered MUST or
SHALL (MUST NOT, REQUIRED and so on) that overrides.yaml does not list as a
known gap, and on a known gap that is no longer one, so the list only shrinks.
After a run, each requirement also gets its scenarios' cell outcomes per peer
from matrix.json.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .cells import RAW
from .requirements import FORCES, RFCS, Requirement
from .scenario import Scenario
from .vocabulary import INTEROP, Outcome

COVERED, UNTESTABLE, UNCOVERED = "covered", "untestable", "uncovered"
CORPUS_TAG = re.compile(r"^corpus:(\d+)$")
CORPUS_CASES = range(1, 32)  # the 31 cases of ../shared/interop-bug-corpus.md
# The RFCs that specify one security mechanism: their requirements are checked only by cells under it.
MECHANISM_OF_RFC = {"24": "PLAIN", "25": "CURVE", "26": "CURVE"}


@dataclass
class Entry:
    requirement: Requirement
    scenarios: list[str] = field(default_factory=list)
    known_gap: str | None = None  # the note from overrides.yaml's known_gaps
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)  # peer -> outcome -> cells

    @property
    def status(self) -> str:
        if self.scenarios:
            return COVERED
        if self.requirement.untestable:
            return UNTESTABLE
        return UNCOVERED

    def to_dict(self) -> dict[str, Any]:
        r = self.requirement
        out: dict[str, Any] = {
            "id": r.id,
            "rfc": r.rfc,
            "section": r.section,
            "heading": r.heading,
            "keyword": r.keyword,
            "force": r.force,
            "quote": r.quote,
            "roles": list(r.roles),
            "status": self.status,
            "scenarios": list(self.scenarios),
        }
        if r.untestable:
            out["untestable"] = r.untestable
        if self.known_gap is not None:
            out["known_gap"] = self.known_gap
        if self.outcomes:
            out["outcomes"] = self.outcomes
        return out


@dataclass
class Coverage:
    entries: dict[str, Entry]
    known_gaps: dict[str, str]
    scenarios: list[Scenario]
    has_outcomes: bool = False

    def counts(self, rfc: str | None = None) -> dict[str, Any]:
        """Requirements, covered, untestable, uncovered (and known gaps among them), in all and by force."""
        chosen = [e for e in self.entries.values() if rfc is None or e.requirement.rfc == rfc]

        def tally(entries: list[Entry]) -> dict[str, int]:
            c = Counter(e.status for e in entries)
            return {
                "requirements": len(entries),
                COVERED: c[COVERED],
                UNTESTABLE: c[UNTESTABLE],
                UNCOVERED: c[UNCOVERED],
                "known_gaps": sum(1 for e in entries if e.status == UNCOVERED and e.known_gap is not None),
            }

        out: dict[str, Any] = tally(chosen)
        out["by_force"] = {f: tally([e for e in chosen if e.requirement.force == f]) for f in FORCES}
        return out

    def problems(self) -> list[str]:
        """What makes the gate fail; empty when it passes."""
        out = []
        for e in self.entries.values():
            r = e.requirement
            if r.force == "MUST" and e.status == UNCOVERED and e.known_gap is None:
                out.append(
                    f"{r.id} ({r.keyword}) is neither covered by a scenario nor marked untestable, "
                    f"and is not a known gap: {r.quote!r}"
                )
            if r.untestable and e.scenarios:
                out.append(
                    f"{r.id} is marked untestable ({r.untestable}) but {', '.join(e.scenarios)} cover it: "
                    "remove the untestable entry from overrides.yaml or the id from the scenario"
                )
        for sc in self.scenarios:
            for rid in sc.covers or ():
                mechanism = MECHANISM_OF_RFC.get(rid.split("/", 1)[0])
                if mechanism and mechanism not in sc.mechanisms:
                    out.append(
                        f"{sc.path}: covers {rid}, a {mechanism} requirement, but runs only under "
                        f"{', '.join(sc.mechanisms)}"
                    )
        for rid in self.known_gaps:
            e = self.entries.get(rid)
            if e is None:
                out.append(f"known gap {rid} is not a requirement of the inventory: remove it from overrides.yaml")
            elif e.status != UNCOVERED:
                why = f"covered by {', '.join(e.scenarios)}" if e.scenarios else "marked untestable"
                out.append(f"known gap {rid} is now {why}: remove it from known_gaps in overrides.yaml")
            elif e.requirement.force != "MUST":
                out.append(f"known gap {rid} is a {e.requirement.keyword}, not a MUST/SHALL: only those are gated")
        return out

    def level_mismatches(self) -> list[str]:
        """Scenarios whose level is not the force of any requirement they cover (interop is exempt)."""
        out = []
        for sc in self.scenarios:
            if not sc.covers or sc.level == INTEROP:
                continue
            forces = {self.entries[rid].requirement.force for rid in sc.covers if rid in self.entries}
            wanted = "MUST" if sc.level in ("MUST", "SHALL") else sc.level
            if wanted not in forces:
                kws = sorted({self.entries[rid].requirement.keyword for rid in sc.covers if rid in self.entries})
                out.append(f"{sc.path}: level {sc.level}, but the requirements it covers say only {', '.join(kws)}")
        return out

    def corpus(self) -> dict[int, list[str]]:
        """For each case of the interop-bug corpus, the scenarios tagged corpus:N."""
        out: dict[int, list[str]] = {n: [] for n in CORPUS_CASES}
        for sc in self.scenarios:
            for tag in sc.tags:
                m = CORPUS_TAG.match(tag)
                if m:
                    out.setdefault(int(m.group(1)), []).append(sc.id)
        return out

    def to_dict(self) -> dict[str, Any]:
        present = {e.requirement.rfc for e in self.entries.values()}
        rfcs = [n for n in RFCS if n in present] + sorted(present - set(RFCS), key=int)
        unreviewed = [s.id for s in self.scenarios if s.covers is None]
        bare = [s.id for s in self.scenarios if s.covers == [] and s.level in ("MUST", "SHALL")]
        return {
            "totals": self.counts(),
            "rfcs": {n: self.counts(n) for n in rfcs},
            "requirements": [e.to_dict() for e in self.entries.values()],
            "known_gaps": dict(self.known_gaps),
            "problems": self.problems(),
            "corpus": {str(k): v for k, v in sorted(self.corpus().items())},
            "scenarios": len(self.scenarios),
            "scenarios_without_covers": unreviewed,
            "must_scenarios_covering_nothing": bare,
            "has_outcomes": self.has_outcomes,
        }


def collect(
    inventory: dict[str, Requirement],
    scenarios: list[Scenario],
    known_gaps: dict[str, str] | None = None,
    records: list[dict[str, Any]] | None = None,
) -> Coverage:
    """Coverage of `inventory` by `scenarios`; `records` (matrix.json cells) add outcomes per peer."""
    gaps = dict(known_gaps or {})
    entries = {rid: Entry(r, known_gap=gaps.get(rid)) for rid, r in inventory.items()}
    covering: dict[str, list[str]] = defaultdict(list)
    for sc in scenarios:
        for rid in sc.covers or ():
            if rid in entries:
                entries[rid].scenarios.append(sc.id)
                covering[sc.id].append(rid)
    if records:
        # scenario -> mechanism -> peer -> outcome -> cells
        per_scenario: dict[str, dict[str, dict[str, Counter[str]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(Counter))
        )
        for rec in records:
            peers = {rec["server"]["peer"], rec["client"]["peer"]} - {RAW}
            for peer in peers:
                per_scenario[rec["scenario"]][rec.get("mechanism") or "NULL"][peer][rec["outcome"]] += 1
        order = [o.value for o in Outcome]
        for sid, rids in covering.items():
            for rid in rids:
                outcomes = entries[rid].outcomes
                only = MECHANISM_OF_RFC.get(entries[rid].requirement.rfc)
                merged: dict[str, Counter[str]] = defaultdict(Counter)
                for mechanism, by_peer in per_scenario.get(sid, {}).items():
                    if only is None or mechanism == only:
                        for peer, counts in by_peer.items():
                            merged[peer].update(counts)
                for peer, counts in merged.items():
                    mine = outcomes.setdefault(peer, {})
                    for outcome, n in counts.items():
                        mine[outcome] = mine.get(outcome, 0) + n
                for peer in outcomes:
                    outcomes[peer] = {o: outcomes[peer][o] for o in order if outcomes[peer].get(o)}
        for e in entries.values():
            e.outcomes = dict(sorted(e.outcomes.items()))
    return Coverage(entries, gaps, list(scenarios), has_outcomes=bool(records))


def text(cov: Coverage) -> str:
    """The per-RFC summary the CLI prints: MUST/SHALL first, then SHOULD, then MAY."""
    lines = [
        f"{'RFC':<5} {'force':<7} {'reqs':>5} {'covered':>8} {'untestable':>11} {'uncovered':>10} {'known gaps':>11}"
    ]

    def row(label: str, force: str, c: dict[str, int]) -> str:
        return (
            f"{label:<5} {force:<7} {c['requirements']:>5} {c[COVERED]:>8} {c[UNTESTABLE]:>11} "
            f"{c[UNCOVERED]:>10} {c['known_gaps']:>11}"
        )

    doc = cov.to_dict()
    for n, c in doc["rfcs"].items():
        for force in FORCES:
            if c["by_force"][force]["requirements"]:
                lines.append(row(n, force, c["by_force"][force]))
    t = doc["totals"]
    for force in FORCES:
        lines.append(row("all", force, t["by_force"][force]))
    lines.append(row("all", "any", t))
    represented = sum(1 for v in doc["corpus"].values() if v)
    lines.append(
        f"\n{doc['scenarios']} scenarios; {len(doc['scenarios_without_covers'])} without covers:, "
        f"{len(doc['must_scenarios_covering_nothing'])} at MUST/SHALL covering no requirement; "
        f"interop-bug corpus: {represented} of {len(CORPUS_CASES)} cases represented"
    )
    return "\n".join(lines)
