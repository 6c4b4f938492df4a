"""matrix.html: a self-contained page with the pairing matrix.

Rows are server peers, columns client peers; each cell shows its counts and
is green (all passed), amber (deviations or unsupported only) or red (any
failure). Clicking a cell jumps to the list of its non-passing results,
each with the reason and expected-vs-seen bytes.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..vocabulary import Outcome

ORDER = tuple(Outcome)

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table.matrix{border-collapse:collapse;margin:1em 0}
table.matrix th,table.matrix td{border:1px solid #999;padding:.5em .8em;text-align:center}
td.pair a{color:inherit;text-decoration:none;display:block}
td.green{background:#bfe8bf} td.red{background:#f4b4b4} td.amber{background:#f7e1a1} td.grey{background:#ddd}
.outcome-failed{color:#a00} .outcome-deviates{color:#a60} .outcome-unsupported{color:#666} .outcome-skipped{color:#888}
pre{background:#f6f6f6;padding:.5em;overflow:auto;font-size:85%}
.meta td{padding:.1em .8em}
details{margin:.3em 0}
"""


def colour(counts: dict[str, int]) -> str:
    if counts.get("failed"):
        return "red"
    if counts.get("passed") and not any(counts.get(k) for k in ("deviates", "unsupported")):
        return "green"
    if counts.get("passed") or counts.get("deviates") or counts.get("unsupported"):
        return "amber"
    return "grey"


def anchor(server: str, client: str) -> str:
    return f"pair-{server}-{client}"


def write(path: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    e = html.escape
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_pair[(r["server"]["peer"], r["client"]["peer"])].append(r)
    servers = sorted({s for s, _ in by_pair})
    clients = sorted({c for _, c in by_pair})
    totals = {o: sum(1 for r in records if r["outcome"] == o) for o in ORDER}

    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>ZMTP conformance matrix</title><style>{CSS}</style></head><body>"
    ]
    out.append("<h1>ZMTP conformance matrix</h1>")
    out.append("<table class='meta'>")
    for key in ("generated", "wall_time", "backend", "project_version", "shard"):
        out.append(f"<tr><td>{e(key)}</td><td>{e(str(meta.get(key)))}</td></tr>")
    m = meta.get("machine", {})
    out.append(
        f"<tr><td>machine</td><td>{e(str(m.get('node')))} {e(str(m.get('platform')))} python {e(str(m.get('python')))}, {m.get('cpus')} cpus</td></tr>"
    )
    for peer, vers in sorted((meta.get("peer_versions") or {}).items()):
        out.append(f"<tr><td>peer {e(peer)}</td><td>{e(', '.join(f'{k} {v}' for k, v in vers.items()))}</td></tr>")
    out.append("</table>")
    out.append(
        "<p id='totals'>"
        + " &middot; ".join(f"<span class='outcome-{o}'>{o}: {totals[o]}</span>" for o in ORDER)
        + "</p>"
    )

    if (path.parent / "findings.html").exists():
        out.append("<p id='findings-link'><a href='findings.html'>Findings by implementation</a> (findings.html)</p>")
    # Always linked: `zmtp-conformance coverage` writes the page after the run, beside this one.
    out.append(
        "<p id='coverage-link'><a href='coverage.html'>Requirement coverage</a> "
        "(coverage.html, written by zmtp-conformance coverage)</p>"
    )
    if (path.parent / "bench.html").exists():
        out.append("<p id='bench-link'><a href='bench.html'>Benchmarks of every pairing</a> (bench.html)</p>")
    out.append("<table class='matrix' id='matrix'><tr><th>server \\ client</th>")
    out += [f"<th>{e(c)}</th>" for c in clients]
    out.append("</tr>")
    for s in servers:
        out.append(f"<tr><th>{e(s)}</th>")
        for c in clients:
            cell = by_pair.get((s, c))
            if not cell:
                out.append("<td class='empty'>&ndash;</td>")
                continue
            counts = {o: sum(1 for r in cell if r["outcome"] == o) for o in ORDER}
            label = "<br>".join(f"{o} {n}" for o, n in counts.items() if n)
            out.append(
                f"<td class='pair {colour(counts)}' data-server='{e(s)}' data-client='{e(c)}' "
                f"data-failed='{counts['failed']}'><a href='#{anchor(s, c)}'>{label}</a></td>"
            )
        out.append("</tr>")
    out.append("</table>")

    for (s, c), cell in sorted(by_pair.items()):
        out.append(f"<h2 id='{anchor(s, c)}'>server {e(s)} &times; client {e(c)}</h2>")
        bad = [r for r in cell if r["outcome"] != "passed" or r.get("flaky") or r.get("stall")]
        passed = sum(1 for r in cell if r["outcome"] == "passed")
        out.append(f"<p>{passed} of {len(cell)} cells passed.</p>")
        for r in bad:
            out.append(
                f"<details class='result outcome-{r['outcome']}' id='{e(r['id'])}'><summary>"
                f"<b class='outcome-{r['outcome']}'>{e(r['outcome'])}{' (flaky)' if r.get('flaky') else ''}"
                f"{' (known stall ' + e(r['stall']) + ')' if r.get('stall') else ''}</b> "
                f"{e(r['id'])} &mdash; {e(r['title'])}</summary>"
            )
            out.append(f"<p>RFC {e(', '.join(r['rfc']))} ({e(r['level'])})</p>")
            out.append(f"<pre>{e(r['reason'] or '')}")
            if r.get("expected") is not None or r.get("seen") is not None:
                out.append(f"\nexpected: {e(str(r.get('expected')))}\nseen:     {e(str(r.get('seen')))}")
            if r.get("deviation"):
                dev = r["deviation"]
                out.append(
                    f"\nexcused by deviation entry {e(dev.get('id') or '?')}: {e(dev['reason'])}"
                    f" ({e(dev.get('reference') or '')})"
                )
            out.append("</pre>")
            cap = r.get("capture") or {}
            if cap.get("file"):
                out.append(f"<p>capture: <a href='{e(cap['file'])}'>{e(cap['file'])}</a> ({e(cap['method'])})</p>")
            out.append("</details>")
        linked = [r for r in cell if r not in bad and (r.get("capture") or {}).get("file")]
        if linked:
            # The Allure report links these rather than embedding them; here each is one click away.
            out.append(
                f"<details class='captures'><summary>captures of the other {len(linked)} cells</summary><ul>"
            )
            for r in linked:
                cap = r["capture"]
                out.append(
                    f"<li id='{e(r['id'])}'><a href='{e(cap['file'])}'>{e(r['id'])}</a> "
                    f"<span class='outcome-{r['outcome']}'>{e(r['outcome'])}</span> ({e(cap.get('method') or '')})</li>"
                )
            out.append("</ul></details>")
    out += wire_section(records)
    out += measurements_section(records)
    out += time_section(records)
    out.append("</body></html>")
    path.write_text("\n".join(out))


def phase_totals(records: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per phase (a cell's `phases`: agents, setup, step:<action>, ...) summed over the cells."""
    totals: dict[str, float] = defaultdict(float)
    for r in records:
        for phase, seconds in (r.get("phases") or {}).items():
            totals[phase] += seconds
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def time_section(records: list[dict[str, Any]], top: int = 12) -> list[str]:
    """Where the cells' time went: phases by outcome, and the scenarios that cost the most."""
    e = html.escape
    timed = [r for r in records if r.get("phases")]
    if not timed:
        return []
    outcomes = [o for o in Outcome if any(r["outcome"] == o for r in timed)]
    by_outcome = {o: phase_totals([r for r in timed if r["outcome"] == o]) for o in outcomes}
    overall = phase_totals(timed)
    whole = sum(overall.values()) or 1.0
    out = [
        "<h2 id='time'>Where the time went</h2>",
        f"<p>{whole:.0f} worker-seconds over {len(timed)} cells, by phase (each cell's <code>phases</code>"
        " in matrix.json add up to its duration); the pauses and timeouts a scenario waits out are its"
        " <code>step:</code> phases.</p>",
        "<table class='matrix' id='time-phases'><tr><th>phase</th><th>seconds</th><th>share</th>"
        + "".join(f"<th>{e(o)}</th>" for o in outcomes)
        + "</tr>",
    ]
    for phase, seconds in list(overall.items())[:top]:
        per = "".join(f"<td>{by_outcome[o].get(phase, 0.0):.0f}</td>" for o in outcomes)
        out.append(f"<tr><td>{e(phase)}</td><td>{seconds:.0f}</td><td>{seconds / whole:.0%}</td>{per}</tr>")
    out.append("</table>")
    cost: dict[str, list[float]] = defaultdict(list)
    for r in timed:
        cost[r["scenario"]].append(r.get("duration") or sum(r["phases"].values()))
    slow = sorted(cost.items(), key=lambda kv: -sum(kv[1]))[:top]
    out.append("<table class='matrix' id='time-scenarios'><tr><th>scenario</th><th>cells</th>")
    out.append("<th>seconds</th><th>per cell</th></tr>")
    for sid, spent in slow:
        out.append(
            f"<tr><td>{e(sid)}</td><td>{len(spent)}</td><td>{sum(spent):.0f}</td><td>{sum(spent) / len(spent):.2f}</td></tr>"
        )
    out.append("</table>")
    return out


def measurements_section(records: list[dict[str, Any]]) -> list[str]:
    """What fault scenarios counted, cell by cell: numbered messages received and lost."""
    e = html.escape
    measured = [r for r in records if r.get("measurements")]
    if not measured:
        return []
    keys = sorted({k for r in measured for k in r["measurements"]})
    out = [
        "<h2 id='measurements'>Measurements</h2>",
        "<p>Counted by the cells' steps (e.g. messages lost when a peer was killed mid-stream).</p>",
        "<table><tr><th>cell</th><th>outcome</th>" + "".join(f"<th>{e(k)}</th>" for k in keys) + "</tr>",
    ]
    for r in sorted(measured, key=lambda r: r["id"]):
        m = r["measurements"]
        cells = "".join(f"<td>{e(str(m.get(k, '')))}</td>" for k in keys)
        out.append(f"<tr><td>{e(r['id'])}</td><td class='outcome-{r['outcome']}'>{e(r['outcome'])}</td>{cells}</tr>")
    out.append("</table>")
    return out


def wire_section(records: list[dict[str, Any]]) -> list[str]:
    """What the validator found in the captures, by peer and check, each with an example capture."""
    e = html.escape
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    captured = 0
    for r in records:
        cap = r.get("capture") or {}
        if cap.get("file"):
            captured += 1
        for v in cap.get("violations") or []:
            row = rows.setdefault(
                (v["peer"], v["check"]), {"cells": 0, "first": v, "file": cap.get("file"), "known": v["deviation"]}
            )
            row["cells"] += 1
    out = ["<h2 id='wire'>Wire validation</h2>", f"<p>{captured} of {len(records)} cells have a capture.</p>"]
    if not rows:
        out.append("<p>No violations in any capture.</p>")
        return out
    out.append("<table class='matrix' id='wire-findings'><tr><th>peer</th><th>check</th><th>clause</th>")
    out.append("<th>cells</th><th>status</th><th>example</th></tr>")
    for (peer, check), row in sorted(rows.items()):
        v = row["first"]
        status = f"known: {e(row['known']['reason'])}" if row["known"] else "<b class='outcome-failed'>unknown</b>"
        link = f"<a href='{e(row['file'])}'>{e(row['file'])}</a>" if row["file"] else ""
        out.append(
            f"<tr><td>{e(peer)}</td><td>{e(check)}</td><td>{e(v['clause'])}</td><td>{row['cells']}</td>"
            f"<td style='text-align:left'>{status}</td>"
            f"<td style='text-align:left'>{e(v['message'])}<br><code>{e(v['octets'])}</code><br>{link}</td></tr>"
        )
    out.append("</table>")
    return out
