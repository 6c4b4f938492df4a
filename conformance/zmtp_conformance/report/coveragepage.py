"""coverage.html: a self-contained page with the requirement coverage, one table per RFC.

Each requirement shows its id, keyword, quote and roles, the scenarios that
cover it and, after a run (matrix.json beside it), those scenarios' cell
outcomes per peer. Covered rows are green, untestable grey with the reason,
uncovered red; a known gap stays red with its note, so gaps are visible rather
than hidden. The page opens from file:// (no scripts, no external assets).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..requirements import FORCES
from .html import CSS as MATRIX_CSS

CSS = (
    MATRIX_CSS
    + """
table.cov{border-collapse:collapse;margin:1em 0;width:100%}
table.cov th,table.cov td{border:1px solid #999;padding:.3em .5em;text-align:left;vertical-align:top;font-size:90%}
tr.covered td.status{background:#bfe8bf} tr.untestable td.status{background:#ddd} tr.uncovered td.status{background:#f4b4b4}
td.quote{max-width:40em} td.id{white-space:nowrap;font-family:monospace}
ul.sc{margin:0;padding-left:1.1em} .note{color:#555;font-style:italic}
table.summary{border-collapse:collapse} table.summary th,table.summary td{border:1px solid #999;padding:.3em .6em;text-align:right}
"""
)


def _outcomes(peers: dict[str, dict[str, int]]) -> str:
    e = html.escape
    parts = []
    for peer, counts in peers.items():
        label = ", ".join(f"<span class='outcome-{e(o)}'>{n} {e(o)}</span>" for o, n in counts.items())
        parts.append(f"<li>{e(peer)}: {label}</li>")
    return f"<ul class='sc'>{''.join(parts)}</ul>" if parts else ""


def write(path: Path, doc: dict[str, Any]) -> None:
    """Write the page for a coverage document (Coverage.to_dict())."""
    e = html.escape
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ZMTP requirement coverage</title>"
        f"<style>{CSS}</style></head><body>",
        "<h1>ZMTP requirement coverage</h1>",
    ]
    if (path.parent / "matrix.html").exists():
        out.append("<p id='matrix-link'><a href='matrix.html'>The conformance matrix</a> (matrix.html)</p>")
    if not doc.get("has_outcomes"):
        out.append("<p class='note'>No matrix.json beside this page: cell outcomes are not shown.</p>")
    problems = doc.get("problems") or []
    if problems:
        out.append("<h2 id='gate'>The gate fails</h2><ul>" + "".join(f"<li>{e(p)}</li>" for p in problems) + "</ul>")
    else:
        out.append("<p id='gate'>Gate: every MUST/SHALL requirement is covered, untestable or a listed known gap.</p>")

    out.append("<table class='summary' id='summary'><tr><th>RFC</th><th>force</th><th>requirements</th>")
    out.append("<th>covered</th><th>untestable</th><th>uncovered</th><th>of which known gaps</th></tr>")
    rows = [(n, c) for n, c in doc["rfcs"].items()] + [("all", doc["totals"])]
    for n, c in rows:
        for force in FORCES:
            f = c["by_force"][force]
            if not f["requirements"]:
                continue
            link = f"<a href='#rfc-{e(n)}'>{e(n)}</a>" if n != "all" else "all"
            out.append(
                f"<tr><th>{link}</th><td>{force}</td><td>{f['requirements']}</td><td>{f['covered']}</td>"
                f"<td>{f['untestable']}</td><td>{f['uncovered']}</td><td>{f['known_gaps']}</td></tr>"
            )
    out.append("</table>")

    corpus = doc.get("corpus") or {}
    represented = sum(1 for v in corpus.values() if v)
    out.append(f"<h2 id='corpus'>Interop-bug corpus: {represented} of {len(corpus)} cases represented</h2>")
    out.append("<table class='cov'><tr><th>case</th><th>scenarios tagged corpus:N</th></tr>")
    for n, ids in corpus.items():
        cls = "covered" if ids else "uncovered"
        cell = "<ul class='sc'>" + "".join(f"<li>{e(s)}</li>" for s in ids) + "</ul>" if ids else "none yet"
        out.append(f"<tr class='{cls}'><td class='status'>corpus:{e(n)}</td><td>{cell}</td></tr>")
    out.append("</table>")

    unreviewed = doc.get("scenarios_without_covers") or []
    bare = doc.get("must_scenarios_covering_nothing") or []
    if unreviewed:
        out.append(
            f"<details><summary>{len(unreviewed)} scenarios have no <code>covers:</code> yet</summary><ul>"
            + "".join(f"<li>{e(s)}</li>" for s in unreviewed)
            + "</ul></details>"
        )
    if bare:
        out.append(
            f"<details><summary>{len(bare)} scenarios at MUST/SHALL trace to no keyword sentence of the RFCs</summary><ul>"
            + "".join(f"<li>{e(s)}</li>" for s in bare)
            + "</ul></details>"
        )

    by_rfc: dict[str, list[dict[str, Any]]] = {}
    for r in doc["requirements"]:
        by_rfc.setdefault(r["rfc"], []).append(r)
    for n, reqs in by_rfc.items():
        c = doc["rfcs"][n]
        out.append(
            f"<h2 id='rfc-{e(n)}'>RFC {e(n)}: {c['requirements']} requirements, {c['covered']} covered, "
            f"{c['untestable']} untestable, {c['uncovered']} uncovered</h2>"
        )
        out.append(
            "<table class='cov'><tr><th>status</th><th>id</th><th>keyword</th><th>requirement</th>"
            "<th>roles</th><th>scenarios</th><th>outcomes per peer</th></tr>"
        )
        ordered = sorted(reqs, key=lambda r: FORCES.index(r["force"]))
        for r in ordered:
            status = r["status"]
            note = ""
            if r.get("untestable"):
                note = f"<div class='note'>untestable: {e(r['untestable'])}</div>"
            if r.get("known_gap") is not None:
                note += f"<div class='note'>known gap: {e(r['known_gap'])}</div>"
            scen = (
                "<ul class='sc'>" + "".join(f"<li>{e(s)}</li>" for s in r["scenarios"]) + "</ul>"
                if r["scenarios"]
                else ""
            )
            label = "known gap" if status == "uncovered" and r.get("known_gap") is not None else status
            out.append(
                f"<tr class='{status}' id='{e(r['id'])}'><td class='status'>{e(label)}</td><td class='id'>{e(r['id'])}</td>"
                f"<td>{e(r['keyword'])}</td><td class='quote'>{e(r['quote'])}<div class='note'>{e(r['heading'])}</div>{note}</td>"
                f"<td>{e(', '.join(r['roles']))}</td><td>{scen}</td><td>{_outcomes(r.get('outcomes') or {})}</td></tr>"
            )
        out.append("</table>")
    out.append("</body></html>")
    path.write_text("\n".join(out))
