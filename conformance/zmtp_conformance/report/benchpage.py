"""bench.html and its plots (matplotlib), and the benchmarks as an Allure result with the plots attached."""

from __future__ import annotations

import html
import json
import shutil
import statistics
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..bench import REFERENCE, Row


def _pair(r: Row) -> str:
    return f"{r.client} -> {r.server}"


def _size(n: int) -> str:
    return f"{n // (1 << 20)} MiB" if n >= 1 << 20 else f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


def plots(rows: list[Row], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        groups[r.transport, r.mechanism].append(r)
    for (transport, mech), rs in sorted(groups.items()):
        tp = [r for r in rs if r.kind == "throughput" and r.pattern == "PUSH/PULL" and r.figure()]
        if tp:
            fig, ax = plt.subplots(figsize=(8, 5))
            by_pair: dict[str, list[Row]] = defaultdict(list)
            for r in tp:
                by_pair[_pair(r)].append(r)
            for pair, prs in sorted(by_pair.items()):
                prs.sort(key=lambda r: r.size)
                style = "-" if REFERENCE in pair else "--"
                ax.plot([r.size for r in prs], [r.figure() for r in prs], style, marker="o", label=pair)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("message size (bytes)")
            ax.set_ylabel("messages per second (median)")
            ax.set_title(f"PUSH/PULL throughput, {transport}, {mech} (client -> server)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
            path = out / f"bench-throughput-{transport}-{mech}.png"
            fig.tight_layout()
            fig.savefig(path, dpi=100)
            plt.close(fig)
            files.append(path)
        lat = [r for r in rs if r.kind == "latency" and r.size == 64 and r.figure()]
        if lat:
            patterns = sorted({r.pattern for r in lat})
            fig, axes = plt.subplots(1, len(patterns), figsize=(6 * len(patterns), 5), squeeze=False)
            for ax, pattern in zip(axes[0], patterns, strict=True):
                prs = sorted((r for r in lat if r.pattern == pattern), key=_pair)
                xs = range(len(prs))
                for pct, width in (("p50", -0.27), ("p95", 0.0), ("p99", 0.27)):
                    vals = [statistics.median(x[pct] for x in r.reps) for r in prs]
                    ax.bar([x + width for x in xs], vals, width=0.27, label=pct)
                ax.set_xticks(list(xs), [_pair(r) for r in prs], rotation=45, ha="right", fontsize=7)
                ax.set_ylabel("round trip (microseconds)")
                ax.set_title(f"{pattern} 64 B, {transport}, {mech}")
                ax.legend()
            path = out / f"bench-latency-{transport}-{mech}.png"
            fig.tight_layout()
            fig.savefig(path, dpi=100)
            plt.close(fig)
            files.append(path)
    return files


def page(doc: dict[str, Any], rows: list[Row], ratio: dict[str, float], images: list[Path]) -> str:
    e = html.escape
    meta = doc["meta"]
    m = meta["machine"]
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ZMTP benchmarks</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #999;padding:.3em .6em;text-align:right}th{background:#eee}"
        ".bad{color:#a00}.good{color:#060}</style></head><body>",
        "<h1>ZMTP benchmarks</h1>",
        f"<p>{e(meta['generated'])}, {e(str(meta['wall_time']))} s on {e(m['node'])} ({e(m['platform'])}, "
        f"{m['cpus']} cpus, python {e(m['python'])}). Ratios are against {REFERENCE} to {REFERENCE}, measured in "
        "this run: above 1 is faster. Each figure is the median of the repetitions; the spread is in "
        "bench.json.</p>",
        "<p>" + "; ".join(f"{e(p)}: {e(', '.join(f'{k} {v}' for k, v in vs.items()))}"
                          for p, vs in sorted(meta["peer_versions"].items())) + "</p>",
    ]  # fmt: skip
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
                    out.append(f"<td{cls}>{fig:,.0f}" + (f" ({q:.2f}x)" if q is not None else "") + "</td>")
            out.append("</tr>")
        out.append("</table>")
    for img in images:
        out.append(f"<p><img src='{e(img.name)}' alt='{e(img.stem)}'></p>")
    out.append("</body></html>")
    return "\n".join(out)


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
        "name": "Benchmarks: every pairing, ratios against libzmq",
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
    images = plots(rows, out)
    page_path = out / "bench.html"
    page_path.write_text(page(doc, rows, ratio, images))
    if (out / "allure-results").is_dir():
        allure_result(doc, [out / "bench.json", *images], out / "allure-results")
    return [*images, page_path]
