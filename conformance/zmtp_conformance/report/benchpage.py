"""bench.html and its plots (matplotlib), and the benchmarks as an Allure result with the plots attached."""

from __future__ import annotations

import html
import json
import shutil
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..bench import REFERENCE, Row, ratios, reference_of
from ..benchclaims import table as claims_table


def _pair(r: Row) -> str:
    return f"{r.client} -> {r.server}"


def _size(n: int) -> str:
    return f"{n // (1 << 20)} MiB" if n >= 1 << 20 else f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


# What a chart's bars are: throughput (msgs/s over the reference's) or latency (its p50 over the row's).
KINDS = {
    "throughput": "throughput: messages/s over {ref} -> {ref}'s",
    "latency": "latency: {ref} -> {ref}'s p50 round trip over this pairing's",
}


def ratio_table(
    rows: list[Row], ratio: dict[str, float], kind: str, transport: str, mechanism: str, reference: str = REFERENCE
) -> dict[str, dict[str, dict[int, float]]]:
    """pattern -> pairing (client -> server) -> message size -> ratio against the reference, for one chart.

    reference -> reference is left out: it is the 1.0 line every bar is read against.
    """
    table: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        if (r.kind, r.transport, r.mechanism) != (kind, transport, mechanism) or r.key not in ratio:
            continue
        if (r.server, r.client) == (reference, reference):
            continue
        table[r.pattern][_pair(r)][r.size] = ratio[r.key]
    return {p: dict(pairs) for p, pairs in table.items()}


PATTERN_ORDER = ("PUSH/PULL", "PUB/SUB", "REQ/REP", "DEALER/ROUTER")
# Past this many pairings, bars side by side stop being readable at a glance: a table of colours takes over.
MAX_BARS = 8
HEAT_TICKS = (0.25, 0.5, 1.0, 2.0, 4.0)


def _pattern_key(pattern: str) -> tuple[int, str]:
    return next((i for i, p in enumerate(PATTERN_ORDER) if pattern.startswith(p)), len(PATTERN_ORDER)), pattern


def plots(rows: list[Row], out: Path, ratio: dict[str, float] | None = None, reference: str = REFERENCE) -> list[Path]:
    """One PNG per kind, transport and mechanism, one panel per pattern, of each pairing's ratio to libzmq by
    message size: grouped bars against a marked 1.0 line, or for many pairings a pairing-by-size table coloured
    red (slower than libzmq -> libzmq) to green (faster)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratio = ratios(rows, reference) if ratio is None else ratio
    files = []
    for kind, transport, mech in sorted({(r.kind, r.transport, r.mechanism) for r in rows}):
        table = ratio_table(rows, ratio, kind, transport, mech, reference)
        if not table:
            continue
        patterns = sorted(table, key=_pattern_key)
        pairings = sorted({p for pairs in table.values() for p in pairs})
        many = len(pairings) > MAX_BARS
        height = 1.8 + 0.3 * len(pairings) if many else 4.6
        fig, axes = plt.subplots(
            1, len(patterns), figsize=(max(6.0, 1.5 + 4.2 * len(patterns)), height), squeeze=False, sharey=True
        )
        if many:
            image = None
            for ax, pattern in zip(axes[0], patterns, strict=True):
                image = _heatmap(ax, table[pattern], pairings)
                ax.set_title(pattern)
            label = f"ratio to {reference} (1.0 = {reference} -> {reference})"
            bar = fig.colorbar(image, ax=list(axes[0]), label=label, shrink=0.8)
            bar.set_ticks(HEAT_TICKS, labels=[f"{t:g}" for t in HEAT_TICKS])
            bar.minorticks_off()
        else:
            colours = {p: plt.get_cmap("tab10")(i) for i, p in enumerate(pairings)}
            top = max(1.25, *(q for pairs in table.values() for sizes in pairs.values() for q in sizes.values()))
            for ax, pattern in zip(axes[0], patterns, strict=True):
                _bars(ax, table[pattern], pairings, colours, top * 1.12, reference)
                ax.set_title(pattern)
            axes[0][0].set_ylabel(f"ratio to {reference} (higher is better)")
            handles = [plt.Rectangle((0, 0), 1, 1, color=colours[p]) for p in pairings]
            fig.legend(handles, pairings, title="client -> server", loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.suptitle(f"{KINDS.get(kind, kind).format(ref=reference)} ({transport}, {mech})", fontsize=11)
        if not many:
            fig.tight_layout()
        path = out / f"bench-{kind}-{transport}-{mech}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        files.append(path)
    return files


def _bars(
    ax: Any,
    pairs: dict[str, dict[int, float]],
    pairings: list[str],
    colours: dict[str, Any],
    top: float,
    reference: str = REFERENCE,
) -> None:
    sizes = sorted({s for by_size in pairs.values() for s in by_size})
    names = [p for p in pairings if p in pairs]
    width = 0.8 / len(names)
    for i, pair in enumerate(names):
        xs = [j - 0.4 + width * (i + 0.5) for j, s in enumerate(sizes) if s in pairs[pair]]
        ys = [pairs[pair][s] for s in sizes if s in pairs[pair]]
        bars = ax.bar(xs, ys, width=width * 0.92, color=colours[pair])
        ax.bar_label(bars, labels=[f"{y:.2f}" for y in ys], fontsize=7, padding=1)
    ax.axhline(1.0, color="black", linewidth=1.2, linestyle="--")
    ax.annotate(
        f"{reference} = 1.0", (0, 1.0), xycoords=("axes fraction", "data"), xytext=(3, 3), textcoords="offset points",
        fontsize=8, va="bottom",
    )  # fmt: skip
    ax.set_xticks(range(len(sizes)), [_size(s) for s in sizes])
    ax.set_xlim(-0.5, len(sizes) - 0.5)
    ax.set_ylim(0, top)
    ax.set_xlabel("message size")
    ax.grid(True, axis="y", alpha=0.3)


def _heatmap(ax: Any, pairs: dict[str, dict[int, float]], pairings: list[str]) -> Any:
    import matplotlib.colors
    import numpy

    sizes = sorted({s for by_size in pairs.values() for s in by_size})
    grid = numpy.full((len(pairings), len(sizes)), numpy.nan)
    for i, pair in enumerate(pairings):
        for j, s in enumerate(sizes):
            if s in pairs.get(pair, {}):
                grid[i, j] = pairs[pair][s]
    # Centred on 1.0 and symmetric in log terms: half as fast is as red as twice as fast is green.
    low, high = HEAT_TICKS[0], HEAT_TICKS[-1]
    norm = matplotlib.colors.LogNorm(vmin=low, vmax=high)
    image = ax.imshow(numpy.clip(grid, low, high), cmap="RdYlGn", norm=norm, aspect="auto")
    for i in range(len(pairings)):
        for j in range(len(sizes)):
            if not numpy.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(sizes)), [_size(s) for s in sizes])
    ax.set_yticks(range(len(pairings)), pairings, fontsize=7)
    ax.set_xlabel("message size")
    return image


def page(doc: dict[str, Any], rows: list[Row], ratio: dict[str, float], images: list[Path]) -> str:
    e = html.escape
    meta = doc["meta"]
    m = meta["machine"]
    ref = reference_of(doc)
    what = meta.get("reference_is", ref)
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ZMTP benchmarks</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #999;padding:.3em .6em;text-align:right}th{background:#eee}"
        ".bad{color:#a00}.good{color:#060}</style></head><body>",
        "<h1>ZMTP benchmarks</h1>",
        f"<p>{e(meta['generated'])}, {e(str(meta['wall_time']))} s on {e(m['node'])} ({e(m['platform'])}, "
        f"{m['cpus']} cpus, python {e(m['python'])}). Ratios are against {e(ref)} to {e(ref)}, that is "
        f"{e(what)}, measured in this run: above 1 is faster. Each figure is the median of the repetitions; "
        "the spread is in bench.json.</p>",
        "<p>" + "; ".join(f"{e(p)}: {e(', '.join(f'{k} {v}' for k, v in vs.items()))}"
                          for p, vs in sorted(meta["peer_versions"].items())) + "</p>",
        "<p>Bench loops: " + "; ".join(f"{e(p)}: {e(loop)}" for p, loop in sorted(meta.get("loops", {}).items()))
        + "</p>",
    ]  # fmt: skip
    out += _claims_section(doc)
    sections: dict[tuple[str, str, str, str], list[Row]] = defaultdict(list)
    for r in rows:
        sections[r.kind, r.pattern, r.transport, r.mechanism].append(r)
    for (kind, pattern, transport, mech), rs in sorted(sections.items()):
        sizes = sorted({r.size for r in rs})
        unit = "msgs/s" if kind == "throughput" else "p50 us"
        out.append(
            f"<h2>{e(pattern)} {e(kind)}, {e(transport)}, {e(mech)} ({unit}, ratio)</h2><table><tr><th>client -> server</th>"
        )
        out += [f"<th>{_size(s)}</th>" for s in sizes]
        out.append("</tr>")
        by_pair: dict[str, dict[int, Row]] = defaultdict(dict)
        for r in rs:
            by_pair[_pair(r)][r.size] = r
        for pair in sorted(by_pair):
            out.append(f"<tr><th>{e(pair)}</th>")
            for s in sizes:
                r = by_pair[pair].get(s)
                if r is None:
                    out.append("<td></td>")
                elif r.error:
                    out.append(f"<td class='bad' title='{e(r.error)}'>error</td>")
                else:
                    q = ratio.get(r.key)
                    cls = "" if q is None else " class='good'" if q >= 1 else " class='bad'" if q < 0.5 else ""
                    fig = r.figure() or 0
                    title = f" title='{e('; '.join(r.notes))}'" if r.notes else ""
                    mark = "*" if r.notes else ""
                    out.append(
                        f"<td{cls}{title}>{fig:,.0f}{mark}" + (f" ({q:.2f}x)" if q is not None else "") + "</td>"
                    )
            out.append("</tr>")
        out.append("</table>")
    for img in images:
        out.append(f"<p><img src='{e(img.name)}' alt='{e(img.stem)}'></p>")
    out.append("</body></html>")
    return "\n".join(out)


def _claims_section(doc: dict[str, Any]) -> list[str]:
    """Published claims next to this run's ratio for the same row (benchclaims)."""
    e = html.escape
    entries = doc.get("claims") or claims_table(doc)
    if not entries:
        return []
    out = [
        f"<h2>Published claims and this run (ratios to {e(reference_of(doc))}, higher is better)</h2>",
        "<table><tr><th>implementation</th><th>row</th><th>claimed</th><th>claimed on</th><th>measured here</th>"
        "<th style='text-align:left'>claim, source</th><th style='text-align:left'>how measured here</th></tr>",
    ]
    for c in entries:
        measured = "-" if c["measured"] is None else f"{c['measured']:.2f}x"
        out.append(
            f"<tr><td>{e(c['family'])}</td><td>{e(c['row'])}</td><td>{e(c['claimed'])}</td>"
            f"<td>{e(c['claimed_runtime'])}</td><td>{measured}</td>"
            f"<td style='text-align:left'>{e(c['says'])} [{e(c['source'])}]</td>"
            f"<td style='text-align:left'>{e(c['how'])}</td></tr>"
        )
    out.append("</table>")
    return out


def allure_result(doc: dict[str, Any], files: list[Path], results: Path) -> Path:
    """The benchmarks as one Allure result, with bench.json and the plots attached."""
    results.mkdir(parents=True, exist_ok=True)
    attachments = []
    for f in files:
        name = f"{uuid.uuid4()}-attachment{f.suffix}"
        shutil.copy(f, results / name)
        mime = {".png": "image/png", ".json": "application/json", ".html": "text/html"}.get(f.suffix, "text/plain")
        attachments.append({"name": f.name, "source": name, "type": mime})
    now = int(time.time() * 1000)
    result = {
        "uuid": str(uuid.uuid4()),
        "historyId": "zmtp-benchmarks",
        "name": "Benchmarks: ratios against libzmq driven from C",
        "fullName": "zmtp_conformance.bench",
        "status": "passed",
        "stage": "finished",
        "start": now,
        "stop": now,
        "description": f"Made {doc['meta']['generated']} on {doc['meta']['machine']['node']}; see bench.html.",
        "labels": [{"name": "epic", "value": "Benchmarks"}, {"name": "feature", "value": "performance"}],
        "attachments": attachments,
    }
    path = results / f"{result['uuid']}-result.json"
    path.write_text(json.dumps(result))
    return path


def write(doc: dict[str, Any], rows: list[Row], ratio: dict[str, float], out: Path) -> list[Path]:
    images = plots(rows, out, ratio, reference_of(doc))
    page_path = out / "bench.html"
    page_path.write_text(page(doc, rows, ratio, images))
    if (out / "allure-results").is_dir():
        allure_result(doc, [out / "bench.json", *images], out / "allure-results")
    return [*images, page_path]
