"""Claims: what each implementation's documentation says it supports, held against a run.

conformance/claims.yaml paraphrases each README; here every claim is judged by
the cells of a run (matrix.json records) in which that implementation played
and which exercise the claimed feature. A claim is contradicted when the
implementation's own agent had to answer unsupported for it (the
implementation lacks it) or when such cells failed.
"""

from __future__ import annotations

import fnmatch
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..vocabulary import DRAFT_SOCKET_TYPES, MECHANISMS, SOCKET_TYPES, TRANSPORTS, Outcome

CLAIMS = Path(__file__).resolve().parents[2] / "claims.yaml"
# Scenarios that restart or reconnect a peer: a reconnection claim is held to these.
RECONNECT_SCENARIOS = ("37/faults/reconnect-after-server-restart", "28/faults/lazy-pirate-loses-no-request")
# Each feature a claim can name, and the values it takes (None: the feature has no values).
FEATURES: dict[str, tuple[str, ...] | None] = {
    "socket_types": tuple(SOCKET_TYPES),
    "draft_socket_types": tuple(DRAFT_SOCKET_TYPES),
    "mechanisms": tuple(MECHANISMS),
    "transports": tuple(TRANSPORTS),
    "zap": None,
    "heartbeats": None,
    "reconnect": None,
}


# The words an agent's unsupported answer uses for a feature without values: agents name what
# their implementation lacks (docs/agent-protocol.md), so an answer that names neither the
# feature nor the claimed value is about something else and does not contradict the claim.
FEATURE_WORDS = {"zap": ("ZAP",), "heartbeats": ("heartbeat", "heartbeats", "PING"), "reconnect": ("reconnect",)}


class ClaimsError(Exception):
    """claims.yaml cannot be used; the message names the file, the line and the problem."""


@dataclass
class Claim:
    implementation: str  # family
    says: str
    feature: str
    values: tuple[str, ...]
    source: str
    release: str = ""  # the version the document describes; cells of other versions are not judged
    line: int = 0


@dataclass
class Verdict:
    claim: Claim
    value: str  # the socket type, mechanism or transport judged ("" for a feature without values)
    counts: dict[str, int] = field(default_factory=dict)
    lacks: list[str] = field(default_factory=list)  # what its agent said when it answered unsupported

    @property
    def status(self) -> str:
        if self.lacks:
            return "contradicted"
        if self.counts.get(Outcome.FAILED):
            held = self.counts.get(Outcome.PASSED) or self.counts.get(Outcome.DEVIATES)
            return "fails in some cells" if held else "fails in every cell"
        if self.counts.get(Outcome.PASSED) or self.counts.get(Outcome.DEVIATES):
            return "holds"
        return "not exercised"


def load(path: Path = CLAIMS) -> list[Claim]:
    from ..scenario import read_with_lines

    doc, lines = read_with_lines(path, ClaimsError)
    out = []
    for family, entry in (doc.get("implementations") or {}).items():
        for i, c in enumerate(entry.get("claims") or []):
            line = lines.get(("implementations", family, "claims", i), 0)
            where = f"{path}:{line}"
            feature = c.get("feature")
            if feature not in FEATURES:
                raise ClaimsError(f"{where}: feature {feature!r} is not one of {', '.join(FEATURES)}")
            values = tuple(c.get("values") or ())
            allowed = FEATURES[feature]
            if allowed is None and values:
                raise ClaimsError(f"{where}: feature {feature} takes no values, got {list(values)}")
            if allowed is not None:
                if not values:
                    raise ClaimsError(f"{where}: feature {feature} needs values (some of {', '.join(allowed)})")
                unknown = [str(v) for v in values if v not in allowed]
                if unknown:
                    # YAML reads a bare NULL as nothing: say so, it is the likely slip.
                    hint = " (write \"NULL\" in quotes)" if "None" in unknown else ""
                    raise ClaimsError(
                        f"{where}: {feature} has no {', '.join(unknown)}{hint} (known: {', '.join(allowed)})"
                    )
            if not c.get("says"):
                raise ClaimsError(f"{where}: a claim needs `says`, the claim in our words")
            out.append(
                Claim(
                    family, c["says"], feature, values, str(entry.get("source", "")), str(entry.get("release", "")),
                    line,
                )
            )  # fmt: skip
    return out


def _scenario_facts(scenarios: list[Any]) -> dict[str, dict[str, Any]]:
    """For each scenario id: the socket types each side's roles play, and its tags."""
    facts = {}
    for sc in scenarios:
        types: dict[str, set[str]] = {"server": set(), "client": set()}
        for role in sc.roles.values():
            if role.type and not role.raw:
                types[role.side].add(role.type)
        facts[sc.id] = {"types": types, "tags": set(sc.tags)}
    return facts


def _selects(claim: Claim, value: str, record: dict[str, Any], side: str, facts: dict[str, Any]) -> bool:
    f = claim.feature
    if f in ("socket_types", "draft_socket_types"):
        return value in facts.get("types", {}).get(side, ())
    if f == "mechanisms":
        return record["mechanism"] == value
    if f == "transports":
        return record["transport"] == value
    if f == "zap":
        return "area:zap" in facts.get("tags", ())
    if f == "heartbeats":
        return "area:heartbeat" in facts.get("tags", ())
    if f == "reconnect":
        return any(fnmatch.fnmatchcase(record["scenario"], p) for p in RECONNECT_SCENARIOS)
    raise AssertionError(f)


def _names(claim: Claim, value: str, reason: str) -> bool:
    words = (value,) if value else FEATURE_WORDS.get(claim.feature, ())
    return any(re.search(rf"\b{re.escape(w)}\b", reason, re.IGNORECASE) for w in words)


def judge(claims: list[Claim], records: list[dict[str, Any]], scenarios: list[Any]) -> list[Verdict]:
    """Every claim, for each value it names, against the cells of a run."""
    facts = _scenario_facts(scenarios)
    verdicts = []
    for claim in claims:
        for value in claim.values or ("",):
            v = Verdict(claim, value)
            for r in records:
                for side in ("server", "client"):
                    s = r[side]
                    family = s.get("family") or s["peer"]
                    if family != claim.implementation:
                        continue
                    if claim.release and claim.release not in (s.get("versions") or {}).values():
                        continue
                    if not _selects(claim, value, r, side, facts.get(r["scenario"], {})):
                        continue
                    outcome = r["outcome"]
                    if outcome == Outcome.UNSUPPORTED:
                        # Only its own agent's answer speaks for it (the other side may lack the
                        # feature), and only when it names what this claim is about.
                        reason = r["reason"]
                        if reason.startswith(f"{s['peer']}/{side}:") and _names(claim, value, reason):
                            if reason not in v.lacks:
                                v.lacks.append(reason)
                        continue
                    v.counts[outcome] = v.counts.get(outcome, 0) + 1
            verdicts.append(v)
    return verdicts


def text(verdicts: list[Verdict]) -> str:
    lines = []
    for v in verdicts:
        c = v.claim
        what = f"{c.says}" + (f" [{v.value}]" if v.value else "")
        counts = ", ".join(f"{n} {o}" for o, n in sorted(v.counts.items())) or "no cells"
        lines.append(f"  {c.implementation}: {what}: {v.status} ({counts})")
        for why in v.lacks[:2]:
            lines.append(f"      its agent: {why[:200]}")
    return "\n".join(lines)


def html_section(verdicts: list[Verdict]) -> str:
    """The claims table of the findings page."""
    e = html.escape
    if not verdicts:
        return ""
    css = {"holds": "passed", "not exercised": "unsupported"}
    parts = [
        "<h2 id='claims'>What each implementation's documentation claims, held against this run</h2>",
        "<p>From conformance/claims.yaml (each README in our words). <b>contradicted</b>: its own agent had to "
        "answer unsupported, the implementation lacks it; <b>fails in some cells</b>: the open findings below "
        "say how.</p>",
        "<table><tr><th>implementation</th><th>claim</th><th>verdict</th><th>cells</th><th>source</th></tr>",
    ]
    for v in verdicts:
        c = v.claim
        counts = ", ".join(f"{n} {o}" for o, n in sorted(v.counts.items())) or "none"
        lacks = "".join(f"<br><small>{e(why[:300])}</small>" for why in v.lacks[:3])
        parts.append(
            f"<tr class='{css.get(v.status, 'failed')}'><td><a href='#{e(c.implementation)}'>{e(c.implementation)}</a></td>"
            f"<td>{e(c.says)}{' <b>' + e(v.value) + '</b>' if v.value else ''}</td>"
            f"<td>{e(v.status)}{lacks}</td><td>{e(counts)}</td><td><small>{e(c.source)}</small></td></tr>"
        )
    parts.append("</table>")
    return "\n".join(parts)


def section(records: list[dict[str, Any]], path: Path = CLAIMS, verdicts: list[Verdict] | None = None) -> str:
    """The findings page's claims table for a run's records ("" when no claimed implementation
    played). A caller that has judged the claims already passes its verdicts."""
    if verdicts is None:
        from ..scenario import load_all

        verdicts = judge(load(path), records, load_all())
    return html_section([v for v in verdicts if v.counts or v.lacks])
